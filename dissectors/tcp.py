"""TCP reassembly of one direction of a connection: ordered bytes out, gaps reported.

The sink (an upper-layer parser) gets ``feed(data, frame, ts)`` with in-order bytes and
``gap(n, frame, ts)`` for bytes the capture never had. In-order segments, the common case, go
straight through without a copy. Out-of-order segments are copied and held, bounded by
``max_buffer``; when the bound is hit, or the peer acknowledges bytes we never saw, or the
stream ends, the hole is declared a gap and delivery continues after it.

Overlaps: the first copy wins (it is what was already delivered). A held segment retransmitted
with different bytes is counted as a conflict, because a receiver may have seen either.
"""

from __future__ import annotations

MASK = 0xFFFFFFFF
HALF = 0x80000000
DEFAULT_MAX_BUFFER = 4 << 20  # out-of-order bytes held per direction


def seq_diff(a: int, b: int) -> int:
    """a - b in sequence space (RFC 1982 style), in [-2**31, 2**31)."""
    d = (a - b) & MASK
    return d - 0x100000000 if d >= HALF else d


class TcpDirection:
    """Reassembles one direction; counters feed the transport findings."""

    __slots__ = ("sink", "next_seq", "held", "held_bytes", "max_buffer", "retransmissions",
                 "conflicts", "gaps", "missing_bytes", "buffer_overflows", "fin", "delivered")

    def __init__(self, sink, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self.sink = sink
        self.next_seq: int | None = None
        self.held: dict[int, tuple[bytes, int, float]] = {}  # seq -> (bytes, frame, ts)
        self.held_bytes = 0
        self.max_buffer = max_buffer
        self.retransmissions = 0
        self.conflicts = 0
        self.gaps = 0
        self.missing_bytes = 0
        self.buffer_overflows = 0
        self.fin = False
        self.delivered = 0

    def syn(self, seq: int) -> None:
        """A SYN fixes the initial sequence number: data starts at seq + 1."""
        self.next_seq = (seq + 1) & MASK

    def segment(self, seq: int, data, frame: int, ts: float) -> None:
        """A segment's payload (possibly empty) at sequence number seq."""
        nxt = self.next_seq
        n = len(data)
        if nxt is None:
            self.next_seq = nxt = seq
        if seq == nxt:
            if n:
                self.next_seq = (seq + n) & MASK
                self.delivered += n
                self.sink.feed(data, frame, ts)
                if self.held:
                    self._drain(frame, ts)
            return
        if not n:
            return
        d = seq_diff(seq, nxt)
        if d < 0:
            if d + n <= 0:
                self.retransmissions += 1
                return
            # Partial overlap with what was delivered: the first copy wins, keep the new tail.
            self.retransmissions += 1
            data = data[-d:]
            n = len(data)
            self.next_seq = (nxt + n) & MASK
            self.delivered += n
            self.sink.feed(data, frame, ts)
            if self.held:
                self._drain(frame, ts)
            return
        # Ahead of what we have: hold a copy until the hole fills or is declared a gap.
        prev = self.held.get(seq)
        if prev is not None:
            old = prev[0]
            self.retransmissions += 1
            if bytes(data[:len(old)]) != old[:n]:
                self.conflicts += 1
            if n <= len(old):
                return
            self.held_bytes -= len(old)
        self.held[seq] = (bytes(data), frame, ts)
        self.held_bytes += n
        if self.held_bytes > self.max_buffer:
            self.buffer_overflows += 1
            self.skip_to_held(frame, ts)

    def _drain(self, frame: int, ts: float) -> None:
        """Deliver held segments that now start at or before next_seq."""
        held = self.held
        while held:
            nxt = self.next_seq
            best = None
            for s in held:
                if seq_diff(s, nxt) <= 0:
                    best = s
                    break
            if best is None:
                return
            data, hframe, hts = held.pop(best)
            self.held_bytes -= len(data)
            d = seq_diff(best, nxt)
            if d + len(data) <= 0:
                self.retransmissions += 1
                continue
            if d < 0:
                data = data[-d:]
            self.next_seq = (nxt + len(data)) & MASK
            self.delivered += len(data)
            # Delivered late, but with its own frame and time: timings stay true.
            self.sink.feed(data, hframe, hts)

    def skip_to_held(self, frame: int, ts: float) -> None:
        """Declare the hole before the earliest held segment a gap and deliver from there."""
        if not self.held or self.next_seq is None:
            return
        nxt = self.next_seq
        first = min(self.held, key=lambda s: seq_diff(s, nxt))
        missing = seq_diff(first, nxt)
        if missing > 0:
            self.gaps += 1
            self.missing_bytes += missing
            self.sink.gap(missing, frame, ts)
            self.next_seq = first
        self._drain(frame, ts)

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
        while self.held:
            before = len(self.held)
            self.skip_to_held(frame, ts)
            if len(self.held) >= before:  # cannot happen, but never loop forever
                self.held.clear()
                self.held_bytes = 0
