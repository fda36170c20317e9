"""The flow table: TCP connections by flow key, their eviction, and the first look at them.

A flow key is the 12 (IPv4) or 36 (IPv6) bytes of source address, destination address, source
port and destination port, sliced from the packet without a copy of anything else. Each
connection is in the table under both its keys (one per direction) with the side that key is
(0: the client, which opened it or sent the first request). A connection no analyzer wants is
remembered as ignored (one dict lookup per packet from then on); ignored keys are capped
(``max_ignored``: all forgotten at once, then judged again) and open connections too
(``max_streams``: the oldest is evicted).

:class:`DetectSink` is what a connection whose SYN was seen delivers to until its first bytes
say which protocol it speaks (see :mod:`.dispatch`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from dissectors.net import key_ports, reverse_key
from dissectors.tcp import TcpDirection

IGNORED = object()  # the table's value for the keys of an ignored connection


class Connection:
    """A TCP connection: two reassemblers and, once detected, the analyzer its bytes go to.

    ``verdict``: None while nobody knows what it speaks, True once an analyzer owns it, False
    when it was judged not worth analysing. ``app``: its :class:`~.dispatch.FlowAnalyzer`.
    """

    __slots__ = ("keys", "tcp", "app", "verdict", "forced", "fin", "last_ts", "last_frame",
                 "syn_seen")

    def __init__(self, client_key: bytes, forced: bool) -> None:
        self.keys = (client_key, reverse_key(client_key))
        self.tcp: tuple[TcpDirection, TcpDirection] | None = None
        self.app: Any = None
        self.verdict: bool | None = None
        self.forced = forced
        self.fin = [False, False]
        self.last_ts = 0.0
        self.last_frame = 0
        self.syn_seen = False

    def attach(self, app: Any, max_buffer: int, pinned: set | None = None) -> None:
        """Hand the connection to ``app``: the reassemblers now deliver to its sinks, keeping
        what they hold and where they are (``pinned``: see ``dissectors.tcp.release_views``)."""
        old = self.tcp
        self.app = app
        self.tcp = (TcpDirection(app.sinks[0], max_buffer, pinned),
                    TcpDirection(app.sinks[1], max_buffer, pinned))
        if old is not None:
            for new, prev in zip(self.tcp, old, strict=True):
                new.take_over(prev)
            for i, (new, prev) in enumerate(zip(self.tcp, old, strict=True)):
                # segments gated on the other side's bytes: on its new reassembler
                new.gate, new.gate_next = prev.gate, prev.gate_next
                new.gate_frame, new.gate_ts = prev.gate_frame, prev.gate_ts
                new.peer = self.tcp[1 - i] if prev.peer is not None else None
                prev.gate, prev.gate_next = {}, None


# Bytes of a side whose first bytes the capture lost, kept while the other side's first bytes
# decide the protocol (an A-ASSOCIATE-RQ is rarely longer; the A-ASSOCIATE-AC comes after it).
LOST_HEAD_BYTES = 64 << 10


class DetectSink:
    """TCP sink of one side of a connection that started with SYN, until a protocol claims
    its first bytes: buffers them and asks ``decide(conn, side, head, frame, ts, gap)``."""

    __slots__ = ("conn", "side", "decide", "buf", "lost", "lost_frame", "lost_ts", "after",
                 "after_bytes")

    def __init__(self, conn: Connection, side: int, decide: Any) -> None:
        self.conn = conn
        self.side = side
        self.decide = decide
        self.buf = bytearray()
        # bytes lost before this side's first captured byte (the peer acknowledged them):
        # nothing to judge by yet, so they wait for a decision from either side
        self.lost = 0
        self.lost_frame = 0
        self.lost_ts = 0.0
        # then what came after, in order: ("feed", bytes, frame, ts) or ("gap", n, frame, ts)
        self.after: list[tuple] = []
        self.after_bytes = 0

    def replay(self, app: Any) -> None:
        """The other side decided: hand ``app`` what this side lost and buffered so far."""
        if self.lost:
            app.gap(self.side, self.lost, self.lost_frame, self.lost_ts)
            self.lost = 0
            for kind, x, frame, ts in self.after:  # what came after the loss
                (app.feed if kind == "feed" else app.gap)(self.side, x, frame, ts)
            self.after = []

    def feed(self, data, frame: int, ts: float) -> None:
        conn = self.conn
        if conn.verdict is not None:  # decided while this segment was on its way
            if conn.verdict and conn.app is not None:
                conn.app.feed(self.side, data, frame, ts)
            return
        if self.lost:
            # Its beginning was lost (an A-ASSOCIATE-RQ cut, say): what follows cannot show
            # the protocol; the other side's first bytes will (replay). Bounded: past
            # LOST_HEAD_BYTES this side is judged by what it has.
            self.after.append(("feed", bytes(data), frame, ts))
            self.after_bytes += len(data)
            if self.after_bytes < LOST_HEAD_BYTES:
                return
            head = b"".join(x for kind, x, _f, _t in self.after if kind == "feed")
            self.decide(conn, self.side, head, frame, ts, self.lost)
            return
        self.buf += data
        self.decide(conn, self.side, bytes(self.buf), frame, ts, 0)

    def gap(self, missing: int, frame: int, ts: float) -> None:
        conn = self.conn
        if conn.verdict is not None:
            if conn.verdict and conn.app is not None:
                conn.app.gap(self.side, missing, frame, ts)
            return
        if self.lost:
            self.after.append(("gap", missing, frame, ts))
            return
        if not self.buf:  # lost before anything of this side was seen: wait for the other
            self.lost_frame, self.lost_ts = frame, ts
            self.lost = missing
            return
        self.decide(conn, self.side, bytes(self.buf), frame, ts, missing)


class FlowTable:
    """Flow key -> (Connection, side) or IGNORED; open connections oldest first."""

    __slots__ = ("flows", "open", "ports", "max_streams", "max_ignored", "_ignored_keys",
                 "ignored_connections")

    def __init__(self, ports: frozenset[int], max_streams: int, max_ignored: int) -> None:
        self.flows: dict[bytes, Any] = {}
        # Oldest first. An OrderedDict, not a dict: a dict's first key after many deletions
        # from the front is found by walking the dead slots (O(n) per eviction: 12.9 s
        # instead of 7.2 s at 100k streams); the OrderedDict's linked list gives it in O(1).
        self.open: OrderedDict[Connection, None] = OrderedDict()
        self.ports = ports  # --port: connections on these are analysed as DICOM
        self.max_streams = max_streams
        self.max_ignored = max_ignored
        self._ignored_keys = 0
        self.ignored_connections = 0

    def is_forced(self, key: bytes) -> bool:
        if not self.ports:
            return False
        sp, dp = key_ports(key)
        return sp in self.ports or dp in self.ports

    def register(self, conn: Connection) -> Connection | None:
        """Add ``conn``; returns the oldest open connection when there are now too many (the
        caller closes it: it stays in the table until then)."""
        self.flows[conn.keys[0]] = (conn, 0)
        self.flows[conn.keys[1]] = (conn, 1)
        self.open[conn] = None
        if len(self.open) > self.max_streams:
            return next(iter(self.open))
        return None

    def ignore(self, conn: Connection | None, key: bytes) -> None:
        """From now on both directions of this connection (or of ``key``) cost one lookup."""
        flows = self.flows
        if self._ignored_keys >= self.max_ignored:
            # Forget every ignored flow at once: cheap, bounded, and they are judged again.
            # In place: the packet loop holds this dict's ``get``.
            for k in [k for k, v in flows.items() if v is IGNORED]:
                del flows[k]
            self._ignored_keys = 0
        keys = conn.keys if conn is not None else (key, reverse_key(key))
        for k in keys:
            flows[k] = IGNORED
        self._ignored_keys += 2
        self.ignored_connections += 1
        if conn is not None:
            self.open.pop(conn, None)

    def forget(self, key: bytes) -> None:
        """Both directions of ``key`` are unknown again (port reuse, a SYN on an ignored
        flow)."""
        self.flows.pop(key, None)
        self.flows.pop(reverse_key(key), None)

    def remove(self, conn: Connection) -> bool:
        """Take a closing connection out; False if it was not open."""
        if conn not in self.open:
            return False
        del self.open[conn]
        flows = self.flows
        for k in conn.keys:
            entry = flows.get(k)
            if entry is not None and entry is not IGNORED and entry[0] is conn:
                del flows[k]
        return True
