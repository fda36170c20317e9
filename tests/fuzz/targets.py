"""Fuzz targets: for each entry point, a hypothesis strategy, an invariant check and a decoder.

A target's ``check(case)`` runs the code under test on one case and asserts the properties the
hostile-input issue promises (no exception, bounded buffers, linear work, deterministic
results). ``strategy()`` draws cases for hypothesis; ``from_bytes(data)`` turns any byte string
into a case, for atheris and for replaying the files in tests/regressions/. Cases are flat
NamedTuples so that a failing one can be saved as a Python literal.
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from hypothesis import strategies as st

from dicomsniff.analysis import accel
from dicomsniff.analysis.engine import Analyzer, Limits
from dicomsniff.sources.capture import CaptureError, CaptureReader
from dissectors import tcp as _tcp
from dissectors.dimse.assembler import Message, MessageAssembler
from dissectors.dimse.command import decode_command
from dissectors.tcp import TcpDirection
from dissectors.ul import events as ev
from dissectors.ul.items import parse_associate
from dissectors.ul.stream import ULStream
from tests import builders as b
from tests.accelbuild import compiled_small, compiled_walk

from . import seeds, tls_seeds
from .mutators import (
    INTERESTING16,
    INTERESTING32,
    ByteReader,
    chunks,
    mutated,
    split_points,
)
from .pcapwriter import pcap_bytes, pcapng_bytes

MASK = 0xFFFFFFFF
_OVERHEAD = getattr(_tcp, "SEGMENT_OVERHEAD", 0)  # bookkeeping bytes counted per held segment
EXAMPLE_TIME_LIMIT = 10.0  # seconds; inputs are a few KB, so anything slower is a hang
USE_ALARM = True  # off under atheris: libFuzzer owns SIGALRM (its -timeout= does the job)

KNOWN_EVENTS = frozenset({ev.AssociateRQ, ev.AssociateAC, ev.AssociateRJ, ev.ReleaseRQ,
                          ev.ReleaseRP, ev.Abort, ev.PDataTF, ev.PdvCommand, ev.PdvData,
                          ev.DataComplete, ev.Malformed, ev.Resync, ev.StreamGap})


class Hang(AssertionError):
    """One example ran longer than EXAMPLE_TIME_LIMIT: the work is not linear in the input."""


@contextlib.contextmanager
def time_limit(seconds: float = EXAMPLE_TIME_LIMIT) -> Iterator[None]:
    """Raise Hang in the main thread after ``seconds`` (no-op where SIGALRM is unavailable)."""
    if not USE_ALARM or not hasattr(signal, "setitimer"):
        yield
        return

    def _alarm(_sig: int, _frame: object) -> None:
        raise Hang(f"example took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def assert_safe_text(value: object, where: str) -> None:
    """Every string that came from the wire is printable ASCII (escaped by wire_str)."""
    if isinstance(value, str):
        assert value.isascii() and value.isprintable(), f"{where}: unsafe string {value!r}"
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            assert_safe_text(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            assert_safe_text(v, f"{where}.{k}")
    elif hasattr(value, "__slots__") and not isinstance(value, (bytes, bytearray)):
        for name in value.__slots__:  # the slotted event dataclasses
            assert_safe_text(getattr(value, name), f"{where}.{name}")


@dataclass(frozen=True)
class Target:
    """One fuzzed entry point."""

    name: str
    doc: str
    case: type
    strategy: Callable[[], st.SearchStrategy[Any]]
    check: Callable[[Any], None]
    from_bytes: Callable[[bytes], Any]
    ci_examples: int  # hypothesis budget in the default test run


# -- shared seeds, built once ------------------------------------------------------------------

_UL_STREAMS = seeds.ul_seed_streams()
_PDUS = seeds.seed_pdus()
_ASSOC = [b.associate_rq(), b.associate_ac(), seeds.associate_rq_rich(),
          seeds.associate_ac_rich()]
_CMDS = seeds.command_sets()
_ECHO_FRAMES = seeds.conversation("echo")
_CAPTURES = [pcap_bytes(_ECHO_FRAMES), pcap_bytes(_ECHO_FRAMES, nanos=True, big_endian=True),
             pcapng_bytes(_ECHO_FRAMES), pcap_bytes(seeds.conversation("reject", mss=40))]


def _length_fields_of_pdus(stream: bytes) -> list[int]:
    """Offsets of the 4-byte PDU length fields (and PDV item lengths) of a valid stream."""
    out = []
    pos = 0
    while pos + 6 <= len(stream):
        ptype, ln = struct.unpack_from("!BxI", stream, pos)
        out.append(pos + 2)
        if ptype == 4:
            p = pos + 6
            while p + 6 <= pos + 6 + ln:
                out.append(p)
                p += 4 + struct.unpack_from("!I", stream, p)[0]
        pos += 6 + ln
    return out


def _item_length_fields(pdu: bytes) -> list[int]:
    """Offsets of the 2-byte item and sub-item length fields of a valid A-ASSOCIATE PDU."""
    out = []

    def walk(a: int, e: int, nested: bool) -> None:
        while a + 4 <= e:
            t, ln = struct.unpack_from("!BxH", pdu, a)
            out.append(a + 2)
            if nested and t in (0x20, 0x21):
                walk(a + 8, a + 4 + ln, False)
            elif nested and t == 0x50:
                walk(a + 4, a + 4 + ln, False)
            a += 4 + ln

    walk(74, len(pdu), True)
    return out


def _set_field(data: bytes, off: int, width: int, value: int) -> bytes:
    fmt = "!I" if width == 4 else "!H"
    return data[:off] + struct.pack(fmt, value) + data[off + width:]


@st.composite
def _length_flipped(draw: st.DrawFn, seeds_: list[bytes], fields: Callable[[bytes], list[int]],
                    width: int) -> bytes:
    """A seed with one or two length fields set to 0, odd, huge or 0xFFFFFFFF."""
    data = draw(st.sampled_from(seeds_))
    offs = fields(data)
    values = INTERESTING32 if width == 4 else INTERESTING16
    for _ in range(draw(st.integers(1, 2))):
        if offs:
            data = _set_field(data, draw(st.sampled_from(offs)), width,
                              draw(st.sampled_from(values)))
    return data


# == pcap / pcapng reader ======================================================================

class CaptureCase(NamedTuple):
    data: bytes
    chunk_size: int


def _read_all(data: bytes, chunk: int) -> tuple[Any, ...]:
    try:
        r = CaptureReader(io.BytesIO(data), chunk_size=chunk)
    except CaptureError as exc:
        return ("unusable", str(exc))
    pkts = []
    for ts, lt, view, olen in r:
        assert isinstance(ts, float) and isinstance(lt, int) and isinstance(olen, int)
        assert len(view) <= r.max_caplen
        pkts.append((ts, lt, bytes(view), olen))
    assert r.packets == len(pkts)
    assert r.error is None or (isinstance(r.error, str) and r.error)
    return ("read", pkts, r.error, r.format, r.warnings)


def check_capture(case: CaptureCase) -> None:
    """No exception but CaptureError at open; same packets whatever the read chunk size."""
    with time_limit():
        whole = _read_all(case.data, 1 << 20)
        small = _read_all(case.data, case.chunk_size)
    assert whole[0] == small[0]
    if whole[0] == "read":  # (an unusable stream is described from what one read returned)
        assert whole[1] == small[1], "packets depend on the read chunk size"
        assert (whole[2] is None) == (small[2] is None), (whole[2], small[2])


def capture_strategy() -> st.SearchStrategy[CaptureCase]:
    data = st.one_of(
        mutated(st.sampled_from(_CAPTURES), max_ops=8),
        st.sampled_from([b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a", b"\x4d\x3c\xb2\xa1"]).flatmap(
            lambda m: st.binary(max_size=200).map(lambda x: m + x)),
        st.binary(max_size=64),
    )
    return st.builds(CaptureCase, data, st.sampled_from([1, 7, 16, 29, 100, 4096]))


def capture_from_bytes(data: bytes) -> CaptureCase:
    r = ByteReader(data)
    chunk = 1 + r.u8()
    mode = r.u8() % 3
    if mode == 0:
        return CaptureCase(r.mutate(r.pick(_CAPTURES), 8), chunk)
    return CaptureCase(r.rest(), chunk)


# == TCP reassembly ============================================================================

class TcpCase(NamedTuple):
    length: int  # stream length
    isn: int
    segments: list[tuple[int, int]]  # (start, end) offsets in the stream, in arrival order
    dropped: list[int]  # indexes into segments never delivered
    max_buffer: int
    syn: bool  # False: picked up mid-stream, the first segment fixes the start
    acks: list[tuple[int, int]]  # (after segment index, ack offset)
    corrupt: list[int]  # segments whose bytes differ from the first copy (a conflict)


def _stream(n: int) -> bytes:
    return bytes((i * 7 + i // 251) & 0xFF for i in range(n))


class _Recorder:
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []

    def feed(self, data: bytes | memoryview, frame: int, ts: float) -> None:
        self.items.append(("data", bytes(data)))

    def gap(self, missing: int, frame: int, ts: float) -> None:
        self.items.append(("gap", missing))


def check_tcp(case: TcpCase) -> None:
    """Bytes come out at their stream offsets; lost bytes are gaps, never invented or shifted.

    With no loss, no acks and a buffer big enough: output == input. Always: delivered plus gap
    bytes == the furthest byte received (minus the start), and the buffer stays bounded.
    """
    stream = _stream(case.length)
    rec = _Recorder()
    d = TcpDirection(rec, case.max_buffer)
    base_seq = (case.isn + 1) & MASK
    if case.syn:
        d.syn(case.isn)
    dropped = set(case.dropped)
    acks: dict[int, list[int]] = {}
    for i, a in case.acks:
        acks.setdefault(i, []).append(a)
    start = 0 if case.syn else None
    furthest = 0
    longest = 0
    with time_limit():
        for i, (a, e) in enumerate(case.segments):
            if i not in dropped:
                data = stream[a:e]
                if i in case.corrupt and data:
                    data = bytes(x ^ 0xFF for x in data)
                if start is None:
                    start = 0 if case.syn else a
                if e > a:
                    furthest = max(furthest, e)
                longest = max(longest, e - a)
                d.segment((base_seq + a) & MASK, data, i, float(i))
                # held_bytes may count per-segment bookkeeping on top of the payload.
                assert d.held_bytes <= case.max_buffer + longest + _OVERHEAD, (
                    "reassembly buffer unbounded")
                assert sum(len(h[0]) for h in d.held.values()) <= d.held_bytes
            for ack in acks.get(i, ()):
                d.acked((base_seq + ack) & MASK, i, float(i))
        d.flush(len(case.segments), 0.0)
    assert not d.held and d.held_bytes == 0
    if start is None:
        assert not rec.items
        return
    pos = start
    for kind, v in rec.items:
        if kind == "data":
            assert v, "empty feed"
            if not case.corrupt:
                assert v == stream[pos:pos + len(v)], f"bytes at offset {pos} are wrong"
            pos += len(v)
        else:
            assert v > 0, "non-positive gap"
            pos += v
    expect = max(furthest, start)
    # An ACK past every byte seen declares those bytes lost too (the peer had them).
    acked_past = {a for _, a in case.acks if a > expect}
    assert pos == expect or pos in acked_past, (
        f"delivered + gaps = {pos - start}, stream received = {expect - start}")
    assert d.delivered + d.missing_bytes == pos - start
    # Overlapping copies are held separately, so the buffer must fit every segment at once.
    held_at_most = sum(e - a + _OVERHEAD for a, e in case.segments)
    lossless = (case.syn and not dropped and not case.acks and not case.corrupt
                and case.max_buffer >= held_at_most)
    covered = bytearray(case.length)
    for a, e in case.segments:
        covered[a:e] = b"\x01" * (e - a)
    if lossless and all(covered):
        assert b"".join(v for k, v in rec.items if k == "data") == stream
        assert d.gaps == 0


@st.composite
def tcp_strategy(draw: st.DrawFn) -> TcpCase:
    n = draw(st.integers(0, 3000))
    cuts = sorted(set(draw(st.lists(st.integers(0, n), max_size=30))) | {0, n})
    segs = list(zip(cuts, cuts[1:], strict=False))
    # Retransmissions and overlaps: extra segments anywhere, possibly straddling boundaries.
    for a, ln in draw(st.lists(st.tuples(st.integers(0, n), st.integers(0, 600)), max_size=8)):
        segs.append((a, min(n, a + ln)))
    order = draw(st.permutations(range(len(segs)))) if draw(st.booleans()) else range(len(segs))
    segs = [segs[i] for i in order]
    edge = st.sampled_from([MASK, MASK - 1, MASK - 100, 0x7FFFFFFF, 0x80000000, 0])
    isn = draw(st.one_of(edge, st.integers(0, MASK), st.integers(0, n).map(lambda k: MASK - k)))
    lossy = draw(st.booleans())
    idx = st.integers(0, max(0, len(segs) - 1))
    dropped = draw(st.lists(idx, max_size=4)) if lossy else []
    acks = draw(st.lists(st.tuples(idx, st.integers(0, n + 10)), max_size=6)) if lossy else []
    corrupt = draw(st.lists(idx, max_size=2)) if lossy and draw(st.booleans()) else []
    max_buffer = draw(st.sampled_from([4 << 20, 4 << 20, 64, 500, 2000]))
    return TcpCase(n, isn, segs, dropped, max_buffer, draw(st.booleans()) or not lossy, acks,
                   corrupt)


def tcp_from_bytes(data: bytes) -> TcpCase:
    r = ByteReader(data)
    n = r.uint(2) % 3001
    cuts = sorted({0, n, *(r.uint(2) % (n + 1) for _ in range(r.u8() % 30))})
    segs = list(zip(cuts, cuts[1:], strict=False))
    for _ in range(r.u8() % 8):
        a = r.uint(2) % (n + 1)
        segs.append((a, min(n, a + r.uint(2) % 600)))
    for i in range(len(segs) - 1, 0, -1):  # Fisher-Yates driven by the input
        j = r.u8() % (i + 1)
        segs[i], segs[j] = segs[j], segs[i]
    k = max(1, len(segs))
    return TcpCase(n, r.uint(4), segs, [r.u8() % k for _ in range(r.u8() % 4)],
                   r.pick([4 << 20, 64, 500, 2000]), bool(r.u8() & 1),
                   [(r.u8() % k, r.uint(2) % (n + 11)) for _ in range(r.u8() % 6)],
                   [r.u8() % k for _ in range(r.u8() % 3)])


# == UL stream =================================================================================

class ULCase(NamedTuple):
    data: bytes
    cuts: list[int]
    synced: bool
    small_caps: bool
    gaps: list[tuple[int, int]]  # (chunk index, missing bytes): gap() before that chunk
    valid: bool  # unmutated seed: results must not depend on the split points


def _run_ul(data: bytes, cuts: list[int], synced: bool, small: bool,
            gaps: list[tuple[int, int]] = ()) -> tuple[list, ULStream]:
    caps = {"max_associate_pdu": 300, "max_command": 40} if small else {}
    u = ULStream(synced=synced, **caps)
    out: list = []
    gap_at: dict[int, list[int]] = {}
    for i, m in gaps:
        gap_at.setdefault(i, []).append(m)
    for i, piece in enumerate(chunks(data, cuts)):
        for m in gap_at.get(i, ()):
            u.gap(m, 1, 0.0)
        u.feed(piece, 1, 0.0)
        # Buffers stay bounded by the caps, whatever the bytes.
        assert len(u._body) <= u.max_associate_pdu + 6, "PDU body buffer over its cap"
        assert len(u._cmd) <= u.max_command, "command buffer over its cap"
        assert len(u._hunt) <= 16 and len(u._part) < 6, "hunt/header buffer grows"
        out += u.events
        u.events = []
    u.close(2, 0.0)
    out += u.events
    u.events = []
    return out, u


def check_ul(case: ULCase) -> None:
    """Known events only, bounded buffers, and (valid input) split-independent results."""
    with time_limit():
        evs, u = _run_ul(case.data, case.cuts, case.synced, case.small_caps, case.gaps)
        whole, _ = _run_ul(case.data, [], case.synced, case.small_caps, case.gaps and
                           [(0, m) for _, m in case.gaps])
    assert u.bytes_in == len(case.data)
    assert u.data_bytes <= len(case.data)
    for e in evs:
        assert type(e) in KNOWN_EVENTS, type(e)
        if type(e) is ev.Malformed:
            assert e.code.startswith("UL-") and e.message
        elif type(e) is ev.Resync:
            assert e.skipped > 0
        assert_safe_text(e, type(e).__name__)
    if not case.gaps:
        assert evs == whole, "events depend on how the stream was split into segments"
    if case.valid and not case.small_caps:
        assert not any(type(e) in (ev.Malformed, ev.Resync) for e in evs)


@st.composite
def _pdu_soup(draw: st.DrawFn) -> bytes:
    return b"".join(draw(st.lists(st.sampled_from(_PDUS), min_size=1, max_size=6)))


def ul_strategy() -> st.SearchStrategy[ULCase]:
    valid = st.sampled_from(_UL_STREAMS)
    hostile = st.one_of(
        st.binary(max_size=300),
        mutated(st.sampled_from(_UL_STREAMS)),
        mutated(_pdu_soup()),
        _length_flipped(_UL_STREAMS + _PDUS, _length_fields_of_pdus, 4),
    )

    @st.composite
    def case(draw: st.DrawFn) -> ULCase:
        is_valid = draw(st.booleans())
        data = draw(valid if is_valid else hostile)
        cuts = draw(split_points(len(data)))
        gaps = [] if is_valid else draw(st.lists(
            st.tuples(st.integers(0, len(cuts)), st.sampled_from([1, 5, 6, 100, 1 << 31])),
            max_size=2))
        return ULCase(data, cuts, draw(st.booleans()) or is_valid, draw(st.booleans()), gaps,
                      is_valid)
    return case()


def ul_from_bytes(data: bytes) -> ULCase:
    r = ByteReader(data)
    mode = r.u8() % 4
    cuts = sorted(r.uint(2) for _ in range(r.u8() % 12))
    synced, small = bool(r.u8() & 1), bool(r.u8() & 1)
    if mode == 0:
        return ULCase(r.pick(_UL_STREAMS), cuts, True, small, [], True)
    if mode == 1:
        return ULCase(r.mutate(r.pick(_UL_STREAMS)), cuts, synced, small, [], False)
    return ULCase(r.rest(), cuts, synced, small, [], False)


# == A-ASSOCIATE items =========================================================================

class AssocCase(NamedTuple):
    pdu: bytes
    valid: bool


def check_assoc(case: AssocCase) -> None:
    """parse_associate never raises, all strings are escaped, a passcode is never kept."""
    problems: list[tuple[str, str]] = []
    with time_limit():
        res = parse_associate(case.pdu, 1, 0.0, problems)
    assert res is None or type(res) in (ev.AssociateRQ, ev.AssociateAC)
    for code, msg in problems:
        assert code.startswith("UL-") and isinstance(msg, str)
    assert_safe_text(res, "associate")
    assert_safe_text([m for _, m in problems], "problems")
    if case.valid:
        assert not problems and res is not None
        assert seeds.SECRET not in repr(res), "user identity passcode kept in the parse result"


def assoc_strategy() -> st.SearchStrategy[AssocCase]:
    hostile = st.one_of(
        mutated(st.sampled_from(_ASSOC)),
        _length_flipped(_ASSOC, _item_length_fields, 2),
        st.binary(max_size=100).map(lambda x: b"\x01\x00\x00\x00\x00\x00" + bytes(68) + x),
    )
    return st.one_of(st.builds(AssocCase, hostile, st.just(False)),
                     st.builds(AssocCase, st.sampled_from(_ASSOC), st.just(True)))


def assoc_from_bytes(data: bytes) -> AssocCase:
    r = ByteReader(data)
    if r.u8() & 1:
        return AssocCase(r.mutate(r.pick(_ASSOC), 8), False)
    return AssocCase(b"\x01\x00" + r.rest(), False)


# == DIMSE command sets and the message assembler ==============================================

class CommandCase(NamedTuple):
    raw: bytes
    valid: bool


def _element_length_fields(raw: bytes) -> list[int]:
    out, pos = [], 0
    while pos + 8 <= len(raw):
        out.append(pos + 4)
        pos += 8 + struct.unpack_from("<I", raw, pos + 4)[0]
    return out


def check_command(case: CommandCase) -> None:
    with time_limit():
        out, problems = decode_command(case.raw)
    for code, msg in problems:
        assert code.startswith("DIMSE-") and isinstance(msg, str)
    for k, v in out.items():
        assert isinstance(v, (int, str, list)), (k, v)
    assert_safe_text(out, "command")
    if case.valid:
        assert not problems and isinstance(out.get("CommandField"), int)


def command_strategy() -> st.SearchStrategy[CommandCase]:
    hostile = st.one_of(
        mutated(st.sampled_from(_CMDS)),
        _length_flipped(_CMDS, _element_length_fields, 4),
        st.binary(max_size=120),
    )
    return st.one_of(st.builds(CommandCase, hostile, st.just(False)),
                     st.builds(CommandCase, st.sampled_from(_CMDS), st.just(True)))


def command_from_bytes(data: bytes) -> CommandCase:
    r = ByteReader(data)
    if r.u8() & 1:
        return CommandCase(r.mutate(r.pick(_CMDS), 8), False)
    return CommandCase(r.rest(), False)


class AssemblerCase(NamedTuple):
    # ("cmd", ctx, last, bytes) | ("data", ctx, last, length) | ("done", ctx, partial)
    # | ("gap", resynchronised)
    ops: list[tuple]
    max_command_bytes: int


def check_assembler(case: AssemblerCase) -> None:
    """Each message is announced once, completes at most once, and state stays bounded."""
    asm = MessageAssembler(case.max_command_bytes)
    seen_cmd: set[int] = set()
    done: set[int] = set()
    keep: list = []  # keep Message objects alive so that id() stays unique

    def drain() -> None:
        for kind, m in asm.out:
            keep.append(m)
            assert kind in ("command", "complete")
            if kind == "command":
                assert id(m) not in seen_cmd
                seen_cmd.add(id(m))
            else:
                assert id(m) in seen_cmd, "completed before its command was announced"
                assert id(m) not in done, "message completed twice"
                done.add(id(m))
            assert_safe_text(m.command, "command")
        asm.out.clear()
        for _frame, code, text in asm.problems:
            assert code.startswith("DIMSE-") and isinstance(text, str)
        asm.problems.clear()
        assert len(asm._pending) <= 256
        # in progress: command fragments (bounded) or a whole message awaiting its data set
        assert all(len(p.cmd) <= case.max_command_bytes for p in asm._pending.values()
                   if not isinstance(p, Message))

    with time_limit():
        for i, op in enumerate(case.ops):
            if op[0] == "cmd":
                asm.on_command(ev.PdvCommand(i, float(i), op[1], op[2], op[3]))
            elif op[0] == "data":
                asm.on_data(ev.PdvData(i, float(i), op[1], op[2], op[3]))
            elif op[0] == "done":
                asm.on_data_complete(ev.DataComplete(i, float(i), op[1], op[2]))
            else:
                asm.on_gap(ev.StreamGap(i, float(i), 10, op[1]))
            drain()
        asm.close(len(case.ops), 0.0)
        drain()
    assert not asm._pending


@st.composite
def assembler_strategy(draw: st.DrawFn) -> AssemblerCase:
    ctx = st.sampled_from([1, 3, 5, 255])
    cmd_bytes = st.one_of(st.sampled_from(_CMDS), mutated(st.sampled_from(_CMDS), 3),
                          st.binary(max_size=30))
    op = st.one_of(
        st.tuples(st.just("cmd"), ctx, st.booleans(), cmd_bytes),
        st.tuples(st.just("data"), ctx, st.booleans(), st.integers(0, 1 << 32)),
        st.tuples(st.just("done"), ctx, st.booleans()),
        st.tuples(st.just("gap"), st.booleans()),
    )
    return AssemblerCase(draw(st.lists(op, max_size=30)), draw(st.sampled_from([1 << 16, 64])))


def assembler_from_bytes(data: bytes) -> AssemblerCase:
    r = ByteReader(data)
    ops: list[tuple] = []
    while r.left() and len(ops) < 200:
        k = r.u8() % 4
        c = r.pick([1, 3, 5, 255])
        if k == 0:
            ops.append(("cmd", c, bool(r.u8() & 1), r.mutate(r.pick(_CMDS), 2)))
        elif k == 1:
            ops.append(("data", c, bool(r.u8() & 1), r.uint(4)))
        elif k == 2:
            ops.append(("done", c, bool(r.u8() & 1)))
        else:
            ops.append(("gap", bool(r.u8() & 1)))
    return AssemblerCase(ops, 1 << 16)


# == the whole analyzer on frames ==============================================================

class AnalyzerCase(NamedTuple):
    # (kind, port, mss, client isn, server isn, client port) per connection
    conversations: list[tuple[str, int, int, int, int, int]]
    interleave: list[int]  # which conversation the next frame comes from
    # frame-level mutations: (op, frame index, argument, bytes)
    mutations: list[tuple[str, int, int, bytes]]
    limits: tuple[int, int, int]  # max_streams, max_findings, max_tcp_buffer (0: default)


FRAME_OPS = ("drop", "dup", "swap", "payload", "lenfield", "trunc", "flags", "seqjump",
             "garbage", "syn", "iplen", "doff")
# IPv4 total lengths where the fast path and the general path could read a packet apart:
# 0 (TSO), shorter than the headers, one off, past the frame.
_IP_TOTALS = (0, 1, 19, 20, 39, 40, 41, 0xFFFF)


def build_frames(case: AnalyzerCase) -> list[bytes]:
    """The case's conversations interleaved, then mutated at the frame level."""
    queues = [seeds.conversation(kind, port=port, mss=mss, isn=(ci, si),
                                 client=("192.0.2.1", cport))
              for kind, port, mss, ci, si, cport in case.conversations]
    frames: list[bytes] = []
    it = iter(case.interleave)
    while any(queues):
        live = [q for q in queues if q]
        q = live[next(it, 0) % len(live)]
        frames.append(q.pop(0))
    for op, i, arg, blob in case.mutations:
        if not frames and op != "garbage":
            continue
        i %= max(1, len(frames))
        if op == "drop":
            del frames[i]
        elif op == "dup":
            frames.insert(i, frames[i])
        elif op == "swap" and i + 1 < len(frames):
            frames[i], frames[i + 1] = frames[i + 1], frames[i]
        elif op == "payload" and len(frames[i]) > 54:
            f = bytearray(frames[i])
            p = 54 + arg % (len(f) - 54)
            f[p] ^= 1 << (arg & 7) if not blob else blob[0] | 1
            frames[i] = bytes(f)
        elif op == "lenfield" and len(frames[i]) >= 60:
            # The PDU length field if a PDU starts this segment (it usually does).
            frames[i] = _set_field(frames[i], 56, 4, INTERESTING32[arg % len(INTERESTING32)])
        elif op == "trunc":
            frames[i] = frames[i][:arg % (len(frames[i]) + 1)]
        elif op == "flags" and len(frames[i]) > 47:
            f = bytearray(frames[i])
            f[47] = arg & 0xFF
            frames[i] = bytes(f)
        elif op == "seqjump" and len(frames[i]) >= 42:
            seq = struct.unpack_from("!I", frames[i], 38)[0]
            frames[i] = _set_field(frames[i], 38, 4, (seq + (arg << 12)) & MASK)
        elif op == "iplen" and len(frames[i]) >= 54:
            total = struct.unpack_from("!H", frames[i], 16)[0]
            v = _IP_TOTALS[arg % len(_IP_TOTALS)] if arg % 3 else total + (arg >> 2) % 5 - 2
            frames[i] = _set_field(frames[i], 16, 2, v & 0xFFFF)
        elif op == "doff" and len(frames[i]) >= 54:
            f = bytearray(frames[i])
            f[46] = (arg % 16) << 4 | (f[46] & 0x0F)  # below 5 included
            frames[i] = bytes(f)
        elif op == "garbage":
            frames.insert(i, frames[i][:54] + blob if frames else blob)
        elif op == "syn" and len(frames[i]) >= 54:
            # A SYN from another source port: a half-open connection.
            f = bytearray(frames[i][:54])
            f[34:36] = struct.pack("!H", 1024 + arg % 60000)
            f[47] = 0x02
            frames.insert(i, bytes(f))
    return frames


