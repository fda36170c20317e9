"""TCP reassembly of one direction of a connection: ordered bytes out, gaps reported.

The sink (an upper-layer parser) gets ``feed(data, frame, ts)`` with in-order bytes and
``gap(n, frame, ts)`` for bytes the capture never had. In-order segments, the common case, go
straight through without a copy (and ``Analyzer.consume`` skips even the call when nothing is
held). Out-of-order segments are copied and held in a heap keyed by their unwrapped sequence
number, so reordering, flushing and gap declaration stay O(log n) per segment whatever order
the capture holds. Held memory is bounded by ``max_buffer``, counting a per-segment overhead so
that many tiny segments cannot exceed it; when the bound is hit, or the peer acknowledges bytes
we never saw, or the stream ends, the hole is declared a gap and delivery continues after it.

Overlaps: a copy of bytes already delivered is compared with every segment of the last
``RECENT`` delivered, and a copy of held bytes with every held segment it overlaps (while at
most ``HELD_COMPARED`` are held); different bytes are a conflict, reported with both frames.
The copy kept is the one a receiver keeps: the first for bytes already delivered (the
application read them), and for held bytes the one that starts first (a later copy at the
same start only adds its tail).

The delivered segments are kept by reference, not copied (copying every payload cost 30% of
the CPU of a bulk transfer); but a reference into a capture reader's chunk pins the whole chunk
(1 MiB), so a connection gone quiet would keep 2 x ``RECENT`` chunks alive. Directions that
keep references register in a shared set (``pinned``), and whoever feeds frames calls
:func:`release_views` when its reader moves on (``Analyzer.consume`` looks every 32 frames):
only then are the references still looking into a chunk the reader left copied. What a copy
is compared with never depends on when that happens: the newest ``RECENT`` segments, of which
those delivered before ``RECENT_BYTES`` of newer ones (:meth:`TcpDirection._recent`, applied
alike to views and copies); the older ones are forgotten at the copy. What is kept is then
bounded by ``RECENT_BYTES`` (plus one segment) per direction of an open connection, and the
chunks of the last 32 frames.

RST and SYN are judged as an RFC 5961 receiver judges them (:meth:`TcpDirection.judge_rst`,
:meth:`TcpDirection.judge_syn`): a RST ends the connection only when its sequence number is
the one the receiver expects next; one elsewhere in the window gets a challenge ACK and one
outside it is dropped; a SYN on a synchronised connection gets a challenge ACK. Injected
segments then cost nothing but a finding.

An answer seen before the segment it answers is not a loss: a sensor fed by a port mirror or
a tap merges the two directions through separate queues, and a peer's reply, acknowledging
bytes the capture has not shown yet, can come first. So a segment whose ACK is past what the
other direction delivered is held, gated on that ACK (``gate``), and delivered once the other
direction has delivered (or lost) up to it: the upper layer reads the two directions in the
order the peers sent them (a segment after every byte it acknowledges). A gate waits at most
``WAIT_SECONDS`` of capture time and ``WAIT_BYTES`` held, and not once the other direction's
later bytes came first (each direction keeps its order): then the hole is lost
(:meth:`TcpDirection.resume`; the engine calls it and reads both directions in turn).
"""

from __future__ import annotations

import heapq
import struct

MASK = 0xFFFFFFFF
HALF = 0x80000000
DEFAULT_MAX_BUFFER = 4 << 20  # out-of-order bytes held per direction
SEGMENT_OVERHEAD = 160  # bytes of bookkeeping per held segment, counted against max_buffer
# The receive window as a passive observer can bound it: the window scale is in the SYN
# options and the advertised window moves, so the largest window a DICOM receiver offers
# (a few MB with scaling) is taken. A blind RST lands inside it with probability 1/256.
RST_WINDOW = 1 << 24
MAX_IGNORED_FRAMES = 20
RECENT = 16  # delivered segments a retransmission is compared with (a power of two)
# Bytes of those segments kept as copies once the reader has moved on, per direction: 16
# segments of an MSS of 1460 fit; of jumbo or TSO segments, the newest.
RECENT_BYTES = 64 << 10
HELD_COMPARED = 64  # held segments an out-of-order copy is compared with, at most
# How long a segment waits for the other direction's bytes it acknowledges and the capture
# has not shown yet (TcpDirection.resume): capture time, and bytes held meanwhile.
WAIT_SECONDS = 1.0
WAIT_BYTES = 256 << 10


_FRAME = struct.Struct("!16xH20xI4xB")  # IPv4 total length, TCP seq, data offset


