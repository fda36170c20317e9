"""TCP reassembly of one direction of a connection: ordered bytes out, gaps reported.

The sink (an upper-layer parser) gets ``feed(data, frame, ts)`` with in-order bytes and
``gap(n, frame, ts)`` for bytes the capture never had. In-order segments, the common case, go
straight through without a copy (and ``Analyzer.consume`` skips even the call when nothing is
held). Out-of-order segments are copied and held in a heap keyed by their unwrapped sequence
number, so reordering, flushing and gap declaration stay O(log n) per segment whatever order
the capture holds. Held memory is bounded by ``max_buffer``, counting a per-segment overhead so
that many tiny segments cannot exceed it; when the bound is hit, or the peer acknowledges bytes
we never saw, or the stream ends, the hole is declared a gap and delivery continues after it.

Overlaps: the first copy wins (it is what was already delivered). A held segment retransmitted
with different bytes is counted as a conflict, because a receiver may have seen either.
"""

from __future__ import annotations

import heapq

MASK = 0xFFFFFFFF
HALF = 0x80000000
DEFAULT_MAX_BUFFER = 4 << 20  # out-of-order bytes held per direction
SEGMENT_OVERHEAD = 160  # bytes of bookkeeping per held segment, counted against max_buffer


def seq_diff(a: int, b: int) -> int:
    """a - b in sequence space (RFC 1982 style), in [-2**31, 2**31)."""
    d = (a - b) & MASK
    return d - 0x100000000 if d >= HALF else d


class TcpDirection:
    """Reassembles one direction; counters feed the transport findings.

    ``next_seq`` is the 32-bit sequence number expected next. While segments are held,
    ``next_u`` is the same position unwrapped (a Python int that never wraps), so held
    segments can be ordered across the 2**32 wrap.
    """

    __slots__ = ("sink", "next_seq", "next_u", "held", "heap", "held_bytes", "max_buffer",
                 "retransmissions", "conflicts", "gaps", "missing_bytes", "buffer_overflows",
                 "fin", "delivered", "retransmission_frames")

    def __init__(self, sink, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self.sink = sink
        self.next_seq: int | None = None
        self.next_u = 0
        self.held: dict[int, tuple[bytes, int, float]] = {}  # unwrapped seq -> (bytes, frame, ts)
        self.heap: list[int] = []  # unwrapped seqs of held segments
        self.held_bytes = 0
        self.max_buffer = max_buffer
        self.retransmissions = 0
        self.retransmission_frames: list[int] = []  # the first few, for findings
        self.conflicts = 0
        self.gaps = 0
        self.missing_bytes = 0
        self.buffer_overflows = 0
        self.fin = False
        self.delivered = 0

    def syn(self, seq: int) -> None:
        """A SYN fixes the initial sequence number: data starts at seq + 1."""
        self.next_seq = (seq + 1) & MASK

    def _deliver(self, data, frame: int, ts: float) -> None:
        n = len(data)
        self.next_seq = (self.next_seq + n) & MASK  # type: ignore[operator]
        self.next_u += n
        self.delivered += n
        self.sink.feed(data, frame, ts)

    def segment(self, seq: int, data, frame: int, ts: float) -> None:
        """A segment's payload (possibly empty) at sequence number seq."""
        nxt = self.next_seq
        n = len(data)
        if nxt is None:
            self.next_seq = nxt = seq
        if seq == nxt:
            if n:
                self._deliver(data, frame, ts)
                if self.held:
                    self._drain()
            return
        if not n:
            return
        d = seq_diff(seq, nxt)
        if d < 0:
            self._retransmitted(frame)
            if d + n <= 0:
                return
            # Partial overlap with what was delivered: the first copy wins, keep the new tail.
            self._deliver(data[-d:], frame, ts)
            if self.held:
                self._drain()
            return
        # Ahead of what we have: hold a copy until the hole fills or is declared a gap.
        if not self.held:
            self.next_u = nxt  # any anchor will do while nothing is held
        u = self.next_u + d
        prev = self.held.get(u)
        if prev is not None:
            old = prev[0]
            self._retransmitted(frame)
            if bytes(data[:len(old)]) != old[:n]:
                self.conflicts += 1
            if n <= len(old):
                return
            self.held_bytes -= len(old) + SEGMENT_OVERHEAD
        else:
            heapq.heappush(self.heap, u)
        self.held[u] = (bytes(data), frame, ts)
        self.held_bytes += n + SEGMENT_OVERHEAD
        if self.held_bytes > self.max_buffer:
            self.buffer_overflows += 1
            while self.held and self.held_bytes > self.max_buffer // 2:
                self.skip_to_held(frame, ts)

    def _retransmitted(self, frame: int) -> None:
        self.retransmissions += 1
        if len(self.retransmission_frames) < 20:
            self.retransmission_frames.append(frame)

    def _pop(self) -> tuple[int, bytes, int, float]:
        u = heapq.heappop(self.heap)
        data, frame, ts = self.held.pop(u)
        self.held_bytes -= len(data) + SEGMENT_OVERHEAD
        return u, data, frame, ts

    def _drain(self) -> None:
        """Deliver held segments that now start at or before next_seq, in order."""
        heap = self.heap
        while heap and heap[0] <= self.next_u:
            u, data, frame, ts = self._pop()
            d = u - self.next_u
            if d + len(data) <= 0:
                self.retransmissions += 1
                continue
            # Delivered late, but with its own frame and time: timings stay true.
            self._deliver(data[-d:] if d < 0 else data, frame, ts)

    def skip_to_held(self, frame: int, ts: float) -> None:
        """Declare the hole before the earliest held segment a gap and deliver from there."""
        if not self.heap or self.next_seq is None:
            return
        missing = self.heap[0] - self.next_u
        if missing > 0:
            self.gaps += 1
            self.missing_bytes += missing
            self.sink.gap(missing, frame, ts)
            self.next_seq = (self.next_seq + missing) & MASK
            self.next_u += missing
        self._drain()

    def acked(self, ack: int, frame: int, ts: float) -> None:
        """The peer acknowledged up to ``ack``: bytes it got that we never saw are a gap.

        Only once several segments wait behind the hole, so that a capture which merely
        reordered two segments is not mistaken for a loss.
        """
        if len(self.held) >= 3 and self.next_seq is not None and (
                seq_diff(ack, self.next_seq) > 0):
            self.skip_to_held(frame, ts)

    def flush(self, frame: int, ts: float) -> None:
        """End of stream: deliver everything held, declaring holes as gaps."""
        while self.heap:
            self.skip_to_held(frame, ts)
