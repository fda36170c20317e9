"""The compiled bulk-run walker (dissectors/_runs.c, dicomsniff/analysis/accel.py) against the
pure-Python path: the same ``analyze --json`` records on every sample capture (the benchmark's
tiny set included), on frames mutated inside a run, and on hostile lengths inside a run; the
reader's walk protocol; and the fallback when the extension is absent or turned off.

The walker may take a record only where the Python fast path would only count it; anything
else is left to Python. These tests are how "derived, not copied" is held to (issue 13).
"""

from __future__ import annotations

import json
import os
import random
import re
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dicomsniff.sources.capture import CaptureReader
from dicomsniff.sources.merge import CaptureSet
from tests import builders as b
from tests.accelbuild import analyze_json, compiled_walk
from tests.fuzz import seeds
from tests.fuzz.pcapwriter import pcap_bytes, pcapng_bytes
from tests.test_fast_path import _ipv4_tcp, _mutations

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p for p in (ROOT / "captures").rglob("*.pcap*")
                 if p.suffix in (".pcap", ".pcapng"))


class Counting:
    """The compiled walker, counting the records it took, the zero windows it counted, and
    the delivered segments it handed over as copies (a walk that ended with its chunk), each
    checked against the record it names: (its TCP sequence number, its payload)."""

    def __init__(self) -> None:
        self.walk = compiled_walk()
        self.records = 0
        self.headers = 0
        self.zero_windows = 0
        self.copies = 0

    def __call__(self, *args):
        got = self.walk(*args)
        self.records += got[1]
        self.headers += len(got[7])
        self.zero_windows += got[9]
        assert (got[9] == 0) == (got[10] == -1) and got[10] < got[1]
        chunk, off, layout = args[0], args[1], args[2]
        for entry, i in got[6]:
            if type(entry) is tuple:
                self.copies += 1
                if layout[0] == "pcap":
                    frame = _record(chunk, off, i, layout)
                    seq, total, doff = struct.unpack_from("!I", frame, 38)[0], \
                        struct.unpack_from("!H", frame, 16)[0], frame[46] >> 4
                    assert entry == (seq, frame[34 + doff * 4:14 + total])
        return got


def _record(chunk, off: int, i: int, layout) -> bytes:
    """The ``i``-th pcap record from ``off`` in a chunk, as bytes."""
    endian = ">" if layout[1] else "<"
    for _ in range(i):
        off += layout[3] + struct.unpack_from(endian + "I", chunk, off + 8)[0]
    caplen = struct.unpack_from(endian + "I", chunk, off + 8)[0]
    return bytes(chunk[off + layout[3]:off + layout[3] + caplen])


def records(path: Path | str, walker, monkeypatch, capsys, *extra: str) -> list[str]:
    return analyze_json(monkeypatch, capsys, path, extra, walk=walker)


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


def test_the_walker_takes_the_bulk_of_a_store(monkeypatch, capsys) -> None:
    """Not a vacuous comparison: on C-STOREs it walks most records and crosses PDU headers
    (store-large-pdu: dcmtk; store-many-associations, small images: the benchmark's tiny
    stand-in for bulk)."""
    for name, share, crossed in (("store-large-pdu.pcap", 0.5, True),
                                 ("store-many-associations.pcap", 0.2, False)):
        fast, pure, walker = both(ROOT / "captures" / name, monkeypatch, capsys)
        assert fast == pure
        frames = json.loads(fast[-1])["frames"]
        assert walker.records > frames * share, (name, walker.records, frames)
        assert (walker.headers > 0) == crossed, name


# -- frames mutated inside a run ----------------------------------------------------------------

def _pcap_frames(path: Path) -> list[tuple[float, bytes, int]]:
    with CaptureReader(str(path)) as r:
        return [(ts, bytes(buf), olen) for ts, _lt, buf, olen in r]


def _run_pcap(data: bytes, tmp_path: Path, walker, monkeypatch, capsys) -> list[str]:
    f = tmp_path / "m.pcap"
    f.write_bytes(data)
    return records(f, walker, monkeypatch, capsys)