def recent_payload(entry) -> tuple[int, memoryview | bytes] | None:
    """(sequence number, payload) of a slot of ``TcpDirection.rbuf``."""
    if entry is None or type(entry) is tuple:
        return entry
    # (a slot holding a whole frame is written only by Analyzer.consume's fast path)
    total, seq, doff = _FRAME.unpack_from(entry, 0)  # an Ethernet IPv4 frame, no options
    start = 34 + (doff >> 4) * 4
    return seq, memoryview(entry)[start:14 + total]


def release_views(pinned: set[TcpDirection], chunk=None) -> None:
    """The reader moved to ``chunk`` (None: it is done): copy out every delivered segment
    still kept by reference into an older buffer (:meth:`TcpDirection.copy_out`), so that no
    quiet connection pins a buffer the reader has left."""
    if pinned:
        keep = [d for d in pinned if d.copy_out(chunk)]
        pinned.clear()
        pinned.update(keep)


def settle(pair, pump, frame: int, ts: float, force: bool = False) -> None:
    """Deliver what the gates of a connection's two directions let through now, in turn:
    ``pump(side)`` hands each direction's new bytes on before the other's (a loss a gate
    declared on the other direction first), so the upper layer reads them in the order the
    peers sent them. ``force``: the connection ends, every gate opens."""
    for _ in range(64):  # each turn delivers something, or ends
        moved = False
        for side in (0, 1):
            d = pair[side]
            if d.gate and d.resume(frame, ts, force):
                pump(1 - side)
                pump(side)
                moved = True
        if not moved:
            return


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
                 "fin", "delivered", "retransmission_frames", "ignored_rst", "ignored_syn",
                 "ignored_frames", "rbuf", "rframe", "ri", "conflict_frames", "pinned",
                 "peer", "gate", "gate_next", "gate_frame", "gate_ts")

    def __init__(self, sink, max_buffer: int = DEFAULT_MAX_BUFFER,
                 pinned: set[TcpDirection] | None = None) -> None:
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
        self.ignored_rst = 0  # RSTs a receiver would not act on (RFC 5961 3.2)
        self.ignored_syn = 0  # SYNs on a synchronised connection (RFC 5961 4.2)
        self.ignored_frames: list[int] = []
        # The last RECENT segments delivered, to compare a retransmission with, kept by
        # reference in two parallel lists, slot ``ri`` next: ``rbuf`` holds (seq, payload)
        # from this class, or the whole frame from the engine's fast path (an Ethernet IPv4
        # frame without options: sequence number and payload are read back from it only
        # when a retransmission comes, so the hot path makes no object per packet).
        # Both paths judge alike (tests/test_fast_path.py).
        self.rbuf: list = [None] * RECENT
        self.rframe = [0] * RECENT  # the segment's frame
        self.ri = 0
        self.conflict_frames: list[tuple[int, int]] = []  # (first copy, other copy)
        # shared by every direction of an analyzer: those whose ring may hold references
        # into a reader's buffer since the last release_views (None: nobody releases)
        self.pinned = pinned
        # Held segments gated on the other direction (``peer``): unwrapped seq -> the ACK
        # they carry, delivered once the peer has delivered (or lost) up to it. gate_next:
        # the ACK of the segment about to come (acked); gate_frame, gate_ts: where the
        # oldest gate began, for the bounds and to tell a loss at.
        self.peer: TcpDirection | None = None
        self.gate: dict[int, int] = {}
        self.gate_next: int | None = None
        self.gate_frame = 0
        self.gate_ts = 0.0

    def syn(self, seq: int) -> None:
        """A SYN fixes the initial sequence number: data starts at seq + 1."""
        self.next_seq = (seq + 1) & MASK

    def judge_rst(self, seq: int, frame: int, fin: bool = False) -> bool:
        """Would the receiver of this direction reset the connection on a RST at ``seq``?

        RFC 5961 3.2: only when ``seq`` is exactly the next sequence number expected; in
        the window otherwise, the receiver sends a challenge ACK and goes on; outside it,
        the RST is dropped. When the capture lost bytes of this direction, the expected
        number is not known for sure: a RST ahead of it within the window is then believed.
        ``fin``: this direction sent its FIN, which takes one sequence number.
        """
        nxt = self.next_seq
        if nxt is None:
            return True  # not synchronised yet (a refused SYN): RFC 793 rules apply
        d = seq_diff(seq, nxt)
        if d == 0 or (fin and d == 1) or (
                0 < d < RST_WINDOW and (self.held or self.missing_bytes)):
            return True
        self.ignored_rst += 1
        self._ignored(frame)
        return False

    def judge_syn(self, frame: int) -> None:
        """A SYN on this synchronised direction: a challenge ACK, nothing else (RFC 5961
        4.2)."""
        self.ignored_syn += 1
        self._ignored(frame)

    def _ignored(self, frame: int) -> None:
        if len(self.ignored_frames) < MAX_IGNORED_FRAMES:
            self.ignored_frames.append(frame)

    def _deliver(self, data, frame: int, ts: float) -> None:
        n = len(data)
        i = self.ri
        self.rbuf[i] = (self.next_seq, data)
        self.rframe[i] = frame
        self.ri = (i + 1) & (RECENT - 1)
        if self.pinned is not None:
            self.pinned.add(self)
        self.next_seq = (self.next_seq + n) & MASK  # type: ignore[operator]
        self.next_u += n
        self.delivered += n
        self.sink.feed(data, frame, ts)

    def _past_delivered(self, seq: int, d: int, data, frame: int):
        """A segment starting ``-d`` bytes before ``next_seq``: a retransmission, compared
        with what was delivered. Its new tail (the first copy wins), or None if it has none."""
        self._retransmitted(frame)
        self._compare_delivered(seq, data, frame)
        if d + len(data) <= 0:
            return None
        return data[-d:]

    def segment(self, seq: int, data, frame: int, ts: float) -> None:
        """A segment's payload (possibly empty) at sequence number seq."""
        nxt = self.next_seq
        n = len(data)
        if nxt is None:
            self.next_seq = nxt = seq
        gate = self.gate_next
        if gate is not None or self.gate:
            self.gate_next = None
            if self.gate:
                self.resume(frame, ts)
                nxt = self.next_seq
            if gate is not None and n:
                # its ACK is past what the other direction delivered: held until it is not
                d = seq_diff(seq, nxt)
                if d < 0:
                    data = self._past_delivered(seq, d, data, frame)
                    if data is None:
                        return
                    d = 0
                if not self.gate:
                    self.gate_frame, self.gate_ts = frame, ts
                self._hold(d, data, frame, ts)
                self.gate[self.next_u + d] = gate
                return
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
            data = self._past_delivered(seq, d, data, frame)
            if data is None:
                return
            self._deliver(data, frame, ts)
            if self.held:
                self._drain()
            return
        # Ahead of what we have: hold a copy until the hole fills or is declared a gap.
        self._hold(d, data, frame, ts)

    def _hold(self, d: int, data, frame: int, ts: float) -> None:
        """Keep a copy of a segment ``d`` bytes past ``next_seq`` until it can be delivered."""
        nxt = self.next_seq
        n = len(data)
        if not self.held:
            self.next_u = nxt  # any anchor will do while nothing is held
        u = self.next_u + d
        prev = self.held.get(u)
        if self.held and len(self.held) <= HELD_COMPARED:
            self._compare_held(u, data, frame)
        elif prev is not None and bytes(data[:len(prev[0])]) != prev[0][:n]:
            self._conflict(prev[1], frame)  # many held: the copy at the same start only
        if prev is not None:
            old = prev[0]
            self._retransmitted(frame)
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
                if not self._skip_and_open(frame, ts):
                    break

    def _recent(self):
        """The delivered segments a retransmission is compared with, newest first, as
        (slot, sequence number, payload): of the last ``RECENT``, those delivered while
        ``RECENT_BYTES`` of newer ones had not yet been counted. A pure function of the
        traffic: whether a slot is still a view or already a copy, and when the reader
        moved on, change nothing; and a slot outside it stays outside (newer segments only
        push it further), so :meth:`copy_out` may forget it for good."""
        rbuf = self.rbuf
        budget = RECENT_BYTES
        i = self.ri
        for _ in range(RECENT):
            i = (i - 1) & (RECENT - 1)
            entry = rbuf[i]
            if entry is None:
                continue
            if budget <= 0:
                return
            seq, payload = recent_payload(entry)  # type: ignore[misc]
            budget -= len(payload)
            yield i, seq, payload

    def copy_out(self, chunk) -> bool:
        """Copy the delivered segments kept by reference into any buffer but ``chunk`` (the
        reader's current one; None: every reference); slots outside :meth:`_recent` are
        forgotten. True if references into ``chunk`` remain.

        (:meth:`_recent` and :func:`recent_payload` inlined: this runs for every direction
        that holds references each time the reader changes chunk, every 2 MiB of a bulk
        capture.)"""
        rbuf = self.rbuf
        left = False
        budget = RECENT_BYTES
        i = self.ri
        mask = RECENT - 1
        for _ in range(RECENT):  # newest first, as _recent
            i = (i - 1) & mask
            entry = rbuf[i]
            if entry is None:
                continue
            if budget <= 0:  # outside _recent: forgotten
                rbuf[i] = None
                continue
            if type(entry) is tuple:  # (seq, payload): a copy, or a view the general path kept
                payload = entry[1]
                budget -= len(payload)
                if type(payload) is memoryview:
                    if chunk is not None and payload.obj is chunk:
                        left = True
                    else:
                        rbuf[i] = (entry[0], bytes(payload))
                continue
            # a whole frame (Analyzer.consume's fast path), cut as recent_payload cuts it
            total, seq, doff = _FRAME.unpack_from(entry, 0)
            start = 34 + (doff >> 4) * 4
            end = 14 + total
            size = len(entry)
            budget -= max(0, min(end, size) - min(start, size))
            if chunk is not None and type(entry) is memoryview and entry.obj is chunk:
                left = True
            else:  # (a frame handed over as bytes is copied as recent_payload's view of it)
                rbuf[i] = (seq, bytes(entry[start:end]))
        return left

    def take_over(self, prev: TcpDirection) -> None:
        """Go on where ``prev`` (the reassembler of the same direction before a protocol
        claimed it) stands: what it holds, where it is, the segments it delivered. ``prev``
        keeps none of it: two reassemblers sharing one ring with two write positions would
        forget each other's slots (:meth:`copy_out`), making what a retransmission is
        compared with depend on the order they are released in."""
        self.next_seq, self.next_u = prev.next_seq, prev.next_u
        self.held, self.heap, self.held_bytes = prev.held, prev.heap, prev.held_bytes
        prev.held, prev.heap, prev.held_bytes = {}, [], 0
        self.rbuf, self.rframe, self.ri = prev.rbuf, prev.rframe, prev.ri
        prev.rbuf, prev.rframe, prev.ri = [None] * RECENT, [0] * RECENT, 0
        self.conflicts, self.conflict_frames = prev.conflicts, prev.conflict_frames
        if prev.pinned is not None:
            prev.pinned.discard(prev)
            if self.pinned is not None:
                self.pinned.add(self)

    def _compare_delivered(self, seq: int, data, frame: int) -> None:
        """A copy of bytes already delivered: do they match what was delivered, in any of
        the segments :meth:`_recent` keeps? The first copy is the one kept (it is what the
        upper layer already read); a difference is a conflict, reported with both frames
        (once per copy)."""
        n = len(data)
        for i, oseq, payload in self._recent():
            lo = seq_diff(seq, oseq)  # where the new copy starts within the old one
            a, b = max(0, lo), min(len(payload), lo + n)
            if a < b and bytes(payload[a:b]) != bytes(data[a - lo:b - lo]):
                self._conflict(self.rframe[i], frame)
                return

    def _compare_held(self, u: int, data, frame: int) -> None:
        """An out-of-order copy: do the held segments it overlaps hold the same bytes?"""
        n = len(data)
        for v, (old, first, _ts) in self.held.items():
            lo = u - v  # where the new copy starts within the held one
            a, b = max(0, lo), min(len(old), lo + n)
            if a < b and old[a:b] != bytes(data[a - lo:b - lo]):
                self._conflict(first, frame)
                return

    def _conflict(self, first: int, other: int) -> None:
        self.conflicts += 1
        if len(self.conflict_frames) < MAX_IGNORED_FRAMES:
            self.conflict_frames.append((first, other))

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
        """Deliver held segments that now start at or before next_seq, in order, up to one
        gated on bytes the other direction has not delivered yet."""
        gate = self.gate
        # self.heap read each time: delivering can decide the protocol, and the connection
        # then hands what is held to new reassemblers (analysis.flows attach), leaving this
        # one an empty heap
        while self.heap and self.heap[0] <= self.next_u:
            if gate:
                g = gate.get(self.heap[0])
                if g is not None:
                    if self._blocked(g):
                        return
                    del gate[self.heap[0]]
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
            self._lose(missing, frame, ts)
        self._drain()

    def _blocked(self, ack: int) -> bool:
        """Has the other direction not yet delivered (or lost) the bytes up to ``ack``?"""
        peer = self.peer
        nxt = peer.next_seq if peer is not None else None
        return nxt is not None and seq_diff(ack, nxt) > 1

    def resume(self, frame: int, ts: float, force: bool = False) -> bool:
        """Deliver the held segments the other direction no longer keeps waiting; True if
        any was. A gate waits no more once WAIT_SECONDS have passed since it began, or
        WAIT_BYTES are held, or the other direction's later bytes came first (it keeps its
        order), or ``force`` (the end): the bytes it waits for are then lost, told at the
        frame whose ACK showed them, and it opens."""
        before = self.delivered
        # self.heap and self.gate read each time: delivering can decide the protocol and
        # hand what is held to new reassemblers (as in _drain)
        while self.heap and self.heap[0] <= self.next_u:
            head = self.heap[0]
            g = self.gate.get(head)
            if g is not None and self._blocked(g):
                peer = self.peer
                if not (force or ts - self.gate_ts > WAIT_SECONDS
                        or self.held_bytes > WAIT_BYTES or peer.heap):  # type: ignore[union-attr]
                    break
                peer._ack(g, self.gate_frame, self.gate_ts)  # type: ignore[union-attr]
                if self._blocked(g):  # the peer cannot get there (its own gates): go on
                    self.gate.pop(head, None)
            delivered = self.delivered
            self._drain()
            if self.delivered == delivered and self.heap and self.heap[0] == head:
                break  # no progress (what was held went to another reassembler)
            if self.heap and self.heap[0] in self.gate:
                self.gate_frame, self.gate_ts = frame, ts  # the next gate's wait begins
        if not self.gate:
            self.gate_next = None
        return self.delivered != before

    def acked(self, ack: int, frame: int, ts: float,
              sender: TcpDirection | None = None) -> bool:
        """The peer acknowledged up to ``ack``: bytes it got that we never saw are a gap.

        A receiver acknowledges only bytes it has, in order (RFC 9293 3.4), so an ACK past
        what the capture delivered means the capture lost them (Zeek's "ack above hole"):
        the hole is declared at once, before the acknowledging side's own bytes are read,
        so that what the lost bytes carried (an A-ASSOCIATE-AC, a request) is known to be
        missing when the peer acts on it. One sequence number past is a FIN, seen or not.
        Held segments: the hole before them is lost once the ACK reaches them, or once
        several wait behind it.

        ``sender``: the direction whose segment carries the ACK. If it acknowledges bytes
        not delivered here (the capture may show them late, or they are held here behind a
        gate of their own), its segment is gated on the ACK (:meth:`resume`), and True is
        returned; nothing is declared lost here then, unless held bytes came after a hole.
        """
        if self.gate:
            self.resume(frame, ts)
        return self._ack(ack, frame, ts, sender)

    def _ack(self, ack: int, frame: int, ts: float, sender: TcpDirection | None = None) -> bool:
        """:meth:`acked` without looking at this direction's own gates first (a gate that
        opens calls it on the other direction: no calling back)."""
        nxt = self.next_seq
        if nxt is None:
            return False
        d = seq_diff(ack, nxt)
        if self.held:
            if self.next_u + d >= self.heap[0] or len(self.held) >= 3:
                self.skip_to_held(frame, ts)
            elif d > 0:
                self._lose(d, frame, ts)
        elif d > 1 and sender is None:
            self._lose(d, frame, ts)
        if sender is not None and seq_diff(ack, self.next_seq) > 1:  # type: ignore[arg-type]
            sender.peer = self
            sender.gate_next = ack
            return True
        return False

    def ended_at(self, seq: int, frame: int, ts: float) -> None:
        """A FIN at ``seq`` (past its payload): bytes between what was delivered and it
        were sent and never captured."""
        nxt = self.next_seq
        if nxt is not None and not self.held:
            d = seq_diff(seq, nxt)
            if 0 < d < RST_WINDOW:
                self._lose(d, frame, ts)

    def _lose(self, missing: int, frame: int, ts: float) -> None:
        """``missing`` bytes from ``next_seq`` on never reached the capture."""
        self.gaps += 1
        self.missing_bytes += missing
        self.next_seq = (self.next_seq + missing) & MASK  # type: ignore[operator]
        self.next_u += missing
        self.sink.gap(missing, frame, ts)

    def flush(self, frame: int, ts: float) -> None:
        """End of stream: deliver everything held, declaring holes as gaps."""
        while self.heap:
            if not self._skip_and_open(frame, ts):
                break

    def _skip_and_open(self, frame: int, ts: float) -> bool:
        """Declare the hole before the earliest held segment lost and deliver from there,
        opening any gate on the way (the end, or too much held); False: no progress (what
        was held went to another reassembler)."""
        before = (len(self.heap), self.next_u)
        self.skip_to_held(frame, ts)
        if self.gate:
            self.resume(frame, ts, force=True)
        return (len(self.heap), self.next_u) != before
