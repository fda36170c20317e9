"""Bytes missing inside a TLS stream: the loss is a finding, the record boundaries are found
again, and decryption resumes where the cipher allows (the sequence number re-derived by trial).

Real OpenSSL transcripts for every suite (tests/tls_pair.py) and real recordings of pynetdicom
over TLS (captures/tls/) with bytes or segments taken out: what a capture that dropped packets
looks like.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from captures import pcapfile
from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source
from dissectors.tls import connection as tc
from dissectors.tls.connection import TLSConnection
from dissectors.tls.keylog import KeyLog
from tests.test_tls_dissector import SUITES, Sink, keylog_of, problems
from tests.tls_pair import run_pair

TLS = Path(__file__).resolve().parent.parent / "captures" / "tls"
DATA = bytes(range(251)) * 400  # 100 KB written at once: records of 16 KB of plaintext
FRAG = 16384


def _records(stream: bytes) -> list[tuple[int, int, int]]:
    """(offset, content type, length) of each record of one direction."""
    out, i = [], 0
    while i + 5 <= len(stream):
        ct, _v, n = struct.unpack_from("!BHH", stream, i)
        out.append((i, ct, n))
        i += 5 + n
    return out


def replay_with_hole(tr, start: int, end: int, keys: bool = True):
    """Replay a transcript with the client's stream bytes [start, end) lost (a gap)."""
    sinks = (Sink(), Sink())
    conn = TLSConnection(keylog_of(tr.keylog) if keys else None, inner=lambda c: sinks)
    pos = 0
    for i, (side, data) in enumerate(tr.chunks):
        d = conn.sides[side]
        if side == 1 or end <= start:
            d.feed(data, i + 1, float(i))
            continue
        a, b = pos, pos + len(data)
        pos = b
        if b <= start or a >= end:
            d.feed(data, i + 1, float(i))
            continue
        if a < start:
            d.feed(data[:start - a], i + 1, float(i))
        if a <= start:
            d.gap(end - start, i + 1, float(i))
        if b > end:
            d.feed(data[end - a:], i + 1, float(i))
    for d in conn.sides:
        d.close(len(tr.chunks), 0.0)
    return conn, sinks


def _client(tr) -> bytes:
    return b"".join(d for s, d in tr.chunks if s == 0)


@pytest.mark.parametrize(("version", "kw", "suite"), SUITES,
                         ids=[f"{v}-{s}-{'etm' if k.get('etm', True) else 'mte'}"
                              for v, k, s in SUITES])
def test_decryption_resumes_after_a_gap_across_records(version: str, kw: dict,
                                                       suite: str) -> None:
    tr = run_pair(DATA, b"ok", **kw)
    assert tr.error is None, tr.error
    data = [r for r in _records(_client(tr)) if r[1] == 23 and r[2] > 200]
    assert len(data) >= 6
    # lost: the end of the 2nd data record, the 3rd whole, the 4th's header and first bytes
    (o2, _c2, n2), _r3, (o4, _c4, _n4) = data[1], data[2], data[3]
    conn, sinks = replay_with_hole(tr, o2 + 5 + n2 - 100, o4 + 40)
    (gap,) = [p for p in problems(conn) if p.code == "GAP"]
    assert "across a record boundary" in gap.message and "next record header" in gap.message
    assert not [p for p in problems(conn) if p.code == "DECRYPT-FAILED"]
    side = conn.sides[0]
    assert (side.gaps, side.resumed, side.not_resumed) == (1, 1, 0)
    got = bytes(sinks[0].data)
    if version == "TLS 1.0":
        # the IV of the record after the loss was the lost record's last block: one more lost
        assert "cannot be decrypted (its IV was in the lost bytes)" in gap.message
        lost_records = 4
    else:
        lost_records = 3
    assert side.records_skipped == lost_records
    assert f"({lost_records} record(s) lost)" in gap.message
    pieces = _plaintext_records(tr)  # what each data record carried, from a loss-free replay
    assert got == pieces[0] + b"".join(pieces[1 + lost_records:])
    assert conn.alerts[-1].description == "close_notify"  # and what follows decrypts
    if "_CBC_" not in suite:  # AEAD and NULL: the plaintext lost is told exactly
        assert sinks[0].gaps == sum(len(p) for p in pieces[1:1 + lost_records])