def _limits(case: AnalyzerCase) -> Limits:
    ms, mf, mb = case.limits
    lim = Limits()
    if ms:
        lim.max_streams = ms
    if mf:
        lim.max_findings = mf
    if mb:
        lim.max_tcp_buffer = mb
    return lim


def _snapshot(a: Analyzer) -> tuple:
    assocs = []
    for x in a.associations:
        assocs.append((x.to_record(), [t.to_record() for t in x.transactions],
                       [f.to_record() for f in x.findings]))
    return assocs, [f.to_record() for f in a.findings], a.stats.findings


def run_analyzer(frames: list[bytes], limits: Limits, fast: bool = True,
                 t0: float = 1_700_000_000.0) -> Analyzer:
    a = Analyzer(limits=limits)
    if fast:
        a.consume((t0 + i * 0.001, 1, memoryview(f), len(f)) for i, f in enumerate(frames))
    else:
        for i, f in enumerate(frames):
            a.feed_frame(i + 1, t0 + i * 0.001, 1, f)
    a.finish()
    return a


def run_from_pcap(frames: list[bytes], limits: Limits, walker: Any,
                  t0: float = 1_700_000_000.0) -> Analyzer:
    """The frames written to a pcap file (pcapng when there is an odd number of them) and
    read back, as ``analyze`` reads a file: with ``walker`` (the compiled bulk-run walker,
    dicomsniff/analysis/accel.py, and the walker of small-message runs) or without."""
    write = pcapng_bytes if len(frames) & 1 else pcap_bytes
    data = write([(t0 + i * 0.001, f) for i, f in enumerate(frames)])
    saved = accel.walk, accel.small
    accel.walk = walker  # and the walker of small-message runs with it (dissectors/_small.c)
    accel.small = compiled_small() if walker is not None else None
    try:
        a = Analyzer(limits=limits)
        with CaptureReader(io.BytesIO(data), chunk_size=4096) as r:
            a.consume(r)
        a.finish()
    finally:
        accel.walk, accel.small = saved
    return a


