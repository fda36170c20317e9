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


# -- capture loss told by the peer's ACK (issue 14) -------------------------------------------

def test_an_ack_past_every_byte_seen_is_a_loss_at_once():
    """A receiver acknowledges only what it has (RFC 9293 3.4): the capture lost the rest."""
    s = Sink()
    d = TcpDirection(s)
    d.syn(0)
    d.segment(1, b"a" * 100, 1, 0.0)
    d.acked(1 + 100 + 273, 2, 0.0)
    assert s.gaps == [273] and d.missing_bytes == 273
    d.segment(374, b"b" * 10, 3, 0.0)  # what follows is delivered after the hole
    assert bytes(s.data[-10:]) == b"b" * 10


def test_an_ack_one_past_is_a_fin_not_a_loss():
    s = Sink()
    d = TcpDirection(s)
    d.syn(0)
    d.segment(1, b"a" * 100, 1, 0.0)
    d.acked(102, 2, 0.0)
    d.acked(101, 3, 0.0)
    d.acked(50, 4, 0.0)  # behind: nothing
    assert not s.gaps


def test_an_ack_reaching_a_held_segment_declares_the_hole_before_it():
    s = Sink()
    d = TcpDirection(s)
    d.syn(0)
    d.segment(1001, b"b" * 1000, 1, 0.0)  # held: bytes 1..1000 not seen
    d.acked(1001, 2, 0.0)  # the peer has everything up to the held segment
    assert s.gaps == [1000] and len(s.data) == 2000


def test_a_fin_past_what_was_delivered_is_a_loss():
    s = Sink()
    d = TcpDirection(s)
    d.syn(0)
    d.segment(1, b"a" * 100, 1, 0.0)
    d.ended_at(111, 2, 0.0)  # A-RELEASE-RQ's 10 bytes never captured, then the FIN
    assert s.gaps == [10]


# -- overlapping copies that differ, against recent and held bytes (issue 14) -----------------

def test_a_copy_of_an_older_delivered_segment_is_compared():
    """Not only the last segment delivered: the last RECENT ones."""
    s = Sink()
    d = TcpDirection(s)
    d.syn(0)
    for i, (seq, chunk) in enumerate(segments(1, PAYLOAD[:5000]), 10):
        d.segment(seq, chunk, i, 0.0)
    same = PAYLOAD[1000:2000]
    d.segment(1001, same, 20, 0.0)  # the second segment again, the same bytes
    assert d.conflicts == 0 and d.retransmissions == 1
    other = bytes(x ^ 1 for x in same[:100]) + same[100:]
    d.segment(1001, other, 21, 0.0)
    assert d.conflicts == 1 and d.conflict_frames == [(11, 21)]
    d.segment(501, other[:600], 22, 0.0)  # straddling the first and second segments
    assert d.conflict_frames[-1] == (10, 22)  # the first segment it differs from
    assert bytes(s.data) == PAYLOAD[:5000]  # the first copy kept


def test_a_partial_overlap_of_delivered_bytes_keeps_the_first_copy_and_the_new_tail():
    s = Sink()
    d = TcpDirection(s)
    d.syn(0)
    d.segment(1, b"a" * 100, 1, 0.0)
    d.segment(51, b"X" * 50 + b"b" * 50, 2, 0.0)
    assert bytes(s.data) == b"a" * 100 + b"b" * 50
    assert d.conflict_frames == [(1, 2)]


def test_a_copy_overlapping_a_held_segment_at_another_start_is_compared():
    s = Sink()
    d = TcpDirection(s)
    d.syn(0)
    d.segment(201, b"c" * 100, 5, 0.0)  # held (1..200 not yet seen)
    d.segment(151, b"b" * 50 + b"C" * 50, 6, 0.0)  # overlaps it with other bytes
    assert d.conflict_frames == [(5, 6)]
    d.segment(1, b"a" * 150, 7, 0.0)
    # held bytes: the copy that starts first is delivered, as Linux's out-of-order queue
    # delivers it (a later copy starting at the same place only adds its tail)
    assert bytes(s.data) == b"a" * 150 + b"b" * 50 + b"C" * 50 + b"c" * 50


