"""The diagrams through real tools: PlantUML renders the PlantUML, Mermaid's own parser and
renderer (headless, in jsdom) read the Mermaid, rsvg-convert rasterises the SVG.

Each test skips, saying what to install, only when its tool is absent (CI installs them: apt
``plantuml librsvg2-bin nodejs npm``, then ``npm ci --prefix tests/node``). Each also checks
that a broken input does fail, so a tool that accepts anything cannot pass the test.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dicomsniff.export import mermaid, plantuml, svg
from dicomsniff.export.sequence import build
from tests.test_diagram import HOSTILE_AES, diagram, hostile_capture, self_association

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "tests" / "node"
SAMPLES = ["echo.pcap", "store-transfer-syntaxes.pcap", "move.pcap",
           "storage-commitment-separate.pcap", "associate-reject.pcap",
           "abort-mid-transfer.pcap", "find-pending.pcap", "store-concurrent.pcap"]
PLANTUML_ERRORS = ("Syntax Error", "An error has occured", "Exception", "cannot parse")

# Mermaid needs a DOM: jsdom gives one without layout, so text is measured at 8 px a character
# (enough to place it). The script prints, per file, whether parse and render succeeded and the
# SVG Mermaid drew.
MERMAID_JS = r"""
import { JSDOM } from 'jsdom';
import { readFileSync } from 'node:fs';
const dom = new JSDOM('<!DOCTYPE html><body></body>', { pretendToBeVisual: true });
const w = dom.window;
globalThis.window = w;
for (const k of ['document', 'DOMParser', 'Element', 'HTMLElement', 'SVGElement', 'Node',
                 'CSSStyleSheet', 'MutationObserver']) {
  if (!(k in globalThis)) globalThis[k] = w[k];
}
const length = (el) => 8 * (el.textContent || '').length;
w.SVGElement.prototype.getBBox = function () {
  return { x: 0, y: 0, width: length(this), height: 16 };
};
w.SVGElement.prototype.getComputedTextLength = function () { return length(this); };
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });
const results = [];
let n = 0;
for (const file of process.argv.slice(1)) {
  const text = readFileSync(file, 'utf8');
  try {
    await mermaid.parse(text);
    const { svg } = await mermaid.render(`d${n++}`, text);
    results.push({ file, ok: true, svg });
  } catch (e) {
    results.push({ file, ok: false, error: String((e && e.message) || e).slice(0, 400) });
  }
}
process.stdout.write(JSON.stringify(results));
"""


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, list[Path]]:
    """Every format of the sample captures (both levels, with and without collapsing) and of
    a capture whose AE titles and comments are syntax in each format."""
    out = tmp_path_factory.mktemp("diagrams")
    cap = hostile_capture(out / "hostile.pcap")
    variants = [(name, {}) for name in SAMPLES] + [
        ("move.pcap", {"level": "pdu", "timing": True}),
        ("find-pending.pcap", {"collapse": False, "timing": True}),
        ("store-concurrent.pcap", {"collapse": False, "max_messages": 20}),
        (cap, {}), (cap, {"level": "pdu", "timing": True})]
    files: dict[str, list[Path]] = {"puml": [], "mmd": [], "svg": []}
    diagrams = [(f"{k:02d}-{Path(str(name)).stem}", diagram(name, **opts))
                for k, (name, opts) in enumerate(variants)]
    diagrams.append(("self", build([self_association()])))
    for stem, d in diagrams:
        for ext, render in (("puml", plantuml.render), ("mmd", mermaid.render),
                            ("svg", svg.render)):
            path = out / ext / f"{stem}.{ext}"
            path.parent.mkdir(exist_ok=True)
            path.write_text(render(d), encoding="utf-8")
            files[ext].append(path)
    return files


def _texts_of_svg(data: str) -> str:
    return html.unescape(" ".join(re.findall(r">([^<>]+)<", data)))


# -- PlantUML ------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("plantuml") is None,
                    reason="plantuml not installed (apt-get install plantuml)")
def test_plantuml_renders_every_diagram(rendered, tmp_path):
    out = tmp_path / "out"
    run = subprocess.run(["plantuml", "-tsvg", "-failfast2", "-o", str(out),
                          *map(str, rendered["puml"])], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    for src in rendered["puml"]:
        data = (out / f"{src.stem}.svg").read_text(encoding="utf-8")
        bad = [e for e in PLANTUML_ERRORS if e in data]
        assert not bad, f"{src.name}: PlantUML drew an error: {bad}"
        if "hostile" in src.name:
            text = _squash(_texts_of_svg(data))
            for title in HOSTILE_AES:
                assert _squash(title) in text, (src.name, title)
    broken = tmp_path / "broken.puml"
    broken.write_text("@startuml\nA -> B : fine\nthis is -> not a diagram line\n@enduml\n")
    run = subprocess.run(["plantuml", "-tsvg", "-failfast2", "-o", str(out), str(broken)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0  # the check bites


# -- Mermaid -------------------------------------------------------------------------------------
def _mermaid(files: list[Path]) -> list[dict]:
    run = subprocess.run(["node", "--input-type=module", "-e", MERMAID_JS, *map(str, files)],
                         cwd=NODE_DIR, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


@pytest.mark.skipif(shutil.which("node") is None
                    or not (NODE_DIR / "node_modules" / "mermaid").is_dir()
                    or not (NODE_DIR / "node_modules" / "jsdom").is_dir(),
                    reason="mermaid parser not installed (apt-get install nodejs npm; "
                           "npm ci --prefix tests/node)")
def test_mermaid_parses_and_renders_every_diagram(rendered, tmp_path):
    broken = tmp_path / "broken.mmd"
    broken.write_text("sequenceDiagram\n    participant P1 as A\n    P1->>P1: a; b\n")
    results = _mermaid([*rendered["mmd"], broken])
    *ours, bad = results
    assert not bad["ok"]  # the check bites: a raw ';' ends a statement
    for r in ours:
        assert r["ok"], f"{Path(r['file']).name}: {r.get('error')}"
        if "hostile" in r["file"]:
            text = _squash(_texts_of_svg(r["svg"]))
            for title in HOSTILE_AES:
                assert _squash(title) in text, (r["file"], title)
            assert "<script" not in r["svg"]


# -- SVG -----------------------------------------------------------------------------------------
def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.skipif(shutil.which("rsvg-convert") is None,
                    reason="rsvg-convert not installed (apt-get install librsvg2-bin)")
def test_svg_is_well_formed_and_rasterises(rendered, tmp_path):
    docs = sorted((ROOT / "docs" / "diagrams").glob("*.svg"))
    for src in [*rendered["svg"], *docs]:
        root = ET.parse(src).getroot()
        png = tmp_path / f"{src.stem}.png"
        run = subprocess.run(["rsvg-convert", "-o", str(png), str(src)], capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, f"{src.name}: {run.stderr}"
        w, h = _png_size(png.read_bytes())
        assert (w, h) == (round(float(root.get("width"))), round(float(root.get("height"))))
    broken = tmp_path / "broken.svg"
    broken.write_text(rendered["svg"][0].read_text()[:400])
    run = subprocess.run(["rsvg-convert", "-o", str(tmp_path / "b.png"), str(broken)],
                         capture_output=True, timeout=60)
    assert run.returncode != 0  # the check bites