def check_analyzer(case: AnalyzerCase) -> None:
    """consume() never raises, caps hold, records serialise, the inline fast path of
    consume() agrees exactly with the general feed_frame() path, and the compiled walker of
    bulk runs with the Python path."""
    frames = build_frames(case)
    lim = _limits(case)
    with time_limit():
        a = run_analyzer(frames, lim, fast=True)
        slow = run_analyzer(frames, _limits(case), fast=False)
        walked = run_from_pcap(frames, _limits(case), compiled_walk())
        pure = run_from_pcap(frames, _limits(case), None)
    st_ = a.stats
    assert not a.open
    assert len(a.findings) <= lim.max_findings
    assert st_.findings == len(a.findings) + st_.findings_dropped
    assert st_.evicted <= st_.connections + len(frames)
    for x in a.associations:
        assert x.outcome in ("released", "aborted", "rejected", "closed", "incomplete"), x.outcome
        rec = json.dumps(x.to_record(), allow_nan=False, default=str)
        assert seeds.SECRET not in rec
        for t in x.transactions:
            json.dumps(t.to_record(), allow_nan=False, default=str)
    for f in a.findings:
        assert f.severity in ("error", "warning", "info") and f.code
        assert_safe_text(f.message, f.code)
    assert _snapshot(a) == _snapshot(slow), "consume() fast path and feed_frame() disagree"
    assert _snapshot(walked) == _snapshot(pure), "the compiled walker and Python disagree"


