"""The compiled walker of small-message runs (dissectors/_small.c, dicomsniff/analysis/accel.py)
against the pure-Python path: the same ``analyze --json`` records on every sample capture (the
lossy and hostile ones included), on real query traffic with frames mutated, cut, dropped,
repeated and swapped inside a run, on hostile PDU and PDV lengths in built C-FIND traffic in two
segmentations, and the walker's own contract on random chunks.

The walker may take a record only where the engine's fast path and the parser's common
branches would take it; anything else is left to Python, whole. These tests are how "derived,
not copied" is held to (issue 13). The bulk walker (dissectors/_runs.c) is on in both runs, so
what differs is the small-message walker alone (tests/test_accel.py compares both against
neither).
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest

from dicomsniff.sources.capture import CaptureReader
from tests import builders as b
from tests.accelbuild import analyze_json, compiled_small, compiled_walk
from tests.fuzz import seeds
from tests.fuzz.pcapwriter import pcap_bytes, pcapng_bytes
from tests.test_fast_path import _ipv4_tcp, _mutations

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p for p in (ROOT / "captures").rglob("*.pcap*")
                 if p.suffix in (".pcap", ".pcapng"))
# real query traffic (dcmtk and pynetdicom peers, captures/README.md)
QUERY = ["find-pending.pcap", "find-cancel.pcap", "mpps.pcap", "get.pcap", "move.pcap"]


class Counting:
    """The compiled walker of small-message runs, counting what it took."""

    def __init__(self) -> None:
        self.walk = compiled_small()
        self.records = 0
        self.walks = 0
        self.events = 0

    def __call__(self, *args):
        got = self.walk(*args)
        self.walks += 1
        self.records += got[1]
        self.events += sum(len(evs) for _side, evs in got[11])
        return got


def records(path: Path | str, small, monkeypatch, capsys, *extra: str) -> list[str]:
    return analyze_json(monkeypatch, capsys, path, ("-j", "1", *extra),
                        walk=compiled_walk(), small=small)


def both(path, monkeypatch, capsys, *extra: str) -> tuple[list[str], list[str], Counting]:
    walker = Counting()
    fast = records(path, walker, monkeypatch, capsys, *extra)
    pure = records(path, None, monkeypatch, capsys, *extra)
    return fast, pure, walker


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: str(p.relative_to(ROOT / "captures")))
def test_every_sample_gives_the_same_records_with_and_without_the_walker(
        path: Path, monkeypatch, capsys) -> None:
    fast, pure, _ = both(path, monkeypatch, capsys)
    assert fast == pure


@pytest.mark.parametrize("name", QUERY)
def test_the_walker_takes_most_of_real_query_traffic(name: str, monkeypatch, capsys) -> None:
    """Not a vacuous comparison: on real query traffic it walks most records and hands the
    tracker the events of the messages it read."""
    fast, pure, walker = both(ROOT / "captures" / name, monkeypatch, capsys)
    assert fast == pure
    frames = json.loads(fast[-1])["frames"]
    assert walker.records > frames * 0.3, (walker.records, frames)
    assert walker.events > 0


def _pcap_frames(path: Path) -> list[tuple[float, bytes, int]]:
    with CaptureReader(str(path)) as r:
        return [(ts, bytes(buf), olen) for ts, _lt, buf, olen in r]


def _run(data: bytes, tmp_path: Path, small, monkeypatch, capsys, suffix=".pcap") -> list[str]:
    f = tmp_path / ("m" + suffix)
    f.write_bytes(data)
    return records(f, small, monkeypatch, capsys)


def _same(frames, tmp_path, monkeypatch, capsys, what: str, walker=None) -> None:
    data = pcap_bytes(frames)
    fast = _run(data, tmp_path, walker or Counting(), monkeypatch, capsys)
    assert fast == _run(data, tmp_path, None, monkeypatch, capsys), what


def _payload_edits(buf: bytes, rng: random.Random) -> list[bytes]:
    """The PDU and PDV header bytes a small segment starts with, and its sequence number,
    ACK and window, set to values where the parser or the TCP order takes another branch."""
    out = []
    start = 14 + 20 + (buf[46] >> 4) * 4
    n = len(buf) - start
    for pos, values in ((0, (1, 3, 5, 7, 0x44)), (1, (1,)), (2, (0xFF,)), (5, (0, 5, 11)),
                        (9, (0, 1, 0xFF)), (10, (0, 2, 4, 0xFF)), (11, (1, 2, 3, 4, 0x83))):
        if pos < n:
            for v in values:
                m = bytearray(buf)
                m[start + pos] = v
                out.append(bytes(m))
    for off, width, delta in ((38, 4, 1), (38, 4, -5), (42, 4, 1 << 20), (42, 4, 2),
                              (48, 2, -0x10000)):
        m = bytearray(buf)
        fmt = "!I" if width == 4 else "!H"
        v = struct.unpack_from(fmt, buf, off)[0]
        struct.pack_into(fmt, m, off, (v + delta) & (0xFFFFFFFF if width == 4 else 0))
        out.append(bytes(m))
    m = bytearray(buf)
    m[start + rng.randrange(max(1, n))] ^= 0xFF
    out.append(bytes(m))
    return out


@pytest.mark.parametrize("name", ["find-pending.pcap", "find-cancel.pcap"])
def test_mutated_frames_inside_a_run(name: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """Real query traffic with one frame the walker would take changed: the fast-path test's
    header mutations (IP total length, data offset, flags), the PDU and PDV header bytes, the
    sequence number (a gap, a retransmission), an ACK past what the other side sent, a zero
    window, a flipped byte; the frame cut by the snapshot length, dropped, repeated, and
    swapped with the next."""
    frames = _pcap_frames(ROOT / "captures" / name)
    rng = random.Random(name)
    small = [i for i, f in enumerate(frames)
             if _ipv4_tcp(f[1]) and 0 < len(f[1]) - 54 - ((f[1][46] >> 4) - 5) * 4 < 400
             and 10 < i < len(frames) - 10]
    assert len(small) > 5
    walker = Counting()
    checked = 0
    for i in sorted(rng.sample(small, 3)):
        ts, buf, olen = frames[i]
        variants = [bytes(m) for m in _mutations(buf, rng)] + _payload_edits(buf, rng)
        for v in variants:
            _same([*frames[:i], (ts, v, olen), *frames[i + 1:]], tmp_path, monkeypatch, capsys,
                  f"frame {i + 1} mutated: {v[14:70].hex()}", walker)
            checked += 1
        for what, changed in (
                ("cut", [*frames[:i], (ts, buf[:len(buf) - 5], olen), *frames[i + 1:]]),
                ("dropped", [*frames[:i], *frames[i + 1:]]),
                ("repeated", [*frames[:i + 1], frames[i], *frames[i + 1:]]),
                ("swapped", [*frames[:i], frames[i + 1], frames[i], *frames[i + 2:]])):
            _same(changed, tmp_path, monkeypatch, capsys, f"frame {i + 1} {what}", walker)
            checked += 1
    assert checked > 3 * 30
    assert walker.records > 0


# -- hostile lengths inside built C-FIND traffic -------------------------------------------------

def _response_pdus(n: int = 8) -> list[bytes]:
    """The acceptor's P-DATA-TF PDUs of one C-FIND: ``n`` pending responses (command,
    identifier) and the final one."""
    out = []
    for i in range(n):
        out.append(b.p_data(b.pdv(5, 3, b.command_set(0x8020, responded_to=1,
                                                      sop_class=seeds.STUDY_FIND,
                                                      status=0xFF00, has_dataset=True))))
        out.append(b.p_data(b.pdv(5, 2, b"\x10\x00\x10\x00\x08\x00\x00\x00" + b"DOE^%04d" % i)))
    out.append(b.p_data(b.pdv(5, 3, b.command_set(0x8020, responded_to=1,
                                                  sop_class=seeds.STUDY_FIND, status=0))))
    return out


def _lie(pdu: bytes, at: int, value: int, width: int = 1) -> bytes:
    m = bytearray(pdu)
    if width == 4:
        struct.pack_into("!I", m, at, value & 0xFFFFFFFF)
    else:
        m[at] = value
    return bytes(m)


def _two_pdvs(pdus: list[bytes], i: int) -> list[bytes]:
    """Response ``i``'s command and identifier as two PDVs of one P-DATA-TF."""
    merged = b.pdu(4, pdus[i][6:] + pdus[i + 1][6:])
    return [*pdus[:i], merged, *pdus[i + 2:]]


