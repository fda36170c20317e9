"""One pcap writer: the TUI's export and the live -w files write the same format, which the
reader reads back byte for byte."""

from __future__ import annotations

import io
from pathlib import Path

from dicomsniff.sources.capture import CaptureReader
from dicomsniff.sources.capwriter import CaptureWriter, PcapWriter, pcap_header
from dicomsniff.sources.live import CaptureStats

ROOT = Path(__file__).resolve().parent.parent


def test_pcap_writer_round_trip(tmp_path: Path) -> None:
    with CaptureReader(str(ROOT / "captures" / "echo.pcap")) as r:
        frames = [(ts, lt, bytes(b), ol) for ts, lt, b, ol in r]
    out = tmp_path / "plain.pcap"
    with open(out, "wb") as f:
        w = PcapWriter(f, 1)
        for ts, _lt, data, olen in frames:
            w.write(ts, data, olen)
    cw = CaptureWriter(tmp_path / "live.pcap")
    cw.open()
    for fr in frames:
        cw.write(fr)
    cw.close(CaptureStats())
    for path in (out, tmp_path / "live.pcap"):
        assert path.read_bytes()[:24] == pcap_header(1)
        with CaptureReader(str(path)) as r:
            back = [(round(ts, 6), lt, bytes(b), ol) for ts, lt, b, ol in r]
        assert back == [(round(ts, 6), lt, b, ol) for ts, lt, b, ol in frames]
    assert out.read_bytes() == (tmp_path / "live.pcap").read_bytes()
    assert io.BytesIO(out.read_bytes()).read(4) == b"\xd4\xc3\xb2\xa1"