@st.composite
def analyzer_strategy(draw: st.DrawFn) -> AnalyzerCase:
    conv = st.tuples(
        st.sampled_from(seeds.CONVERSATION_KINDS),
        st.sampled_from([104, 11112, 33333]),
        st.sampled_from([1460, 1000, 536, 100, 37, 7]),
        st.one_of(st.just(1000), st.integers(0, MASK), st.just(MASK - 3)),
        st.one_of(st.just(5000), st.integers(0, MASK)),
        st.integers(1024, 65535),
    )
    convs = draw(st.lists(conv, min_size=1, max_size=3, unique_by=lambda c: c[5]))
    mut = st.tuples(st.sampled_from(FRAME_OPS), st.integers(0, 400), st.integers(0, 1 << 20),
                    st.binary(max_size=40))
    limits = draw(st.one_of(st.just((0, 0, 0)),
                            st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from([0, 1, 5]),
                                      st.sampled_from([0, 100, 3000]))))
    return AnalyzerCase(convs, draw(st.lists(st.integers(0, 2), max_size=80)),
                        draw(st.lists(mut, max_size=8)), limits)


def analyzer_from_bytes(data: bytes) -> AnalyzerCase:
    r = ByteReader(data)
    convs = []
    used: set[int] = set()
    for _ in range(1 + r.u8() % 3):
        cport = 1024 + r.uint(2) % 60000
        if cport in used:
            continue
        used.add(cport)
        convs.append((r.pick(seeds.CONVERSATION_KINDS), r.pick([104, 11112, 33333]),
                      r.pick([1460, 1000, 536, 100, 37, 7]), r.uint(4), r.uint(4), cport))
    inter = [r.u8() for _ in range(r.u8() % 80)]
    muts = [(r.pick(FRAME_OPS), r.uint(2), r.uint(3), r.take(r.u8() % 41))
            for _ in range(r.u8() % 9)]
    return AnalyzerCase(convs, inter, muts, (r.pick([0, 1, 2]), r.pick([0, 1, 5]),
                                             r.pick([0, 100, 3000])))


