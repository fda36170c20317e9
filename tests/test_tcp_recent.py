"""TCP-OVERLAP-CONFLICT is a function of the traffic alone (dissectors/tcp.py, issue 14:
"Overlapping copies that differ").

What a retransmission is compared with is the newest delivered segments within ``RECENT`` and
``RECENT_BYTES``. It used to depend on when the reader's buffers were released: the
reassembler retired when a protocol claimed the connection shared its ring with its successor
but kept its own write position, and releasing it (in set order, by address) forgot live
slots; and the byte budget was applied only at release time. The same capture then gave 22 to
26 conflicts from one run to the next in one process. Here: segments larger than 4 KB (a
capture taken with GRO/TSO), more than ``RECENT_BYTES`` of them, and copies that differ,
whole or straddling two segments, read with reader chunks that split them from their first
copy; every run, chunk size and walker setting gives the findings a model of the rule gives.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from captures import pcapfile
from dicomsniff.analysis import accel
from dicomsniff.analysis.engine import Analyzer
from dicomsniff.sources.capture import CaptureReader
from dissectors.tcp import RECENT, RECENT_BYTES, TcpDirection, release_views
from tests import builders as b
from tests.accelbuild import compiled_walk
from tests.fuzz.pcapwriter import pcap_bytes

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "captures" / "store-large-pdu.pcap"  # dcmtk storescu -> storescp
SEGMENT = 6000  # as a capture with GRO/TSO holds them: more than 4 KB per segment


def _streams(path: Path) -> list[tuple[int, bytes]]:
    """The real association's bytes as runs of one side's payload, in capture order (side 0:
    the requestor)."""
    runs: list[tuple[int, bytes]] = []
    client = None
    for f in pcapfile.frames(path):
        d = f.data
        if d[12:14] != b"\x08\x00" or d[23] != 6:
            continue  # ARP
        ihl = (d[14] & 15) * 4
        t = 14 + ihl
        sport = struct.unpack_from("!H", d, t)[0]
        payload = d[t + (d[t + 12] >> 4) * 4:14 + struct.unpack_from("!H", d, 16)[0]]
        if client is None:
            client = sport
        if not payload:
            continue
        side = 0 if sport == client else 1
        if runs and runs[-1][0] == side:
            runs[-1] = (side, runs[-1][1] + payload)
        else:
            runs.append((side, payload))
    return runs


def _capture() -> tuple[bytes, list[tuple[int, int]]]:
    """The real association re-segmented in SEGMENT bytes, with a copy that differs by one
    byte after every third requestor segment (of a segment 1 to 19 back; every other one
    straddles two segments); and the (first frame, other frame) pairs the rule says conflict:
    the segment holding the changed byte is among the newest RECENT delivered and fewer than
    RECENT_BYTES of newer ones were delivered after it."""
    conv = b.TcpConversation(server=("192.0.2.2", 11112)).handshake()
    delivered: list[tuple[int, int, int]] = []  # requestor segments: (seq, length, frame)
    expected: list[tuple[int, int]] = []
    for side, data in _streams(STORE):
        for i in range(0, len(data), SEGMENT):
            chunk = data[i:i + SEGMENT]
            seq = conv.seq[side]
            conv.frames.append(conv._frame(side, conv.ACK | conv.PSH, chunk))
            conv.seq[side] += len(chunk)
            if side:
                continue
            delivered.append((seq, len(chunk), len(conv.frames)))
            k = len(delivered)
            if k % 3 or k < 21:
                continue
            j = (k // 3) % 19 + 1
            oseq = delivered[k - 1 - j][0]
            start = oseq + (SEGMENT // 2 if k % 2 else 0)  # straddling two segments, or not
            new = bytearray(data[i - (conv.seq[0] - start) + len(chunk):][:SEGMENT])
            at = len(new) - 100  # the byte changed: in the later of two straddled segments
            new[at] ^= 0xFF
            conv.frames.append(conv._frame(0, conv.ACK | conv.PSH, bytes(new), seq=start))
            budget = RECENT_BYTES
            for s, n, frame in reversed(delivered[-RECENT:]):
                if budget <= 0:
                    break
                if s <= start + at < s + n:
                    expected.append((frame, len(conv.frames)))
                    break
                budget -= n
    conv.close()
    return pcap_bytes(conv.frames), expected


def _findings(data: bytes, chunk: int) -> list[str]:
    a = Analyzer(keep=True)
    with CaptureReader(io.BytesIO(data), chunk_size=chunk) as r:
        a.consume(r)
    a.finish()
    assert not a.pinned  # no reference into the reader's buffers outlives consume
    return [f"{f.code} {f.message}" for f in a.findings if f.code.startswith("TCP-")]


def test_conflicts_are_the_rule_s_whatever_the_run_chunk_or_walker(monkeypatch) -> None:
    data, expected = _capture()
    assert len(data) > 2 * RECENT_BYTES
    counted = sum(1 for f in expected)
    assert 0 < counted < len(data) // SEGMENT // 3  # some copies lie too far back
    seen = []
    for walker in (compiled_walk(), None):
        monkeypatch.setattr(accel, "walk", walker)
        for chunk in (1 << 20, 1 << 20, 1 << 20, 65536, 20000, 9000):
            seen.append(_findings(data, chunk))
    conflict = [f for f in seen[0] if f.startswith("TCP-OVERLAP-CONFLICT")]
    assert len(conflict) == 1, seen[0]
    assert f" {counted} retransmitted segment(s) carried different bytes" in conflict[0]
    first = "; ".join(f"frame {x} and frame {y}" for x, y in expected[:5])
    assert first in conflict[0]
    for other in seen[1:]:
        assert other == seen[0]


def test_a_protocol_claiming_the_connection_takes_the_ring_over() -> None:
    """take_over: the retired reassembler keeps no slot and leaves the pinned set, so
    releasing it cannot forget its successor's slots."""

    class Sink:
        def feed(self, data, frame, ts):
            pass

        def gap(self, n, frame, ts):
            pass

    pinned: set = set()
    prev = TcpDirection(Sink(), pinned=pinned)
    prev.syn(0)
    chunk = bytearray(b"a" * 9000 * 3)
    view = memoryview(chunk)
    for i in range(3):
        prev.segment(1 + 9000 * i, view[9000 * i:9000 * (i + 1)], 10 + i, 0.0)
    new = TcpDirection(Sink(), pinned=pinned)
    new.take_over(prev)
    assert pinned == {new} and all(e is None for e in prev.rbuf)
    for i in range(3, RECENT + 3):
        new.segment(1 + 9000 * i, view[:9000], 10 + i, 0.0)
    prev.copy_out(None)  # would have forgotten the successor's slots when they were shared
    assert sum(e is not None for e in new.rbuf) == RECENT
    release_views(pinned, None)
    del view
    chunk[:] = b"\xaa" * len(chunk)  # the reader refills its buffer: no view is left into it
    newest = 1 + 9000 * (RECENT + 2)
    new.segment(newest, b"a" * 9000, 90, 0.0)  # the same bytes again: no conflict
    assert not new.conflicts
    new.segment(newest, b"b" + b"a" * 8999, 91, 0.0)
    assert new.conflict_frames == [(10 + RECENT + 2, 91)]


@pytest.mark.parametrize("chunk", [4096, 9000, 65536])
def test_a_packet_view_keeps_its_bytes_while_the_reader_goes_on(chunk: int) -> None:
    """The reader refills a buffer only when no view into it is alive: views kept across
    many chunks still read the packet's bytes, never newer ones."""
    frames = [bytes([i & 0xFF]) * (1000 + 37 * i) for i in range(120)]
    data = pcap_bytes(frames)
    kept = []
    with CaptureReader(io.BytesIO(data), chunk_size=chunk) as r:
        for i, (_ts, _lt, view, _olen) in enumerate(r):
            if i % 7 == 0:
                kept.append((i, view))
    assert len(kept) == 18
    for i, view in kept:
        assert bytes(view) == frames[i]
