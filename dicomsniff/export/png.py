"""PNG of a sequence diagram: the SVG dicomsniff draws, rasterised by resvg.

resvg (Rust, through resvg-py) is a complete, maintained SVG renderer shipped as a wheel, with
no system library and no Java: PlantUML's PNG output is cut at 4096 px, and a night's
diagram is taller. The SVG asks for DejaVu Sans (its text widths are measured for it, see
fontmetrics.py); the fonts come from the system.
"""

from __future__ import annotations

import re
from typing import Any

from . import svg

# Rasters beyond this many pixels a side are refused by most viewers and cost a lot of memory
# (4 bytes a pixel): the image is scaled down to fit instead.
MAX_SIDE = 32_000


def render(d: Any, zoom: float = 1.5) -> bytes:
    """PNG bytes of diagram ``d`` (``zoom`` 1.5 for legible text on ordinary screens)."""
    import resvg_py

    text = svg.render(d)
    head = re.search(r'<svg [^>]*width="(\d+)" height="(\d+)"', text)
    w, h = (int(head.group(1)), int(head.group(2))) if head else (1, 1)
    zoom = min(zoom, MAX_SIDE / max(w, h, 1))
    return bytes(resvg_py.svg_to_bytes(svg_string=text, zoom=zoom, background="white"))
