"""Fuzz target of the compiled walker of small-message runs (dissectors/_small.c; registered in
targets.TARGETS as ``smallwalk``).

A query-heavy association (C-FINDs answered by pending responses, each PDU header a segment of
its own as dcmtk writes them, or cut at any MSS) has bytes of its frames changed, a frame
dropped, repeated or cut short, and is written to a pcap or pcapng file read back in chunks of
any size. The analysis with the walker and without it must agree exactly (associations,
transactions, findings); and the walker, called directly on that file's bytes from any offset
with any parser state, stays inside its chunk and makes only the events it may. Run it under an
AddressSanitizer build of the extension by hand (docs/performance.md) to check its reads.
"""

from __future__ import annotations

import io
import random
from typing import NamedTuple

from hypothesis import strategies as st

from dicomsniff.analysis import accel
from dicomsniff.analysis.engine import Analyzer
from dicomsniff.sources.capture import CaptureReader
from dissectors.ul.events import DataComplete, PdvCommand, PdvData
from tests import builders as b
from tests.accelbuild import compiled_small, compiled_walk

from . import seeds
from .mutators import ByteReader
from .pcapwriter import pcap_bytes, pcapng_bytes

MSS = (1460, 536, 100, 12, 7)
EVENTS = (PdvCommand, PdvData, DataComplete)


class SmallWalkCase(NamedTuple):
    mss: int  # 12: dcmtk's segmentation (headers in segments of their own)
    responses: int
    edits: list[tuple[int, int, int]]  # (frame, byte offset past the Ethernet header, value)
    frame_ops: list[tuple[str, int]]  # ("drop" | "repeat" | "cut" | "swap", frame)
    chunk: int  # the reader's chunk size
    pcapng: bool
    seed: int  # the direct calls' offsets and states


def build(case: SmallWalkCase) -> list[bytes]:
    c = b.TcpConversation(server=("192.0.2.2", 104)).handshake()
    for side, data in seeds.query_steps(n=case.responses):
        pieces = (seeds.dcmtk_segments(data) if case.mss == 12
                  else [data[i:i + case.mss] for i in range(0, len(data), case.mss)])
        for p in pieces:
            c.send(side, p, mss=len(p))
    frames = [bytearray(f) for f in c.close().frames]
    for i, off, v in case.edits:
        f = frames[i % len(frames)]
        f[14 + off % (len(f) - 14)] = v & 0xFF
    out = [bytes(f) for f in frames]
    for op, i in case.frame_ops:
        if not out:
            break
        i %= len(out)
        if op == "drop":
            del out[i]
        elif op == "repeat":
            out.insert(i, out[i])
        elif op == "cut":
            out[i] = out[i][:max(14, len(out[i]) - 1 - i % 40)]
        elif i + 1 < len(out):
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _analyse(data: bytes, chunk: int, small) -> tuple:
    saved = accel.walk, accel.small
    accel.walk, accel.small = compiled_walk(), small
    try:
        a = Analyzer()
        with CaptureReader(io.BytesIO(data), chunk_size=chunk) as r:
            a.consume(r)
        a.finish()
    finally:
        accel.walk, accel.small = saved
    return ([(x.to_record(), [t.to_record() for t in x.transactions],
              [f.to_record() for f in x.findings]) for x in a.associations],
            [f.to_record() for f in a.findings], a.stats.frames)


def _direct(data: bytes, frames: list[bytes], seed: int) -> None:
    """The walker on the file's records from random offsets, with random parser states."""
    walk = compiled_small()
    rng = random.Random(seed)
    key = next((f[26:38] for f in frames if len(f) >= 54), bytes(12))
    rkey = key[4:8] + key[:4] + key[10:12] + key[8:10]
    body = memoryview(data)[24:]
    for _ in range(8):
        off = rng.choice((0, rng.randrange(len(body) + 1)))
        states = []
        for _ in range(2):
            st = rng.choice((1, 3, 4, 5))
            states.append(None if rng.random() < 0.2 else (
                st, rng.randrange(-3, 3000), rng.randrange(-3, 3000), rng.randrange(256),
                rng.random() < 0.5, 4, rng.randrange(1 << 32), rng.random() < 0.2, False,
                rng.choice((16384, 1 << 24)), rng.choice((65536, 30)), False, frozenset(),
                rng.randbytes(rng.randrange(6)) if st in (1, 3) else b"",
                rng.randbytes(rng.randrange(200)) if st == 4 else b""))
        seqs = [rng.choice((None, rng.randrange(1 << 32))) for _ in range(2)]
        got = walk(body, off, ("pcap", False, 1_000_000, 16, 262144, 1), key, rkey, *seqs,
                   *states, 0, -1, 1460, EVENTS)
        assert (got[0] == off) == (got[1] == 0)
        assert got[1] == 0 or off < got[0] <= len(body)
        for side, evs in got[11]:
            assert side in (0, 1) and evs
            assert all(type(e) in EVENTS and 1 <= e.frame <= got[1] for e in evs)


def check(case: SmallWalkCase) -> None:
    from .targets import time_limit

    frames = build(case)
    write = pcapng_bytes if case.pcapng else pcap_bytes
    data = write([(1_700_000_000.0 + i * 0.001, f) for i, f in enumerate(frames)])
    chunk = max(64, case.chunk)
    with time_limit():
        walked = _analyse(data, chunk, compiled_small())
        pure = _analyse(data, chunk, None)
        if not case.pcapng:
            _direct(data, frames, case.seed)
    assert walked == pure, "the small-message walker and Python disagree"


@st.composite
def strategy(draw: st.DrawFn) -> SmallWalkCase:
    edit = st.tuples(st.integers(0, 400), st.one_of(st.integers(0, 60), st.integers(0, 2000)),
                     st.integers(0, 255))
    op = st.tuples(st.sampled_from(("drop", "repeat", "cut", "swap")), st.integers(0, 400))
    return SmallWalkCase(draw(st.sampled_from(MSS)), draw(st.integers(1, 8)),
                         draw(st.lists(edit, max_size=4)), draw(st.lists(op, max_size=3)),
                         draw(st.sampled_from((65536, 4096, 300, 64))),
                         draw(st.booleans()), draw(st.integers(0, 1 << 16)))


def from_bytes(data: bytes) -> SmallWalkCase:
    r = ByteReader(data)
    mss = r.pick(MSS)
    n = 1 + r.u8() % 8
    edits = [(r.uint(2), r.uint(2), r.u8()) for _ in range(r.u8() % 5)]
    ops = [(r.pick(("drop", "repeat", "cut", "swap")), r.uint(2)) for _ in range(r.u8() % 4)]
    return SmallWalkCase(mss, n, edits, ops, r.pick((65536, 4096, 300, 64)), bool(r.u8() & 1),
                         r.uint(2))


def targets(target_cls: type) -> dict:
    return {"smallwalk": target_cls(
        "smallwalk", "the compiled walker of small-message runs on mutated query traffic, "
        "against Python, and called directly", SmallWalkCase, strategy, check, from_bytes, 60)}