# == the command line, in-process, on a capture file ===========================================

class CliCase(NamedTuple):
    analyzer: AnalyzerCase
    fmt: str  # "pcap" | "pcapng"
    file_ops: list[tuple[str, int, int, bytes]]  # byte mutations of the file itself
    t0: float  # capture start time (the far future and the far past are legal in pcapng)
    hostile_strings: bool  # add the escape/markup/password association


def run_cli(path: str, *args: str) -> tuple[int, str, str]:
    """dicomsniff.cli.main in-process, with stdout/stderr captured."""
    from dicomsniff import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["analyze", path, "--no-progress", *args])
    return code, out.getvalue(), err.getvalue()


def check_cli(case: CliCase) -> None:
    """Whole pipeline: exit 0/2/3, no escape byte or passcode in the output, valid JSON."""
    from .mutators import apply_op

    frames = build_frames(case.analyzer)
    if case.hostile_strings:
        frames = seeds.hostile_strings_conversation() + frames
    frames_ts = [(case.t0 + i * 0.001, f) for i, f in enumerate(frames)]
    data = bytearray(pcap_bytes(frames_ts) if case.fmt == "pcap" else pcapng_bytes(frames_ts))
    for op, pos, arg, blob in case.file_ops:
        apply_op(data, op, pos, arg, blob)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "f.cap")
        Path(path).write_bytes(data)
        with time_limit(2 * EXAMPLE_TIME_LIMIT):
            code, text, err = run_cli(path)
            jcode, jout, jerr = run_cli(path, "--json")
    assert code == jcode and code in (0, 2, 3), (code, jcode, err)
    assert (code == 2) == (not text), "no report, yet not exit 2 (or the reverse)"
    for out in (text, jout, err, jerr):
        assert "\x1b" not in out, "an escape byte reached the output"
        assert seeds.SECRET not in out, "the user identity passcode was printed"
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("dicomsniff: "), err
    for line in jout.splitlines():
        json.loads(line)
    if case.hostile_strings and code == 0 and not case.file_ops:
        # (a byte changed in the file may take the association away: the interface's link
        # type, say, and then no frame is read as Ethernet)
        assert "[red]BOLD[/red]" in text and "[link=http://x]y" in text


