"""Rich Text to Segments for Line API widgets, keeping the Text's own base style."""

from __future__ import annotations

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text


def segments(text: Text, console: Console, base: Style | None = None) -> list[Segment]:
    """The segments of one line of ``text`` (no wrapping), on top of ``base``.

    ``Text.render`` leaves the Text's own style out when it has no spans; it is added here.
    """
    style = console.get_style(text.style) if text.style else None
    if base is not None:
        style = base + style if style is not None else base
    segs = [s for s in text.render(console) if s.text != "\n"]
    if style is None:
        return segs
    return list(Segment.apply_style(segs, style))