def test_a_copy_of_a_held_segment_at_the_same_start_is_compared():
    s = Sink()
    d = TcpDirection(s)
    d.syn(0)
    d.segment(101, b"b" * 100, 5, 0.0)
    d.segment(101, b"b" * 100, 6, 0.0)
    assert not d.conflicts
    d.segment(101, b"B" * 100, 7, 0.0)
    assert d.conflict_frames == [(5, 7)]


def test_overlap_comparison_is_bounded():
    """Thousands of held segments: an out-of-order copy is compared with the one at its
    start only, so the work stays linear."""
    s = Sink()
    d = TcpDirection(s, max_buffer=64 << 20)
    d.syn(0)
    for i in range(5000, 0, -1):
        d.segment(1 + 2 * i, b"x", i, 0.0)
    d.segment(1 + 2 * 7, b"y", 99999, 0.0)
    assert d.conflict_frames == [(7, 99999)]


def test_released_references_become_copies_within_their_byte_budget():
    """release_views: the segments kept by reference into a buffer the reader left are
    copied, newest first, while RECENT_BYTES last; a conflict with them is still seen."""
    from dissectors.tcp import RECENT, RECENT_BYTES, release_views

    s = Sink()
    pinned: set = set()
    d = TcpDirection(s, pinned=pinned)
    d.syn(0)
    chunk = bytearray(PAYLOAD[:9000] * RECENT)  # jumbo segments in one reader chunk
    view = memoryview(chunk)
    for i in range(RECENT):
        d.segment(1 + 9000 * i, view[9000 * i:9000 * (i + 1)], 10 + i, 0.0)
    assert pinned == {d}
    release_views(pinned, chunk)  # the reader is still in that chunk: nothing copied
    assert pinned == {d} and all(type(e[1]) is memoryview for e in d.rbuf if e is not None)
    release_views(pinned, bytearray(1))  # it moved on
    assert not pinned
    kept = [e for e in d.rbuf if e is not None]
    assert all(type(e[1]) is bytes for e in kept)
    assert RECENT_BYTES - 9000 < sum(len(e[1]) for e in kept) <= RECENT_BYTES + 9000
    del view
    chunk.append(0)  # no view into it is left (a bytearray with exports cannot resize)
    last = 1 + 9000 * (RECENT - 1)
    d.segment(last, PAYLOAD[:9000], 90, 0.0)  # the newest again, the same bytes
    assert not d.conflicts
    d.segment(last, b"X" + PAYLOAD[1:9000], 91, 0.0)
    assert d.conflict_frames == [(10 + RECENT - 1, 91)]


# -- an answer captured before what it answers: the answer waits, bounded (issue 14) ----------

class Log:
    """The sinks of both directions writing to one log, in the order the upper layer reads."""

    def __init__(self) -> None:
        self.log: list[tuple] = []

    def side(self, name: str):
        log = self.log

        class _Side:
            def feed(self, data, frame, ts):
                log.append((name, bytes(data), frame))

            def gap(self, n, frame, ts):
                log.append((name, "gap", n, frame))
        return _Side()


def _pair():
    log = Log()
    rq, ac = TcpDirection(log.side("rq")), TcpDirection(log.side("ac"))
    rq.syn(0)
    ac.syn(1000)
    return log, rq, ac


def test_an_answer_before_the_request_it_acknowledges_waits_for_it():
    log, rq, ac = _pair()
    assert rq.acked(11, 2, 0.0, sender=ac)  # the answer acknowledges 10 bytes not yet seen
    ac.segment(1001, b"ANSWER", 2, 0.0)
    assert not log.log  # held
    rq.segment(1, b"REQUEST...", 3, 0.001)  # the request, captured late
    assert ac.acked(1007, 4, 0.002) is False  # the next segment's ACK: the answer goes on
    assert log.log == [("rq", b"REQUEST...", 3), ("ac", b"ANSWER", 2)]
    assert not rq.gaps and not ac.gaps and not rq.retransmissions