@st.composite
def cli_strategy(draw: st.DrawFn) -> CliCase:
    ac = draw(analyzer_strategy())
    ops = draw(st.lists(st.tuples(st.sampled_from(["flip", "u32", "truncate", "byte"]),
                                  st.integers(0, 1 << 16), st.integers(-255, 255),
                                  st.binary(max_size=4)), max_size=2))
    # Times pcap can hold. pcapng's 64-bit far future (1.8e13 s) crashes the text report: that
    # known bug has its own test (test_fuzz.py), so it does not eat the fuzzing budget here.
    t0 = draw(st.sampled_from([1_700_000_000.0, 1_700_000_000.0, 0.0, 4e9]))
    fmt = draw(st.sampled_from(["pcap", "pcapng"]))
    return CliCase(ac, fmt, ops, t0, draw(st.booleans()))


def cli_from_bytes(data: bytes) -> CliCase:
    r = ByteReader(data)
    fmt = r.pick(["pcap", "pcapng"])
    t0 = r.pick([1_700_000_000.0, 0.0, 4e9] + ([1.8e13] if fmt == "pcapng" else []))  # see above
    hostile = bool(r.u8() & 1)
    ops = [(r.pick(["flip", "u32", "truncate", "byte"]), r.uint(2), r.u8() - 128, r.take(4))
           for _ in range(r.u8() % 3)]
    return CliCase(analyzer_from_bytes(r.rest()), fmt, ops, t0, hostile)