HOSTILE = {  # the 7th PDU (a command) or the 8th (an identifier) changed
    "pdu-too-long": lambda p: [*p[:6], _lie(p[6], 2, 16384 + 100, 4), *p[7:]],
    "pdv-overruns-pdu": lambda p: [*p[:6], _lie(p[6], 6, len(p[6]) + 40, 4), *p[7:]],
    "pdu-shorter": lambda p: [*p[:7], _lie(p[7], 2, 10, 4), *p[8:]],
    "pdu-length-lie": lambda p: [*p[:6], _lie(p[6], 2, 0x7FFFFFF0, 4), *p[7:]],
    "pdv-odd": lambda p: [*p[:7], _lie(p[7], 6, len(p[7]) - 7, 4), *p[8:]],
    "pdv-reserved-mch": lambda p: [*p[:6], _lie(p[6], 11, 0x07), *p[7:]],
    "data-reserved-mch": lambda p: [*p[:7], _lie(p[7], 11, 0x04), *p[8:]],
    "pdv-other-context": lambda p: [*p[:7], _lie(p[7], 10, 1), *p[8:]],
    "pdv-even-context": lambda p: [*p[:6], _lie(p[6], 10, 4), *p[7:]],
    "data-as-command": lambda p: [*p[:7], _lie(p[7], 11, 0x03), *p[8:]],
    "command-as-data": lambda p: [*p[:6], _lie(p[6], 11, 0x02), *p[7:]],
    "command-not-last": lambda p: [*p[:6], _lie(p[6], 11, 0x01), *p[7:]],
    "pdv-tiny": lambda p: [*p[:7], b.p_data(b.pdv(5, 2, b"")), *p[8:]],
    "not-pdata": lambda p: [*p[:6], _lie(p[6], 0, 7), *p[7:]],
    "pdata-zero-length": lambda p: [*p[:6], b.pdu(4, b""), *p[6:]],
    "command-too-big": lambda p: [*p[:6], b.p_data(b.pdv(5, 3, bytes(70000))), *p[7:]],
    "two-pdvs-in-a-pdu": lambda p: _two_pdvs(p, 6),
    "garbage-between": lambda p: [*p[:6], b"\x00\x01\x02\x03", *p[6:]],
}