@pytest.mark.parametrize("name", ["store-large-pdu.pcap", "store-small-pdu.pcap"])
def test_mutated_frames_inside_a_run(name: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """The fast-path test's header mutations (IP total length, data offset, flags), applied to
    frames the walker would take, and a few of its own (sequence number, ACK, window, the
    other direction's payload, snapshot-cut records)."""
    frames = _pcap_frames(ROOT / "captures" / name)
    rng = random.Random(name)
    walker = Counting()
    data = [i for i, f in enumerate(frames) if _ipv4_tcp(f[1]) and len(f[1]) > 1000]
    assert len(data) > 20
    checked = 0
    for i in sorted(rng.sample(data, 6)):
        ts, buf, olen = frames[i]
        variants = [bytes(m) for m in _mutations(buf, rng)]
        for off, width, value in ((38, 4, 1), (42, 4, 0x7FFFFFFF), (48, 2, 0)):
            m = bytearray(buf)
            m[off:off + width] = (struct.unpack_from("!I" if width == 4 else "!H", buf, off)[0]
                                  + value & (0xFFFFFFFF if width == 4 else 0)).to_bytes(width,
                                                                                       "big")
            variants.append(bytes(m))
        for v in variants:
            mutated = [*frames[:i], (ts, v, olen), *frames[i + 1:]]
            pcap = pcap_bytes(mutated)
            fast = _run_pcap(pcap, tmp_path, walker, monkeypatch, capsys)
            assert fast == _run_pcap(pcap, tmp_path, None, monkeypatch, capsys), (
                f"frame {i + 1} mutated: {v[14:54].hex()}")
            checked += 1
        cut = [*frames[:i], (ts, buf[:len(buf) - 100], olen), *frames[i + 1:]]
        pcap = pcap_bytes(cut)
        assert (_run_pcap(pcap, tmp_path, walker, monkeypatch, capsys)
                == _run_pcap(pcap, tmp_path, None, monkeypatch, capsys))
    assert checked == 6 * 22
    assert walker.records > 0


# -- hostile lengths inside a run ----------------------------------------------------------------

MAX_PDU = 16384


def _store_stream(dataset_pdus: list[bytes]) -> tuple[bytes, bytes]:
    rq = b.associate_rq() + b.p_data(b.pdv(3, 3, b.command_set(
        0x0001, message_id=1, sop_class=b.CT_STORAGE, sop_instance="1.2.3.4", priority=0,
        has_dataset=True)))
    rq += b"".join(dataset_pdus)
    rq += b.release_rq()
    ac = b.associate_ac() + b.store_response(1, instance="1.2.3.4") + b.release_rp()
    return rq, ac


def _conversation(rq: bytes, ac: bytes, header_segments: bool, mss: int = 1460) -> list[bytes]:
    """The requestor's bytes segmented as dcmtk sends them (each P-DATA-TF's 12 header bytes
    a segment of their own) or cut at every ``mss`` bytes, the acceptor ACKing every second
    segment."""
    c = b.TcpConversation(server=("192.0.2.2", 104)).handshake()
    a_rq, a_ac = b.associate_rq(), b.associate_ac()
    c.send(0, a_rq).send(1, a_ac)
    body = rq[len(a_rq):]
    pieces: list[bytes] = []
    if header_segments:
        pos = 0
        while pos < len(body):
            if body[pos] == 4 and pos + 12 <= len(body):
                plen = struct.unpack_from("!I", body, pos + 2)[0]
                end = min(len(body), pos + 6 + plen)
                pieces.append(body[pos:pos + 12])
                pieces += [body[i:min(i + mss, end)] for i in range(pos + 12, end, mss)]
                pos = end
            else:
                pieces.append(body[pos:pos + mss])
                pos += mss
    else:
        pieces = [body[i:i + mss] for i in range(0, len(body), mss)]
    for n, p in enumerate(pieces):
        c.send(0, p, mss=len(p) or 1)
        if n % 2:
            c.frames.append(b.ipv4_tcp("192.0.2.2", "192.0.2.1", 104, 50000, c.seq[1],
                                       c.seq[0], c.ACK))
    c.send(1, ac[len(a_ac):])
    return c.close().frames


def _data_pdus(n: int = 6, size: int = 16372) -> list[bytes]:
    return [b.p_data(b.pdv(3, 2 if i == n - 1 else 0, bytes([i % 256]) * size))
            for i in range(n)]


def _lie(pdu: bytes, *, plen: int | None = None, ilen: int | None = None,
         ctx: int | None = None, mch: int | None = None, ptype: int | None = None) -> bytes:
    m = bytearray(pdu)
    if ptype is not None:
        m[0] = ptype
    if plen is not None:
        struct.pack_into("!I", m, 2, plen & 0xFFFFFFFF)
    if ilen is not None:
        struct.pack_into("!I", m, 6, ilen & 0xFFFFFFFF)
    if ctx is not None:
        m[10] = ctx
    if mch is not None:
        m[11] = mch
    return bytes(m)


HOSTILE = {
    # P-DATA-TF longer than the receiver's maximum: UL-PDU-TOO-LONG
    "pdu-too-long": dict(plen=MAX_PDU + 100, ilen=MAX_PDU + 96),
    # the PDV item overruns its PDU: UL-PDV-LENGTH, a hunt
    "pdv-overruns-pdu": dict(ilen=16372 + 2 + 40),
    # the PDU says less than it holds: what follows is read as headers (a resync)
    "pdu-shorter": dict(plen=16372 + 6 - 4000, ilen=16372 + 2 - 4000),
    # a length past any believable one (a suspect P-DATA-TF, PS3.8 D.1)
    "pdu-length-lie": dict(plen=0x7FFFFFF0),
    "pdv-odd": dict(ilen=16372 + 2 - 1),
    "pdv-reserved-mch": dict(mch=0x04),
    "pdv-other-context": dict(ctx=1),
    "pdv-even-context": dict(ctx=4),
    "pdv-command": dict(mch=0x01),
    "pdv-tiny": dict(ilen=2),
    "not-pdata": dict(ptype=7),
    "pdata-zero-length": dict(plen=0),
}


@pytest.mark.parametrize("header_segments", [True, False], ids=["dcmtk-segments", "mss-cut"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_lengths_inside_a_run(case: str, header_segments: bool, tmp_path: Path,
                                      monkeypatch, capsys) -> None:
    pdus = _data_pdus()
    pdus[3] = _lie(pdus[3], **HOSTILE[case])
    rq, ac = _store_stream(pdus)
    data = pcap_bytes(_conversation(rq, ac, header_segments))
    walker = Counting()
    fast = _run_pcap(data, tmp_path, walker, monkeypatch, capsys)
    pure = _run_pcap(data, tmp_path, None, monkeypatch, capsys)
    assert fast == pure
    assert walker.records > 20  # the PDUs before the lie were walked
    findings = Counter(json.loads(r).get("code") for r in pure)
    assert sum(n for c, n in findings.items() if c), findings  # the lie was noticed


@pytest.mark.parametrize("nanos,big_endian", [(False, False), (True, False), (True, True)])
def test_an_honest_store_is_walked_across_its_pdu_headers(nanos, big_endian, tmp_path,
                                                          monkeypatch, capsys):
    """The same builder without a lie: no finding, and the walker crossed the P-DATA-TF
    headers in both segmentations; microsecond and nanosecond timestamps (read the same to
    the last bit: they are in the records), either byte order."""
    for header_segments in (True, False):
        rq, ac = _store_stream(_data_pdus())
        data = pcap_bytes(_conversation(rq, ac, header_segments), nanos=nanos,
                          big_endian=big_endian, t0=1_764_950_000.123457)
        walker = Counting()
        fast = _run_pcap(data, tmp_path, walker, monkeypatch, capsys)
        assert fast == _run_pcap(data, tmp_path, None, monkeypatch, capsys)
        assert not [r for r in fast if json.loads(r)["type"] == "finding"], fast
        assert walker.headers >= 4, (header_segments, walker.headers)


@pytest.mark.parametrize("header_segments", [True, False], ids=["dcmtk-segments", "mss-cut"])
@pytest.mark.parametrize("command", ["no-dataset", "no-command"])
def test_orphan_fragments_crossed_in_a_run(command: str, header_segments: bool,
                                           tmp_path: Path, monkeypatch, capsys) -> None:
    """Data set fragments no message waits for (the command set said "no data set", or
    there was none): the walker still counts them and crosses their headers, and each
    crossed header is its own DIMSE-DATA-ORPHAN at its own frame, as without the walker
    (a PdvDataRun is taken apart where its fragments are not one message's, PS3.7 6.3.1)."""
    # on the Verification context, whose data sets nobody collects (a storage context's are
    # read for their header, which an orphan never gives up)
    cmd = b"" if command == "no-command" else b.p_data(b.pdv(1, 3, b.command_set(
        0x0030, message_id=1, sop_class=b.VERIFICATION, has_dataset=False)))
    pdus = [b.p_data(b.pdv(1, 2 if i == 5 else 0, bytes([i]) * 16372)) for i in range(6)]
    rq = b.associate_rq() + cmd + b"".join(pdus) + b.release_rq()
    ac = b.associate_ac() + b.release_rp()
    data = pcap_bytes(_conversation(rq, ac, header_segments))
    walker = Counting()
    fast = _run_pcap(data, tmp_path, walker, monkeypatch, capsys)
    pure = _run_pcap(data, tmp_path, None, monkeypatch, capsys)
    assert fast == pure
    assert walker.headers >= 4, (walker.headers, walker.records)
    orphans = [json.loads(r) for r in pure if json.loads(r).get("code") == "DIMSE-DATA-ORPHAN"]
    assert len(orphans) == 6 and len({o["frame"] for o in orphans}) == 6, orphans


@pytest.mark.parametrize("header_segments", [True, False], ids=["dcmtk-segments", "mss-cut"])
def test_zero_windows_of_the_receiver_inside_a_run(header_segments: bool, tmp_path: Path,
                                                   monkeypatch, capsys) -> None:
    """The receiver's bare ACKs that close its window inside a run: the walker counts them
    and goes on; TCP-ZERO-WINDOW says how many and the first frame, as without it."""
    rq, ac = _store_stream(_data_pdus(n=12))
    frames = _conversation(rq, ac, header_segments)
    zeroed = 0
    for k in range(40, len(frames) - 10, 7):
        f = frames[k]
        if f[26:30] == bytes((192, 0, 2, 2)) and len(f) == 54:  # the acceptor's bare ACK
            frames[k] = f[:48] + b"\0\0" + f[50:]
            zeroed += 1
    assert zeroed > 5
    data = pcap_bytes(frames)
    walker = Counting()
    fast = _run_pcap(data, tmp_path, walker, monkeypatch, capsys)
    pure = _run_pcap(data, tmp_path, None, monkeypatch, capsys)
    assert fast == pure
    assert 0 < walker.zero_windows <= zeroed
    found = [json.loads(r) for r in pure if json.loads(r).get("code") == "TCP-ZERO-WINDOW"]
    assert len(found) == 1 and f"{zeroed} time(s)" in found[0]["message"], found


# -- the reader's walk protocol -------------------------------------------------------------------

def _frames_for_reader() -> list[bytes]:
    return seeds.conversation("store", mss=536)


def test_reader_takes_a_walkers_records_and_goes_on(tmp_path: Path) -> None:
    frames = _frames_for_reader()
    f = tmp_path / "r.pcap"
    f.write_bytes(pcap_bytes(frames))
    with CaptureReader(str(f)) as r:
        assert r.walks
        plain = [(ts, bytes(v)) for ts, _lt, v, _o in r]

    def skip3(chunk, off, layout):  # a walker in Python: three whole records, as C would
        kind, big, ticks, hlen, _maxcap, linktype = layout
        assert (kind, big, hlen, linktype) == ("pcap", False, 16, 1)
        for _ in range(3):
            sec, frac, caplen, _olen = struct.unpack_from("<IIII", chunk, off)
            off += hlen + caplen
        return off, 3, (sec * ticks + frac) / ticks

    with CaptureReader(str(f)) as r:
        it = iter(r)
        got = [next(it)]
        assert it.send(skip3)[1] == 3
        got += list(it)
        assert r.packets == len(plain)
        assert r.last_ts == plain[-1][0]
    assert [(ts, bytes(v)) for ts, _lt, v, _o in got] == [plain[0], *plain[4:]]


def test_only_a_single_file_walks(tmp_path: Path) -> None:
    frames = _frames_for_reader()
    one, two, ng = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "c.pcapng"
    one.write_bytes(pcap_bytes(frames))
    two.write_bytes(pcap_bytes(frames, t0=1_800_000_000.0))
    ng.write_bytes(pcapng_bytes(frames))
    assert CaptureSet([str(one)]).walks
    assert CaptureSet([str(ng)]).walks
    assert not CaptureSet([str(one), str(two)]).walks


def test_walker_never_reads_past_its_chunk() -> None:
    """Hostile chunks: random bytes, records cut anywhere, offsets anywhere; it returns an
    offset inside the chunk, at a record boundary it read, or raises nothing."""
    walk = compiled_walk()
    rng = random.Random(15)
    frames = seeds.conversation("store", mss=100)
    good = pcap_bytes(frames)[24:]
    key = frames[5][26:38]
    rkey = key[4:8] + key[:4] + key[10:12] + key[8:10]
    for _ in range(3000):
        chunk = bytearray(good[:rng.randrange(len(good) + 1)])
        for _ in range(rng.randrange(4)):
            if chunk:
                chunk[rng.randrange(len(chunk))] = rng.randrange(256)
        off = rng.choice((0, rng.randrange(len(chunk) + 1), len(chunk) + 5, -3))
        layout = ("pcap", rng.random() < 0.2, 1_000_000, 16, rng.choice((262144, 60, 0)), 1)
        cross = rng.choice((None, (3, 16384, True), (3, 1 << 24, False)))
        limit = rng.choice((-1, 0, 1, 7))
        got = walk(memoryview(bytes(chunk)), off, layout, key, rkey, rng.randrange(1 << 32),
                   rng.choice((None, 0, 5)), rng.randrange(1, 1 << 20), cross, limit)
        assert limit < 0 or got[1] <= limit
        assert (got[0] == off) == (got[1] == 0)
        assert got[1] == 0 or 0 <= got[0] <= len(chunk)
        assert got[5] >= 0 and len(got[6]) <= 16


# -- the fallback -------------------------------------------------------------------------------

def _python(code: str, **env: str) -> str:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_no_accel_turns_it_off() -> None:
    out = _python("from dicomsniff.analysis import accel; print(accel.walk is None); "
                  "print(accel.describe())", DICOMSNIFF_NO_ACCEL="1")
    assert out.splitlines() == ["True", "pure Python, DICOMSNIFF_NO_ACCEL set"]


def test_without_the_extension_the_python_path_does_it_all(capsys, monkeypatch) -> None:
    """As on a machine without a compiler: the module cannot be imported; analysis runs and
    gives the records the walker gives."""
    path = ROOT / "captures" / "store-large-pdu.pcap"
    out = _python("import sys; sys.modules['dissectors._runs'] = None\n"
                  "from dicomsniff.analysis import accel\n"
                  "assert accel.walk is None, accel.walk\n"
                  "print(accel.describe(), file=sys.stderr)\n"
                  "from dicomsniff.cli import main\n"
                  f"sys.exit(main(['analyze', '--json', {str(path)!r}]))",
                  DICOMSNIFF_NO_ACCEL="")
    assert out.splitlines() == records(path, Counting(), monkeypatch, capsys)


def test_retransmissions_across_chunks(tmp_path, monkeypatch, capsys):
    """Segments of 4,000 bytes over several reader chunks, copies of earlier segments sent
    again, some with other bytes (TCP-OVERLAP-CONFLICT): the references the walker leaves
    in the overlap ring are copied out of a chunk the reader left (tcp.release_views) and
    compared as the Python path's are. (4,000 bytes: 16 slots stay within
    tcp.RECENT_BYTES, so no slot is forgotten; past it, which slots are forgotten depends on
    when the reader's buffers are recycled, with or without the walker.)"""
    mss = 4000
    rq, ac = _store_stream(_data_pdus(n=400))
    frames = _conversation(rq, ac, header_segments=False, mss=mss)
    data = [i for i, f in enumerate(frames) if len(f) > mss]
    rng = random.Random(7)
    for j, k in enumerate(sorted(rng.sample(range(17, len(data)), 40), reverse=True)):
        again = bytearray(frames[data[k - rng.randrange(1, 17)]])  # a segment sent before
        if j % 2:
            again[-7] ^= 0xFF  # other bytes: a conflict
        frames.insert(data[k] + 1, bytes(again))
    walker = Counting()
    pcap = pcap_bytes(frames)
    assert len(pcap) > 5 << 20  # more than two of the reader's 2 MiB windows (or 1 MiB chunks)
    fast = _run_pcap(pcap, tmp_path, walker, monkeypatch, capsys)
    pure = _run_pcap(pcap, tmp_path, None, monkeypatch, capsys)
    assert fast == pure
    assert _run_pcap(pcap, tmp_path, walker, monkeypatch, capsys) == pure  # and again
    assert walker.records > len(frames) // 2
    assert walker.copies > 0  # walks that ended with their chunk handed copies over
    codes = Counter(json.loads(r).get("code") for r in pure)
    assert codes["TCP-OVERLAP-CONFLICT"] and codes["TCP-RETRANSMISSION"], codes


# -- pcapng ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [p for p in SAMPLES if p.suffix == ".pcap"][::3],
                         ids=lambda p: str(p.relative_to(ROOT / "captures")))
def test_samples_as_pcapng(path: Path, tmp_path, monkeypatch, capsys) -> None:
    """A third of the samples written again as pcapng (enhanced packet blocks): the same
    records with and without the walker."""
    f = tmp_path / "s.pcapng"
    f.write_bytes(pcapng_bytes([(ts, buf, olen) for ts, buf, olen in _pcap_frames(path)]))
    assert (records(f, Counting(), monkeypatch, capsys)
            == records(f, None, monkeypatch, capsys))


@pytest.mark.parametrize("tsresol,tsoffset,ticks", [
    (6, 0, 1_764_950_000 * 10**6), (9, 0, 1_764_950_000 * 10**9), (0x80 | 20, 1 << 30, 1 << 50),
    (9, -5, 1 << 62)])
def test_pcapng_clocks_and_damage(tsresol, tsoffset, ticks, tmp_path, monkeypatch, capsys):
    """An honest store in pcapng with interface clocks of every kind (microseconds,
    nanoseconds, a power of two, an offset), then with a block whose trailing length lies
    inside a run: the reader stops there (CAPTURE-DAMAGED) in both paths, after the same
    frames."""
    from tests.hostile_cases import pcapng_with_clock

    rq, ac = _store_stream(_data_pdus())
    frames = _conversation(rq, ac, header_segments=True)
    data = pcapng_with_clock(frames, tsresol=tsresol, tsoffset=tsoffset, ticks=ticks)
    f = tmp_path / "c.pcapng"
    f.write_bytes(data)
    walker = Counting()
    fast = records(f, walker, monkeypatch, capsys)
    assert fast == records(f, None, monkeypatch, capsys)
    assert walker.records > 20 and walker.headers >= 4
    bad = bytearray(data)
    # the trailing length of the 40th block from the end: inside the data set's run
    pos = len(bad)
    for _ in range(40):
        pos -= struct.unpack_from("<I", bad, pos - 4)[0]
    struct.pack_into("<I", bad, pos - 4, 7)
    f.write_bytes(bytes(bad))
    fast = records(f, Counting(), monkeypatch, capsys)
    assert fast == records(f, None, monkeypatch, capsys)
    assert any('"CAPTURE-DAMAGED"' in r for r in fast)


def test_the_walkers_share_one_header_and_its_constants_are_pythons() -> None:
    """What both compiled walkers use (the records' layout, their clock, byte order, RECENT) is
    written once, in dissectors/_records.h; its RECENT is dissectors/tcp.py's (the number of
    payload records each walker hands back for the retransmission check)."""
    from dissectors.tcp import RECENT

    header = (ROOT / "dissectors" / "_records.h").read_text()
    recent = re.search(r"^#define RECENT (\d+)", header, re.M)
    assert recent is not None and int(recent.group(1)) == RECENT
    shared = ("#define RECENT ", "#define MASK32 ", "} layout_t;", " layout_parse(PyObject",
              " layout_free(layout_t", " *timestamp(const layout_t", " be32(const unsigned")
    for name in ("_runs.c", "_small.c"):
        source = (ROOT / "dissectors" / name).read_text()
        assert '#include "_records.h"' in source, name
        for piece in shared:
            assert piece not in source, (name, piece)
            assert piece in header, piece