# == TLS record layer, handshake and decryption ===============================================

class TLSCase(NamedTuple):
    seed: int  # which recorded transcript
    chunks: list[tuple[int, bytes]]  # (side, bytes), possibly mutated
    cuts: list[int]  # split points applied to every chunk
    keys: bool  # with the transcript's key log
    small_caps: bool  # a 600-byte handshake message cap
    holes: tuple = ()  # (chunk index, offset, length): bytes lost, told to the side as a gap


class _SinkRecorder(_Recorder):
    __slots__ = ()

    def close(self, frame: int, ts: float) -> None:
        self.items.append(("close", 0))


def _tls_run(case: TLSCase):
    from dissectors.tls import connection as tc
    from dissectors.tls.keylog import KeyLog

    kl = None
    if case.keys:
        kl = KeyLog()
        kl.add_lines(tls_seeds.load()[case.seed % len(tls_seeds.load())][0].splitlines())
    recs = (_SinkRecorder(), _SinkRecorder())
    conn = tc.TLSConnection(kl, inner=lambda c: recs,
                            max_handshake=600 if case.small_caps else tc.DEFAULT_MAX_HANDSHAKE)
    holes = {i: (off, n) for i, off, n in case.holes}
    for i, (side, data) in enumerate(case.chunks):
        d = conn.sides[side & 1]
        after = b""
        if i in holes and data:  # bytes lost from the capture: a gap, then the rest
            off, n = holes[i]
            off %= len(data)
            n = max(1, n % (len(data) - off + 1))
            data, after = data[:off], data[off + n:]
        for part, gap in ((data, i in holes), (after, False)):
            for piece in chunks(part, case.cuts):
                if piece:
                    d.feed(piece, i + 1, float(i))
                assert len(d.body) <= tc.MAX_RECORD, "record buffer over a record"
                assert len(d.hs) <= conn.max_handshake + tc.MAX_RECORD + 4, \
                    "handshake buffer grows"
                assert len(d.rbuf) <= tc.RESYNC_WINDOW + len(piece), "resync buffer grows"
            if gap:
                d.gap(holes[i][1] % 5000 + 1, i + 1, float(i))
    for d in conn.sides:
        d.close(len(case.chunks), 0.0)
    return conn, recs


def check_tls(case: TLSCase) -> None:
    """No exception; bounded buffers and event lists; escaped strings; plaintext never more
    than the records carried; unmutated input gives the same result at any split points."""
    from dissectors.tls import connection as tc

    with time_limit():
        conn, recs = _tls_run(case)
    assert len(conn.events) <= tc.MAX_EVENTS and len(conn.alerts) <= tc.MAX_ALERTS
    for v in (conn.sni, conn.alpn, conn.version_name, conn.suite_name):
        assert_safe_text(v, "tls")
    for chain in conn.certificates:
        for cert in chain or ():
            assert_safe_text([cert.subject, cert.issuer, cert.error, cert.san], "certificate")
    for side, r in enumerate(recs):
        plain = sum(len(v) for k, v in r.items if k == "data")
        assert plain <= conn.sides[side].app_bytes, "more plaintext than ciphertext"
    original = tls_seeds.load()[case.seed % len(tls_seeds.load())][1]
    if case.chunks == original and not case.small_caps and not case.holes:
        whole, wrecs = _tls_run(case._replace(cuts=[]))
        assert [r.items for r in recs] == [r.items for r in wrecs], "depends on split points"
        assert not [e for e in conn.events if isinstance(e, tc.Problem)], conn.events


