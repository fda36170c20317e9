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

Three more kinds are derived in Python from the whole recordings (no root, no re-recording:
``python3 -m captures.lossy --derive-only``):

* ``NAME-reordered.pcap``: every data segment that the other side's next data segment
  acknowledges is written after it, when nothing else comes between (what a sensor fed by a
  port mirror's two queues sees); time stamps stay in file order, as a sensor stamps them.
  Nothing is lost.
* ``NAME-cut-before-release.pcap``: the frame holding the header of the PDU just before each
  A-RELEASE-RQ is dropped, its tail kept: the parser resynchronises on a lone A-RELEASE-RQ.
* ``NAME-drop1pct-sSEED.pcap`` of the recordings in ``DROP_FROM`` (most with several
  associations): 1% of the frames dropped at random (seeded: the same file each time).
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

from captures import pcapfile  # noqa: E402
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
# Real multi-association recordings of captures/ that lose 1% of their frames at random:
# (recording, seed), seeds whose drops hit PDUs (not only ACKs) and, before issue 14's second
# part, made false findings: a C-STORE of a C-MOVE's or C-GET's sub-operations (move s1, get
# s5 with part of the A-ASSOCIATE-RQ), the A-RELEASE-RP (get s4, mpps s10, ipv6-store s9,
# store-concurrent s14: three associations at once), an N-EVENT-REPORT coming back on its own
# association (storage-commitment-separate s10).
DROP_FROM: list[tuple[str, int]] = [
    ("move.pcap", 1), ("get.pcap", 4), ("get.pcap", 5), ("mpps.pcap", 10),
    ("ipv6-store.pcap", 9), ("storage-commitment-separate.pcap", 10),
    ("store-concurrent.pcap", 14)]
DROP_RATE = 0.01
# Frames of captures/ recordings dropped on purpose: (recording, frames, what they held).
DROP_FRAMES: list[tuple[str, list[int], str]] = [
    ("nget.pcap", [13], "the N-GET-RSP of message 1: the next N-GET-RQ, answered, reuses "
                        "message ID 1 (pynetdicom)")]


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


def _same_connection(a: pcapfile.Segment, b: pcapfile.Segment) -> bool:
    return {(a.src, a.sport), (a.dst, a.dport)} == {(b.src, b.sport), (b.dst, b.dport)}


def reordered(whole: Path) -> tuple[list[pcapfile.Frame], list[int]]:
    """The frames of ``whole`` with each data segment written after the other side's next
    data segment when that one acknowledges all of it and only bare ACKs of the same
    connection come between; returns the frames and the numbers of those moved."""
    frames = list(pcapfile.frames(whole))
    segs = [pcapfile.decode_tcp(f) for f in frames]
    order: list[int] = []
    moved: list[int] = []
    done: set[int] = set()
    for k, s in enumerate(segs):
        if k in done:
            continue
        done.add(k)
        if s is not None and s.payload and not s.flags & 0x07:
            end = (s.seq + len(s.payload)) & 0xFFFFFFFF
            j = k + 1
            while (j < len(segs) and segs[j] is not None and _same_connection(s, segs[j])
                   and not segs[j].payload and not segs[j].flags & 0x07):
                j += 1  # bare ACKs of the same connection
            t = segs[j] if j < len(segs) else None
            if (t is not None and _same_connection(s, t) and t.payload and t.ack == end
                    and (t.src, t.sport) != (s.src, s.sport) and not t.flags & 0x07):
                order.extend(range(k + 1, j + 1))
                done.update(range(k + 1, j + 1))
                moved.append(frames[k].number)
        order.append(k)
    out = [pcapfile.Frame(0, frames[pos].ts, frames[k].data, frames[k].orig_len)
           for pos, k in enumerate(order)]
    return out, moved


def cut_before_release(whole: Path) -> tuple[list[pcapfile.Frame], list[int]]:
    """Without the frame holding the header of the PDU before each A-RELEASE-RQ, where that
    PDU spans several frames (its tail is kept); returns the frames and those dropped."""
    frames = list(pcapfile.frames(whole))
    segs = [s for s in map(pcapfile.decode_tcp, frames) if s is not None]
    drop: list[int] = []
    for s in segs:
        if not (s.syn and not s.flags & 0x10):
            continue
        data, marks = pcapfile.stream(segs, (s.src, s.sport), (s.dst, s.dport))
        pdus = pcapfile.pdus(data)
        for a, b in zip(pdus, pdus[1:], strict=False):
            if b.type != 0x05:
                continue
            starts = [f for (off, f), (nxt, _) in zip(marks, marks[1:] + [(len(data), 0)],
                                                         strict=True)
                      if off <= a.start < nxt]
            last = [f for off, f in marks if off < b.start][-1]
            if starts and starts[0] != last:
                drop.append(starts[0])
    return [f for f in frames if f.number not in drop], drop


def dropped_at_random(whole: Path, seed: int) -> tuple[list[pcapfile.Frame], list[int]]:
    """``whole`` less DROP_RATE of its frames, chosen by ``random.Random(seed)``."""
    import random

    rnd = random.Random(seed)
    keep, drop = [], []
    for f in pcapfile.frames(whole):
        (keep if rnd.random() >= DROP_RATE else drop).append(f)
    return keep, [f.number for f in drop]


def derive_more(out: Path) -> dict[str, Any]:
    """The reordered, cut-before-release and 1%-dropped variants (module docstring)."""
    made: dict[str, Any] = {}

    def write(name: str, src: Path, frames: list[pcapfile.Frame], info: dict) -> None:
        header, _link = pcapfile.read_header(src)
        pcapfile.write(out / name, header, frames)
        made[name] = {"from": src.name, **info}

    for name in RUNS:
        whole = out / f"{name}.pcap"
        frames, moved = reordered(whole)
        if moved:
            write(f"{name}-reordered.pcap", whole, frames, {
                "reordered": "each data segment written after the other side's answer that "
                             "acknowledges it", "moved_frames": moved})
        frames, drop = cut_before_release(whole)
        if drop:
            write(f"{name}-cut-before-release.pcap", whole, frames, {
                "lost": "the frame with the header of the PDU before the A-RELEASE-RQ",
                "dropped_frames": drop})
    for src_name, numbers, what in DROP_FRAMES:
        src = Path(__file__).parent / src_name
        frames = [f for f in pcapfile.frames(src) if f.number not in numbers]
        write(f"{src.stem}-no-response.pcap", src, frames, {
            "lost": what, "dropped_frames": numbers, "from_path": f"captures/{src_name}"})
    for src_name, seed in DROP_FROM:
        src = Path(__file__).parent / src_name
        frames, drop = dropped_at_random(src, seed)
        write(f"{src.stem}-drop1pct-s{seed}.pcap", src, frames, {
            "lost": f"{DROP_RATE:.0%} of the frames at random (seed {seed})",
            "dropped_frames": drop, "from_path": f"captures/{src_name}"})
    return made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "hostile" / "lossy")
    ap.add_argument("--prefix", default="hos")
    ap.add_argument("--derive-only", action="store_true",
                    help="only (re)derive the reordered, cut-before-release and 1%%-dropped "
                         "files from the recordings already in --out (no root)")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.derive_only:
        index = json.loads((out / "index.json").read_text())
        index = {k: v for k, v in index.items()
                 if not re.search(r"-(reordered|cut-before-release|drop1pct-s\d+)\.pcap$", k)
                 and "from_path" not in v}
        index.update(derive_more(out))
        (out / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
        return 0
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
    index.update(derive_more(out))
    (out / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