class _Pieces(Sink):
    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[bytes] = []

    def feed(self, data, frame: int, ts: float) -> None:
        super().feed(data, frame, ts)
        self.pieces.append(bytes(data))


def _plaintext_records(tr) -> list[bytes]:
    sinks = (_Pieces(), _Pieces())
    conn = TLSConnection(keylog_of(tr.keylog), inner=lambda c: sinks)
    for i, (side, data) in enumerate(tr.chunks):
        conn.sides[side].feed(data, i + 1, float(i))
    assert b"".join(sinks[0].pieces) == DATA
    return sinks[0].pieces


def test_gap_inside_a_record_keeps_the_framing() -> None:
    tr = run_pair(DATA, b"ok")
    (o2, _c, n2) = [r for r in _records(_client(tr)) if r[1] == 23 and r[2] > FRAG // 2][1]
    conn, sinks = replay_with_hole(tr, o2 + 1000, o2 + 3000)
    (gap,) = [p for p in problems(conn) if p.code == "GAP"]
    assert "inside a record (application_data)" in gap.message
    assert conn.sides[0].inside_record == 1 and conn.sides[0].resumed == 0
    assert bytes(sinks[0].data) == DATA[:FRAG] + DATA[2 * FRAG:]
    assert sinks[0].gaps == FRAG  # TLS 1.3: tag and content type, no padding
    assert not [p for p in problems(conn) if p.code == "DECRYPT-FAILED"]


def test_without_keys_the_records_are_followed_again() -> None:
    tr = run_pair(DATA, b"ok")
    data = [r for r in _records(_client(tr)) if r[1] == 23 and r[2] > FRAG // 2]
    whole, _ = replay_with_hole(tr, 0, 0, keys=False)
    conn, _ = replay_with_hole(tr, data[1][0] + 200, data[3][0] + 3, keys=False)
    (gap,) = [p for p in problems(conn) if p.code == "GAP"]
    assert "followed from there" in gap.message
    assert conn.sides[0].app_records == whole.sides[0].app_records - 2  # 3rd and 4th lost
    assert [a.side for a in conn.alerts] == [a.side for a in whole.alerts]  # encrypted alerts


def test_no_sequence_number_authenticates_and_no_header_is_found() -> None:
    tr = run_pair(DATA, b"ok")
    data = [r for r in _records(_client(tr)) if r[1] == 23 and r[2] > FRAG // 2]
    # a corrupt record right after the gap: no sequence number in range authenticates it
    chunks = list(tr.chunks)
    client = _client(tr)
    o4 = data[3][0]
    bad = bytearray(client)
    bad[o4 + 5 + 100] ^= 0xFF
    pos, out = 0, []
    for side, d in chunks:
        if side == 0:
            out.append((0, bytes(bad[pos:pos + len(d)])))
            pos += len(d)
        else:
            out.append((1, d))
    tr.chunks = out
    conn, sinks = replay_with_hole(tr, data[1][0] + 200, o4)
    (gap,) = [p for p in problems(conn) if p.code == "GAP"]
    assert "decryption cannot resume" in gap.message and "tried" in gap.message
    assert conn.sides[0].not_resumed == 1 and conn.sides[0].protect is None
    assert bytes(sinks[0].data) == DATA[:FRAG]  # nothing invented after the loss
    # hostile: after a gap, bytes that never show a record header: bounded, then given up
    conn = TLSConnection(keylog_of(tr.keylog), inner=lambda c: (Sink(), Sink()))
    for i, (side, d) in enumerate(tr.chunks[:4]):
        conn.sides[side].feed(d, i + 1, 0.0)
    c = conn.sides[0]
    c.gap(500, 9, 0.0)
    for k in range(60):
        c.feed(bytes([0x17, 0x03, 0x03, 0xFF, 0xFF]) * 200, 10 + k, 0.0)  # length too big
        assert len(c.rbuf) <= tc.RESYNC_WINDOW + 1000
    assert c.state == tc.LOST and c.not_resumed == 1
    assert "no record header in the" in [p for p in problems(conn) if p.code == "GAP"][0].message


# -- real recordings with segments taken out ---------------------------------------------------

def _without(name: str, frames: set[int], tmp_path: Path) -> Path:
    header, _lt = pcapfile.read_header(TLS / name)
    out = tmp_path / f"lossy-{name}"
    pcapfile.write(out, header, [f for f in pcapfile.frames(TLS / name)
                                 if f.number not in frames])
    return out


def _analyze(path: Path, keys: str) -> Analyzer:
    kl = KeyLog()
    kl.add_file(str(TLS / keys))
    a = Analyzer(tls_keylog=kl)
    analyze_source(str(path), a)
    return a


def test_pynetdicom_capture_with_lost_segments(tmp_path: Path) -> None:
    """tls13-store.pcap: C-ECHO, then two C-STOREs of 8 KB (each one TLS record)."""
    # a segment inside the first C-STORE's data record (client): that record is lost
    a = _analyze(_without("tls13-store.pcap", {25}, tmp_path), "tls13-store.keys")
    (assoc,) = a.associations
    assert assoc.outcome == "released"
    assert [(t.command, t.status) for t in assoc.transactions] == [
        ("C-ECHO", 0), ("C-STORE", 0), ("C-STORE", 0)]
    assert [t.dataset_bytes for t in assoc.transactions[1:]] == [0, 8498]
    (gap,) = [f for f in assoc.findings if f.code == "TLS-GAP"]
    assert "inside a record" in gap.message
    assert a.tls_sessions[0].resync == {"gaps": 1, "inside_record": 1, "resumed": 0,
                                        "not_resumed": 0, "records_skipped": 0}
    # the server's record with the first C-STORE-RSP: the second still answered
    a = _analyze(_without("tls13-store.pcap", {32}, tmp_path), "tls13-store.keys")
    (assoc,) = a.associations
    stores = [t for t in assoc.transactions if t.command == "C-STORE"]
    assert [t.status for t in stores] == [None, 0]
    (gap,) = [f for f in assoc.findings if f.code == "TLS-GAP"]
    assert "server" in gap.message and "decryption resumed at record sequence number 5 " \
        "(1 record(s) lost)" in gap.message
    assert a.tls_sessions[0].resync["records_skipped"] == 1
    assert not [f for f in assoc.findings if f.code == "TLS-DECRYPT-FAILED"]


def test_every_suite_of_the_suites_capture_resumes(tmp_path: Path) -> None:
    """tls-suites.pcap: a segment holding the end of one record and the start of the next
    taken out of each association (ChaCha20, CBC EtM, CBC MtE, RSA GCM, TLS 1.0 CBC, TLS 1.3
    ChaCha20)."""
    a = _analyze(_without("tls-suites.pcap", {32, 75, 114, 153, 192, 234}, tmp_path),
                 "tls-suites.keys")
    assert len(a.associations) == 6 and all(s.decrypted for s in a.tls_sessions)
    gaps = [f for x in a.associations for f in x.findings if f.code == "TLS-GAP"]
    assert len(gaps) == 6
    assert sum("decryption resumed" in f.message for f in gaps) == 5  # and ChaCha20 1.2:
    assert sum("inside a record" in f.message for f in gaps) == 1  # a segment in one record
    assert sum("its IV was in the lost bytes" in f.message for f in gaps) == 1  # TLS 1.0
    assert not [f for x in a.associations for f in x.findings
                if f.code == "TLS-DECRYPT-FAILED"]
    # the C-STORE before the loss is whole in every association
    assert all(x.transactions[1].status == 0 for x in a.associations)
