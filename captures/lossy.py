"""Lossy captures of real peers (issue 14): what a sensor that loses packets hands over.

Each scenario is recorded once between two network namespaces by two tcpdumps at the same
time: one keeps whole packets (``-s 0``), the other cuts them at 96 bytes (``-s 96``, real
snapshot-length truncation: caplen < length on the wire). From the whole one, editcap drops
the segments a busy sensor drops (the A-ASSOCIATE-RQ or -AC, the A-RELEASE-RQ, a C-STORE-RQ,
a C-STORE-RSP, every 53rd frame) and ``editcap -s 54`` keeps only headers. The segment to
drop is found by tshark's DICOM dissector on the whole capture, so the files say what they
lost::

    sudo python3 -m captures.lossy --out captures/hostile/lossy

tests/test_capture_loss.py reads them (and tshark, on the same files, is the oracle for
what was on the wire).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from captures import session as session_mod  # noqa: E402
from captures.netns import Tcpdump  # noqa: E402
from captures.record import Recorder  # noqa: E402

SNAPLEN = 96
RUNS: dict[str, tuple[str, dict[str, Any]]] = {
    "echo": ("echo", {}),
    "store": ("store-small-pdu", {"images": 12, "rows": 48, "cols": 48, "max_pdu": 4096}),
    "find": ("find-pending", {"studies": 8}),
}
# variant -> (description, regular expression on tshark's Info column of the frame to drop,
# which match: 0 the first, 1 the second, -1 the last)
DROPS: dict[str, tuple[str, str, int]] = {
    "no-rq": ("the A-ASSOCIATE-RQ segment dropped", r"A-ASSOCIATE request", 0),
    "no-ac": ("the A-ASSOCIATE-AC segment dropped", r"A-ASSOCIATE accept", 0),
    "no-release-rq": ("the A-RELEASE-RQ segment dropped", r"A-RELEASE request", 0),
    "no-request": ("the segment of the second request dropped", r"-RQ ID=2\b", 0),
    "no-response": ("the segment of the last final response dropped",
                    r"-RSP ID=\d+ \((Success|Cancel)", -1),
}
EVERY = 53  # "random" loss: every 53rd frame from the 30th


class _TwoSnaplens(Tcpdump):
    """tcpdump -s 0 to the recording, and tcpdump -s 96 beside it, started and stopped
    together."""

    target: Path | None = None

    def __init__(self, bed, out, side="scu", buffer_kib: int = 32768, bpf=None) -> None:
        super().__init__(bed, out, side=side, buffer_kib=buffer_kib, bpf=bpf)
        assert self.target is not None
        self.cut = Tcpdump(bed, self.target, side=side, buffer_kib=buffer_kib, bpf=bpf)
        self.cut.argv[self.cut.argv.index("-s") + 1] = str(SNAPLEN)

    def start(self, timeout: float = 15.0) -> None:
        self.cut.start(timeout)
        super().start(timeout)

    def stop(self, settle: float = 0.3) -> dict[str, int]:
        stats = super().stop(settle)
        self.cut.stop(settle)
        return stats


def _frames(pcap: Path, pattern: str) -> list[int]:
    """Frames whose tshark Info column matches ``pattern``."""
    out = subprocess.run(["tshark", "-r", str(pcap), "-d", "tcp.port==104,dicom",
                          "-d", "tcp.port==11112,dicom", "-d", "tcp.port==11114,dicom",
                          "-T", "fields", "-e", "frame.number", "-e", "_ws.col.Info"],
                         capture_output=True, text=True, check=True).stdout
    rx = re.compile(pattern)
    return [int(n) for n, _, info in (line.partition("\t") for line in out.splitlines())
            if rx.search(info)]


def _editcap(src: Path, dst: Path, *args: str) -> None:
    subprocess.run(["editcap", *args, str(src), str(dst)] if args and args[0] == "-s"
                   else ["editcap", str(src), str(dst), *args], check=True,
                   capture_output=True)


def derive(whole: Path, out: Path, name: str) -> dict[str, Any]:
    """The editcap variants of one whole recording; returns what each lost."""
    made: dict[str, Any] = {}
    for variant, (what, flt, which) in DROPS.items():
        hits = _frames(whole, flt)
        if not hits:
            continue
        frame = hits[which] if -len(hits) <= which < len(hits) else hits[-1]
        dst = out / f"{name}-{variant}.pcap"
        _editcap(whole, dst, str(frame))
        made[dst.name] = {"from": whole.name, "lost": what, "dropped_frames": [frame]}
    total = len(_frames(whole, ""))
    every = [str(i) for i in range(30, total, EVERY)]
    if every:
        dst = out / f"{name}-every{EVERY}.pcap"
        _editcap(whole, dst, *every)
        made[dst.name] = {"from": whole.name, "lost": f"every {EVERY}th frame from the 30th",
                          "dropped_frames": [int(x) for x in every]}
    dst = out / f"{name}-s54.pcap"
    _editcap(whole, dst, "-s", "54")
    made[dst.name] = {"from": whole.name, "lost": "every record cut to 54 bytes (editcap -s 54)"}
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "hostile" / "lossy")
    ap.add_argument("--prefix", default="hos")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rec = Recorder(out, args.prefix, verbose=True)
    index: dict[str, Any] = {}
    session_mod.Tcpdump = _TwoSnaplens  # type: ignore[misc]  the recording's tcpdump
    for name, (scenario, params) in RUNS.items():
        whole = out / f"{name}.pcap"
        _TwoSnaplens.target = out / f"{name}-s{SNAPLEN}.pcap"
        entry = rec.record(scenario, whole, **params)
        index[whole.name] = {"scenario": scenario, "params": entry["params"],
                             "associations": len(entry["associations"]),
                             "totals": entry["totals"]}
        index[_TwoSnaplens.target.name] = {"from": whole.name,
                                           "lost": f"recorded with tcpdump -s {SNAPLEN}"}
        index.update(derive(whole, out, name))
    (out / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
