"""Make the SVG screenshots of the docs: ``python3 -m tools.tui_screenshots docs/tui`` (from the
repository root; a developer script, not part of the installed package).

The scenes run headless on the sample captures; 'a night at the PACS' is several of them merged
by time into one capture, so the list shows successes, warnings and failures together.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from dicomsniff.sources.capture import CaptureReader
from dicomsniff.sources.capwriter import PcapWriter
from dicomsniff.tui.app import DicomBrowser
from dicomsniff.tui.feed import FileSource

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
NIGHT = ("echo.pcap", "store-many-associations.pcap", "move.pcap", "associate-reject.pcap",
         "find-pending.pcap", "worklist.pcap", "abort-mid-transfer.pcap", "mpps.pcap",
         "storage-commitment-separate.pcap", "find-cancel.pcap", "abort-by-requestor.pcap")
Scene = Callable[[object], Awaitable[None]]


def merge(names: tuple[str, ...], out: Path) -> Path:
    """The packets of several Ethernet captures in one file, in time order."""
    packets = []
    for name in names:
        with CaptureReader(str(CAPTURES / name)) as r:
            packets += [(ts, bytes(buf), olen) for ts, _lt, buf, olen in r]
    packets.sort(key=lambda p: p[0])
    with open(out, "wb") as f:
        w = PcapWriter(f, 1)
        for ts, data, olen in packets:
            w.write(ts, data, olen)
    return out


async def _until(pilot, cond, timeout: float = 20.0) -> None:
    t0 = time.monotonic()
    while not cond() and time.monotonic() - t0 < timeout:
        await pilot.pause(0.05)


async def _loaded(pilot) -> None:
    await _until(pilot, lambda: pilot.app.loaded)
    await pilot.pause(0.2)


def _cursor_to(screen, words: str) -> None:
    view = screen.view
    view.cursor = next(i for i, it in enumerate(view.ladder.items) if words in it.lines[0])


async def shoot(capture: Path, out: Path, scene: Scene, size: tuple[int, int]) -> None:
    app = DicomBrowser(FileSource(str(capture)))
    async with app.run_test(size=size) as pilot:
        await _loaded(pilot)
        await scene(pilot)
        await pilot.pause(0.3)
        out.write_text(preserve_spaces(app.export_screenshot(
            title=f"dicomsniff tui {capture.name}")))


def preserve_spaces(svg: str) -> str:
    """Keep the terminal's spaces in every SVG renderer. Each run of text is placed at its
    column, but without ``xml:space="preserve"`` librsvg (GNOME's image viewers,
    rsvg-convert) drops leading and trailing spaces of a run, so a label runs into the next
    ("C-MOVE-RQframe 12") and right-aligned numbers slide left."""
    return svg.replace("<svg ", '<svg xml:space="preserve" ', 1)


async def _list(pilot) -> None:
    pass


async def _filtered(pilot) -> None:
    await pilot.press("slash", *"-outcome:released", "enter")


async def _findings(pilot) -> None:
    await pilot.press("f")


async def _help(pilot) -> None:
    await pilot.press("question_mark")


async def _ladder(pilot) -> None:
    await pilot.press("enter")
    _cursor_to(pilot.app.screen, "C-MOVE-RQ")


async def _dataset(pilot) -> None:
    await pilot.press("enter")
    _cursor_to(pilot.app.screen, "C-FIND-RSP x")
    await pilot.press("3")
    tree = pilot.app.screen.query_one("#dataset-tree")
    await _until(pilot, lambda: len(tree.root.children) > 1)
    first = tree.root.children[0]
    seq = next((n for n in first.children if "Sequence" in str(n.label)), None)
    if seq is not None:
        seq.expand()
    uid = next((n for n in first.children if "Study Instance UID" in str(n.label)), None)
    if uid is not None:  # the value line under the tree shows it whole
        tree.focus()
        tree.move_cursor(uid)


async def _bytes(pilot) -> None:
    await pilot.press("enter")
    _cursor_to(pilot.app.screen, "A-ASSOCIATE-RQ")
    await pilot.press("4")
    await _until(pilot, lambda: "A-ASSOCIATE-RQ," in str(
        pilot.app.screen.query_one("#bytes-log").lines[:1]))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    outdir = Path(args[0] if args else "docs/tui")
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        night = merge(NIGHT, Path(tmp) / "night.pcap")
        scenes = [
            (night, "associations.svg", _list, (140, 30)),
            (night, "filter.svg", _filtered, (140, 16)),
            (night, "findings.svg", _findings, (140, 24)),
            (CAPTURES / "move.pcap", "ladder.svg", _ladder, (160, 48)),
            (CAPTURES / "worklist.pcap", "dataset.svg", _dataset, (160, 40)),
            (CAPTURES / "move.pcap", "bytes.svg", _bytes, (160, 30)),
            (CAPTURES / "echo.pcap", "help.svg", _help, (120, 60)),
        ]
        for capture, name, scene, size in scenes:
            asyncio.run(shoot(capture, outdir / name, scene, size))
            print(outdir / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