@st.composite
def tls_strategy(draw: st.DrawFn) -> TLSCase:
    n = len(tls_seeds.load())
    seed = draw(st.integers(0, n - 1))
    chunks_ = list(tls_seeds.load()[seed][1])
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(chunks_) - 1))
            side, data = chunks_[i]
            chunks_[i] = (side, draw(mutated(st.just(data), max_ops=4)))
    if draw(st.booleans()):
        chunks_ = chunks_[:draw(st.integers(0, len(chunks_)))]
    if draw(st.integers(0, 9)) == 0:
        chunks_ = [(draw(st.integers(0, 1)), draw(st.binary(max_size=300)))]
    holes = ()
    if draw(st.integers(0, 2)) == 0:
        holes = tuple((draw(st.integers(0, len(chunks_))), draw(st.integers(0, 20000)),
                       draw(st.integers(1, 20000))) for _ in range(draw(st.integers(1, 3))))
    return TLSCase(seed, chunks_, draw(split_points(400)), draw(st.booleans()),
                   draw(st.booleans()), holes)


def tls_from_bytes(data: bytes) -> TLSCase:
    r = ByteReader(data)
    seed = r.u8() % len(tls_seeds.load())
    chunks_ = list(tls_seeds.load()[seed][1])
    for _ in range(r.u8() % 4):
        i = r.u8() % len(chunks_)
        chunks_[i] = (chunks_[i][0], r.mutate(chunks_[i][1], 4))
    cuts = sorted(r.uint(2) % 401 for _ in range(r.u8() % 8))
    keys, small = bool(r.u8() & 1), bool(r.u8() & 1)
    holes = tuple((r.u8() % max(1, len(chunks_)), r.uint(2), r.uint(2) + 1)
                  for _ in range(r.u8() % 3))
    return TLSCase(seed, chunks_, cuts, keys, small, holes)


# == registry ==================================================================================

TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("capture", "pcap/pcapng reader on bytes (io.BytesIO), any chunk size", CaptureCase,
           capture_strategy, check_capture, capture_from_bytes, 400),
    Target("tcp", "TcpDirection: reordered, overlapping, lost, wrapped segments", TcpCase,
           tcp_strategy, check_tcp, tcp_from_bytes, 600),
    Target("ul", "ULStream: noise, mutated PDUs, random split points and gaps", ULCase,
           ul_strategy, check_ul, ul_from_bytes, 800),
    Target("assoc", "parse_associate on mutated A-ASSOCIATE-RQ/AC PDUs", AssocCase,
           assoc_strategy, check_assoc, assoc_from_bytes, 1000),
    Target("command", "decode_command on mutated command sets", CommandCase,
           command_strategy, check_command, command_from_bytes, 1000),
    Target("assembler", "MessageAssembler on random PDV event sequences", AssemblerCase,
           assembler_strategy, check_assembler, assembler_from_bytes, 500),
    Target("analyzer", "Analyzer.consume on mutated TcpConversation frames", AnalyzerCase,
           analyzer_strategy, check_analyzer, analyzer_from_bytes, 350),
    Target("cli", "dicomsniff analyze (text and --json) in-process on mutated captures",
           CliCase, cli_strategy, check_cli, cli_from_bytes, 80),
    Target("tls", "TLSConnection on mutated OpenSSL transcripts, with and without keys",
           TLSCase, tls_strategy, check_tls, tls_from_bytes, 300),
)}

# HTTP / multipart / DICOMweb (tests/fuzz/http_targets.py)
from . import http_targets as _http  # noqa: E402

TARGETS.update({t.name: t for t in (
    Target("http", "HttpConnection + DICOMweb handler: recorded exchanges mutated, split, gaps",
           _http.HttpCase, _http.http_strategy, _http.check_http, _http.http_from_bytes, 150),
    Target("multipart", "MultipartReader on mutated multipart/related bodies, any split",
           _http.MultipartCase, _http.multipart_strategy, _http.check_multipart,
           _http.multipart_from_bytes, 400),
    Target("nativexml", "PS3.19 XML Store Instances responses: mutated, with DTDs, entities, "
           "deep nesting", _http.XmlCase, _http.xml_strategy, _http.check_xml,
           _http.xml_from_bytes, 300),
    Target("h2", "HTTP/2 reader (h2 library): a real h2 conversation mutated, any split, "
           "responses before requests", _http.H2Case, _http.h2_strategy, _http.check_h2,
           _http.h2_from_bytes, 60),
    Target("part10head", "the journey's STOW-RS part header walk: mutated PS3.10 heads, any "
           "split", _http.Part10Case, _http.part10_strategy, _http.check_part10,
           _http.part10_from_bytes, 300),
)})

# The study journey's decoders (dicomsniff/analysis/journey), in a module of their own.
from .journey_targets import targets as _journey_targets  # noqa: E402

TARGETS.update(_journey_targets(Target))  # type: ignore[arg-type]

# The compiled walker of small-message runs (tests/fuzz/walk_targets.py)
from .walk_targets import targets as _walk_targets  # noqa: E402

TARGETS.update(_walk_targets(Target))  # type: ignore[arg-type]

# Several captures merged as one (tests/fuzz/merge_targets.py)
from . import merge_targets as _merge  # noqa: E402

TARGETS["merge"] = Target(
    "merge", "several mutated, clock-shifted, compressed sensor captures merged as one",
    _merge.MergeCase, _merge.merge_strategy, _merge.check_merge, _merge.merge_from_bytes, 60)