def test_a_request_that_never_comes_is_lost_after_the_wait():
    from dissectors.tcp import WAIT_SECONDS

    log, rq, ac = _pair()
    rq.acked(11, 2, 0.0, sender=ac)
    ac.segment(1001, b"ANSWER", 2, 0.0)
    ac.segment(1007, b"MORE", 5, WAIT_SECONDS / 2)
    assert not log.log
    ac.segment(1011, b"LAST", 9, WAIT_SECONDS + 0.1)  # waited long enough
    # the loss is told at the frame that acknowledged the missing bytes, before the answer
    assert log.log == [("rq", "gap", 10, 2), ("ac", b"ANSWER", 2), ("ac", b"MORE", 5),
                       ("ac", b"LAST", 9)]


def test_the_requests_later_bytes_first_mean_the_rest_is_lost():
    """Each direction keeps its order: the requestor's next bytes before the ones the
    answer acknowledged mean those were lost; the answer goes between."""
    log, rq, ac = _pair()
    rq.acked(11, 2, 0.0, sender=ac)
    ac.segment(1001, b"ANSWER", 2, 0.0)
    assert ac.acked(1007, 3, 0.0, sender=rq)  # NEXT acknowledges ANSWER: gated on it too
    rq.segment(11, b"NEXT", 3, 0.0)  # held: 1..10 not seen
    ac.segment(1007, b"MORE", 4, 0.0)
    assert log.log == [("rq", "gap", 10, 2), ("ac", b"ANSWER", 2), ("ac", b"MORE", 4)]
    rq.segment(15, b"AFTER", 5, 0.0)
    assert log.log[3:] == [("rq", b"NEXT", 3), ("rq", b"AFTER", 5)]


def test_settle_reads_the_two_directions_in_the_order_the_peers_sent_them():
    """A response lost by the capture, the next request reusing its message ID, the next
    response (nget.pcap's shape): each segment after every byte it acknowledges."""
    from dissectors.tcp import settle

    log, rq, ac = _pair()
    pumped: list[int] = []
    rq.segment(1, b"RQ1", 1, 0.0)
    assert not rq.acked(4, 2, 0.0, sender=ac)
    ac.segment(1001, b"RSP1", 2, 0.0)  # (the capture lost nothing of it; RQ2 comes next)
    assert ac.acked(1005, 3, 0.0, sender=rq) is False
    # the capture lost RSP1' (1005..1009); RQ2 acknowledges it
    assert ac.acked(1010, 4, 0.0, sender=rq)
    rq.segment(4, b"RQ2", 4, 0.0)  # gated on 1010
    assert rq.acked(7, 5, 0.0, sender=ac)  # RSP2 acknowledges RQ2, held: gated on it
    ac.segment(1010, b"RSP2", 5, 0.0)
    assert len(log.log) == 2  # RQ2 waits for RSP1', RSP2 for RQ2
    settle((rq, ac), pumped.append, 6, 0.0, force=True)
    assert [x[:2] for x in log.log] == [("rq", b"RQ1"), ("ac", b"RSP1"), ("ac", "gap"),
                                        ("rq", b"RQ2"), ("ac", b"RSP2")]


def test_what_waits_is_bounded_and_flushed():
    from dissectors.tcp import WAIT_BYTES

    log, rq, ac = _pair()
    rq.acked(11, 2, 0.0, sender=ac)
    seq = 1001
    for i in range(WAIT_BYTES // 1000 + 2):
        ac.segment(seq, b"x" * 1000, 10 + i, 0.0)
        seq += 1000
    assert log.log[0] == ("rq", "gap", 10, 10) and not ac.gate and not ac.held
    log2, rq2, ac2 = _pair()
    rq2.acked(11, 2, 0.0, sender=ac2)
    ac2.segment(1001, b"ANSWER", 2, 0.0)
    ac2.flush(3, 0.0)
    assert log2.log == [("rq", "gap", 10, 2), ("ac", b"ANSWER", 2)]
