"""TCP reassembly: order, overlap, wraparound, gaps, bounds."""

from __future__ import annotations

import random

from dissectors.tcp import TcpDirection, seq_diff


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.gaps: list[int] = []
        self.frames: list[int] = []

    def feed(self, data, frame, ts):
        self.data += data
        self.frames.append(frame)

    def gap(self, n, frame, ts):
        self.gaps.append(n)
        self.data += b"?" * n


PAYLOAD = bytes(random.Random(1).randrange(256) for _ in range(20000))


def segments(isn: int, data: bytes, size: int = 1000):
    return [((isn + i) & 0xFFFFFFFF, data[i:i + size]) for i in range(0, len(data), size)]


def test_seq_diff_wraps():
    assert seq_diff(5, 0xFFFFFFF0) == 21
    assert seq_diff(0xFFFFFFF0, 5) == -21


def test_in_order_is_passed_through():
    s = Sink()
    d = TcpDirection(s)
    d.syn(99)
    for seq, chunk in segments(100, PAYLOAD):
        d.segment(seq, chunk, 1, 0.0)
    assert bytes(s.data) == PAYLOAD and not s.gaps


def test_out_of_order_and_retransmissions_reassemble_exactly():
    segs = segments(0xFFFFF000, PAYLOAD, 700)  # crosses the 2**32 wrap
    rnd = random.Random(7)
    shuffled = segs[:]
    rnd.shuffle(shuffled)
    shuffled += rnd.sample(segs, 10)  # retransmissions after the fact
    s = Sink()
    d = TcpDirection(s)
    d.syn(0xFFFFF000 - 1)
    for i, (seq, chunk) in enumerate(shuffled):
        d.segment(seq, chunk, i + 1, 0.0)
    d.flush(999, 0.0)
    assert bytes(s.data) == PAYLOAD
    assert not s.gaps
    assert d.retransmissions >= 10


def test_overlapping_segments_first_copy_wins_and_conflict_counted():
    s = Sink()
    d = TcpDirection(s)
    d.syn(0)
    d.segment(1, b"AAAA", 1, 0.0)
    d.segment(3, b"BBBBCC", 2, 0.0)  # overlaps 2 bytes already delivered: tail "BBCC" kept
    assert bytes(s.data) == b"AAAABBCC"
    d.segment(20, b"XXXX", 3, 0.0)  # held
    d.segment(20, b"YYYY", 4, 0.0)  # conflicting copy of a held segment
    # two conflicts: "BB" over the delivered "AA" (compared with the last delivered segment,
    # issue 14), and the held copy
    assert d.conflicts == 2 and d.conflict_frames == [(1, 2), (3, 4)]
    d.segment(9, b"0123456789a", 5, 0.0)
    assert bytes(s.data).endswith(b"0123456789aXXXX")


def test_missing_segment_becomes_a_gap_at_flush():
    segs = segments(1, PAYLOAD)
    s = Sink()
    d = TcpDirection(s)
    d.syn(0)
    for i, (seq, chunk) in enumerate(segs):
        if i != 5:
            d.segment(seq, chunk, i, 0.0)
    d.flush(100, 0.0)
    assert s.gaps == [1000]
    assert bytes(s.data[:5000]) == PAYLOAD[:5000] and bytes(s.data[6000:]) == PAYLOAD[6000:]


def test_buffer_cap_forces_gap_and_bounds_memory():
    s = Sink()
    d = TcpDirection(s, max_buffer=5000)
    d.syn(0)
    for i, (seq, chunk) in enumerate(segments(1001, PAYLOAD)):  # first 1000 bytes never come
        d.segment(seq, chunk, i, 0.0)
        assert d.held_bytes <= 6000
    assert s.gaps == [1000] and d.buffer_overflows == 1


def test_peer_ack_beyond_hole_declares_gap_early():
    s = Sink()
    d = TcpDirection(s)
    d.syn(0)
    segs = segments(1, PAYLOAD)
    for seq, chunk in segs[1:5]:
        d.segment(seq, chunk, 1, 0.0)
    assert not s.gaps
    d.acked(5001, 2, 0.0)
    assert s.gaps == [1000] and len(s.data) == 5000


def test_held_segments_keep_their_own_frame_numbers():
    s = Sink()
    d = TcpDirection(s)
    d.syn(0)
    d.segment(11, b"b" * 10, 7, 0.0)
    d.segment(1, b"a" * 10, 9, 0.0)
    assert s.frames == [9, 7]