def _query_frames(pdus: list[bytes], mode: str) -> list[bytes]:
    """A C-FIND association whose acceptor writes ``pdus``: segmented as dcmtk writes them
    (headers in segments of their own), in 7-byte segments (headers cut across records), or
    one PDU per segment."""
    steps = seeds.query_steps(finds=1)
    steps[3] = (1, b"".join(pdus))
    c = b.TcpConversation(server=("192.0.2.2", 104)).handshake()
    for i, (side, data) in enumerate(steps):
        if side == 0:
            c.send(side, data)
        elif mode == "pdu":
            for piece in (pdus if i == 3 else [data]):
                c.send(side, piece)
        elif mode == "dcmtk":
            for piece in seeds.dcmtk_segments(data):
                c.send(side, piece, mss=len(piece))
        else:
            c.send(side, data, mss=7)
    return c.close().frames


@pytest.mark.parametrize("mode", ["dcmtk", "cut7", "pdu"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_lengths_inside_a_run(case: str, mode: str, tmp_path: Path, monkeypatch,
                                      capsys) -> None:
    frames = _query_frames(HOSTILE[case](_response_pdus()), mode)
    walker = Counting()
    _same(frames, tmp_path, monkeypatch, capsys, case, walker)
    assert walker.records > 5  # the responses before the lie were walked


@pytest.mark.parametrize("mode", ["dcmtk", "cut7", "pdu"])
def test_honest_query_traffic_is_walked(mode: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """The same builder without a lie: no finding, most records walked (headers and command
    sets cut across records too), in pcap and pcapng."""
    frames = _query_frames(_response_pdus(), mode)
    for write, suffix in ((pcap_bytes, ".pcap"), (pcapng_bytes, ".pcapng")):
        walker = Counting()
        data = write(frames)
        fast = _run(data, tmp_path, walker, monkeypatch, capsys, suffix)
        assert fast == _run(data, tmp_path, None, monkeypatch, capsys, suffix)
        assert not [r for r in fast if json.loads(r)["type"] == "finding"], fast
        txn = [json.loads(r) for r in fast if json.loads(r)["type"] == "transaction"]
        assert [(t["command"], t["pending"]) for t in txn] == [("C-FIND", 8)]
        assert walker.records > len(frames) * 0.6, (walker.records, len(frames))


@pytest.mark.parametrize("path", [ROOT / "captures" / n for n in QUERY],
                         ids=lambda p: p.name)
def test_samples_as_pcapng(path: Path, tmp_path, monkeypatch, capsys) -> None:
    frames = _pcap_frames(path)
    data = pcapng_bytes([(ts, buf, olen) for ts, buf, olen in frames])
    fast = _run(data, tmp_path, Counting(), monkeypatch, capsys, ".pcapng")
    assert fast == _run(data, tmp_path, None, monkeypatch, capsys, ".pcapng")


# -- the walker's own contract ----------------------------------------------------------------

def _state(rng: random.Random):
    st = rng.choice((1, 3, 4, 5))
    part = rng.randbytes(rng.randrange(6)) if st in (1, 3) and rng.random() < 0.3 else b""
    cmd = rng.randbytes(rng.randrange(1, 300)) if st == 4 and rng.random() < 0.3 else b""
    return (st, rng.randrange(-5, 1 << 20), rng.randrange(-5, 1 << 20),
            rng.randrange(256), rng.random() < 0.5, rng.choice((0, 4)), rng.randrange(1 << 32),
            rng.random() < 0.2, rng.random() < 0.2, rng.choice((16384, 1 << 24, 12)),
            rng.choice((65536, 0, 20)), rng.random() < 0.1,
            rng.choice((frozenset(), frozenset({5}), frozenset({1, 3}))), part, cmd)


def test_walker_never_reads_past_its_chunk() -> None:
    """Hostile chunks: random bytes, records cut anywhere, offsets anywhere, any parser state;
    it returns an offset inside the chunk at a record it read, events only of the classes it
    was given, and raises nothing."""
    from dissectors.ul.events import DataComplete, PdvCommand, PdvData

    walk = compiled_small()
    classes = (PdvCommand, PdvData, DataComplete)
    rng = random.Random(15)
    frames = seeds.conversation("query", mss=100)
    good = pcap_bytes(frames)[24:]
    key = frames[5][26:38]
    rkey = key[4:8] + key[:4] + key[10:12] + key[8:10]
    for _ in range(3000):
        chunk = bytearray(good[:rng.randrange(len(good) + 1)])
        for _ in range(rng.randrange(6)):
            if chunk:
                chunk[rng.randrange(len(chunk))] = rng.randrange(256)
        off = rng.choice((0, rng.randrange(len(chunk) + 1), len(chunk) + 5, -3))
        layout = ("pcap", rng.random() < 0.2, 1_000_000, 16, rng.choice((262144, 60, 0)), 1)
        limit = rng.choice((-1, 0, 1, 7))
        seqs = [rng.choice((None, 0, rng.randrange(1 << 32))) for _ in range(2)]
        states = [None if rng.random() < 0.2 else _state(rng) for _ in range(2)]
        got = walk(memoryview(bytes(chunk)), off, layout, key, rkey, *seqs, *states, 7, limit,
                   1460, classes)
        assert limit < 0 or got[1] <= limit
        assert (got[0] == off) == (got[1] == 0)
        assert got[1] == 0 or 0 <= got[0] <= len(chunk)
        assert len(got[9]) <= 16 and len(got[10]) <= 16
        for side, evs in got[11]:
            assert side in (0, 1) and evs
            assert all(type(e) in classes and 8 <= e.frame <= 7 + got[1] for e in evs)
        assert got[12] <= got[1]
        for st in got[7:9]:  # a header begun is less than 6 bytes, a command only in PDV_CMD
            assert st is None or (len(st[14]) < 6 and (not st[15] or st[0] == 4))


def test_a_state_no_parser_leaves_is_not_walked() -> None:
    """Negative lengths, a header part of six bytes or a command part outside a command
    fragment: the walker does not parse that side (its payload ends the walk at once)."""
    from dissectors.ul.events import DataComplete, PdvCommand, PdvData

    walk = compiled_small()
    frames = seeds.conversation("query")
    pdata = next(i for i, f in enumerate(frames) if len(f) > 54 and f[54] == 4)
    data = pcap_bytes(frames[pdata:])[24:]
    key = frames[pdata][26:38]
    rkey = key[4:8] + key[:4] + key[10:12] + key[8:10]
    seq = struct.unpack_from("!I", frames[pdata], 38)[0]
    good = (1, 0, 0, 0, False, 0, 0, False, False, 16384, 65536, False, frozenset(), b"", b"")
    layout = ("pcap", False, 1_000_000, 16, 262144, 1)
    classes = (PdvCommand, PdvData, DataComplete)
    got = walk(memoryview(data), 0, layout, key, rkey, seq, None, good, None, 0, -1, 1460,
               classes)
    assert got[1] > 0 and got[11]  # the honest state is walked
    for bad in ((1, -1), (2, -1), (6, -6), (13, b"\x04\x00\x00\x00\x00\x10"),
                (14, b"\x00\x00")):
        state = list(good)
        state[bad[0]] = bad[1]
        got = walk(memoryview(data), 0, layout, key, rkey, seq, None, tuple(state), None, 0,
                   -1, 1460, classes)
        assert got[1] == 0 and got[11] == [] and got[7] is None, bad
