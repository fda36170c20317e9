"""The TUI on several captures: frames read back by number through the merge (the TUI
module is imported here, after the hostile-input tests, whose child memory it would weigh on)."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
MOVE = CAPTURES / "move.pcap"

pytestmark = pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap needed")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dicomsniff", *args], capture_output=True,
                          timeout=300)


@pytest.fixture
def pieces(tmp_path: Path) -> list[Path]:
    """move.pcap cut every 40 frames, the second piece gzipped."""
    d = tmp_path / "p"
    d.mkdir()
    subprocess.run(["editcap", "-c", "40", str(MOVE), str(d / "move.pcap")], check=True,
                   capture_output=True)
    out = sorted(d.iterdir())
    gz = out[1].with_name(out[1].name + ".gz")
    gz.write_bytes(gzip.compress(out[1].read_bytes()))
    out[1].unlink()
    out[1] = gz
    return out


def test_the_tui_reads_frames_back_from_the_pieces(pieces: list[Path]) -> None:
    from dicomsniff.sources.merge import CaptureRef
    from dicomsniff.tui.frames import read_frame

    ref = CaptureRef(list(map(str, pieces)))
    assert ref == f"{pieces[0]} (+{len(pieces) - 1} more)"
    for n in (1, 40, 41, 90, 150):
        assert read_frame(ref, n) == read_frame(str(MOVE), n)
    r = cli("tui", str(pieces[0]), "-")
    assert r.returncode == 2 and "standard input" in r.stderr.decode()


def test_the_tui_names_frames_by_file(pieces: list[Path]) -> None:
    """Several files: the TUI says each frame's file and number there (the ladder, the
    message, the transaction and finding details, the packet view), as the report does."""
    from dicomsniff.sources.merge import CaptureRef
    from dicomsniff.tui import framenames
    from dicomsniff.tui.describe import transaction_rows
    from dicomsniff.tui.feed import Collector, FileSource

    def name(n: int) -> str:
        return f"{pieces[(n - 1) // 40].name}#{(n - 1) % 40 + 1}"

    collector = Collector()
    try:
        FileSource(CaptureRef(list(map(str, pieces)))).run(collector)
        assocs = collector.drain().ended
        assert len(assocs) == 2
        assert framenames.frame(45) == f"frame 45 ({name(45)})"
        t = assocs[0].transactions[0]
        rows = dict(transaction_rows(t, None))
        assert rows["request"].startswith(f"frame {t.request_frame} ({name(t.request_frame)})")
        from dicomsniff.export.sequence import build

        d = build(assocs, log=collector.log, where=framenames.describe)
        framed = [it for it in d.items if it.frame is not None]
        assert framed and all(it.frame_name == name(it.frame) for it in framed)
        FileSource(CaptureRef([str(MOVE)])).run(Collector())
        assert framenames.frame(45) == "frame 45"  # one file: its own numbers, as before
    finally:
        framenames.use(None)
