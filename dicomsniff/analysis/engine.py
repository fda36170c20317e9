"""The analysis loop: frames in, associations, transactions and findings out.

``Analyzer.feed_frame`` is the per-packet hot path. It decodes headers with
:mod:`dissectors.net`, finds the connection with one dict lookup on the flow key, and hands the
payload to that direction's TCP reassembler, whose sink is the upper-layer parser. A connection
that does not look like DICOM is remembered as ignored after one look and costs one dict lookup
per packet from then on.

Named hooks, mitmproxy style, let features attach without touching the loop:
``on_association_start`` (negotiation answered: A-ASSOCIATE-AC or -RJ seen), ``on_transaction``
(a request got its final response, or its association ended without one), ``on_finding`` and
``on_association`` (the association is over; unless ``keep`` is False it is also kept in
``self.associations``). Memory is bounded by open connections
(``max_streams``, oldest evicted) and caps on ignored flows and findings, not by capture size.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterable

from dissectors._plain import Record
from dissectors.net import (
    ETH_IPV4,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    format_endpoint,
    key_ports,
    l3_offset,
    reverse_key,
    tcp_segment,
)
from dissectors.tcp import DEFAULT_MAX_BUFFER, TcpDirection
from dissectors.ul.stream import PDV_DATA, ULStream, plausible_pdu

from ..model import Association, Finding, Transaction
from .moves import MoveLinker
from .rules import RuleConfig, RuleSet, tcp_window
from .tracker import AssociationTracker

# Ethernet type, IPv4 version/IHL, total length, flags/fragment, protocol, then addresses and
# ports as one 12-byte flow key, TCP seq, ack, data offset, flags, window: one unpack per packet
# for the fast path in Analyzer.consume (IPv4 without options on Ethernet, the common capture).
_FAST = struct.Struct("!12xHBxH2xHxB2x12sIIBBH")

WELL_KNOWN_PORTS = frozenset({104, 11112, 4242, 2761, 2762})
_IGNORED = object()


class Limits(Record):
    """Caps that keep memory bounded whatever the capture holds (documented in docs/limits.md)."""

    _fields = (
        "max_streams",
        "max_ignored",
        "max_findings",
        "max_tcp_buffer",
        "max_associate_pdu",
        "detect_budget",
    )
    max_streams: int
    max_ignored: int
    max_findings: int
    max_tcp_buffer: int
    max_associate_pdu: int
    detect_budget: int

    def __init__(
        self,
        max_streams: int = 10_000,
        max_ignored: int = 200_000,
        max_findings: int = 100_000,
        max_tcp_buffer: int = DEFAULT_MAX_BUFFER,
        max_associate_pdu: int = 1 << 20,
        detect_budget: int = 256 * 1024,
    ) -> None:
        self.max_streams = max_streams
        self.max_ignored = max_ignored
        self.max_findings = max_findings
        self.max_tcp_buffer = max_tcp_buffer
        self.max_associate_pdu = max_associate_pdu
        self.detect_budget = detect_budget


class Stats(Record):
    _fields = (
        "frames",
        "tcp_segments",
        "dicom_frames",
        "connections",
        "ignored_connections",
        "evicted",
        "findings",
        "findings_dropped",
        "bytes",
        "first_ts",
        "last_ts",
        "by_severity",
    )
    frames: int
    tcp_segments: int
    dicom_frames: int
    connections: int
    ignored_connections: int
    evicted: int
    findings: int
    findings_dropped: int
    bytes: int
    first_ts: float | None
    last_ts: float | None
    by_severity: dict[str, int]

    def __init__(
        self,
        frames: int = 0,
        tcp_segments: int = 0,
        dicom_frames: int = 0,
        connections: int = 0,
        ignored_connections: int = 0,
        evicted: int = 0,
        findings: int = 0,
        findings_dropped: int = 0,
        bytes: int = 0,
        first_ts: float | None = None,
        last_ts: float | None = None,
        by_severity: dict[str, int] | None = None,
    ) -> None:
        self.frames = frames
        self.tcp_segments = tcp_segments
        self.dicom_frames = dicom_frames
        self.connections = connections
        self.ignored_connections = ignored_connections
        self.evicted = evicted
        self.findings = findings
        self.findings_dropped = findings_dropped
        self.bytes = bytes
        self.first_ts = first_ts
        self.last_ts = last_ts
        self.by_severity = (lambda: {
        "error": 0, "warning": 0, "info": 0})() if by_severity is None else by_severity


class _Sniffer:
    """TCP sink for a connection that started with SYN: one look at the first client bytes."""

    __slots__ = ("conn", "side", "analyzer", "buf")

    def __init__(self, conn: Connection, side: int, analyzer: Analyzer) -> None:
        self.conn = conn
        self.side = side
        self.analyzer = analyzer
        self.buf = bytearray()

    def feed(self, data, frame: int, ts: float) -> None:
        if self.conn.dicom is not None:  # decided while this segment was on its way
            if self.conn.dicom and self.conn.ul is not None:
                self.conn.ul[self.side].feed(data, frame, ts)
            return
        self.buf += data
        if len(self.buf) < 10 and not self.conn.forced:
            return
        self.analyzer._decide(self.conn, self.side, bytes(self.buf), frame, ts)

    def gap(self, missing: int, frame: int, ts: float) -> None:
        if self.conn.dicom is not None:
            if self.conn.dicom and self.conn.ul is not None:
                self.conn.ul[self.side].gap(missing, frame, ts)
            return
        self.analyzer._decide(self.conn, self.side, bytes(self.buf), frame, ts, gap=missing)


class Connection:
    """A TCP connection: two reassemblers, two upper-layer parsers, one association."""

    __slots__ = ("keys", "tcp", "ul", "tracker", "dicom", "forced", "fin", "last_ts",
                 "last_frame", "syn_seen", "budget", "isn")

    def __init__(self, client_key: bytes, forced: bool) -> None:
        self.keys = (client_key, reverse_key(client_key))
        self.tcp: tuple[TcpDirection, TcpDirection] | None = None
        self.ul: tuple[ULStream, ULStream] | None = None
        self.tracker: AssociationTracker | None = None
        self.dicom: bool | None = None
        self.forced = forced
        self.fin = [False, False]
        self.last_ts = 0.0
        self.last_frame = 0
        self.syn_seen = False
        self.budget = 0
        self.isn: int | None = None


class Analyzer:
    """Feed frames; get associations. The same object serves files, live capture and tests."""

    def __init__(self, *, ports: Iterable[int] = (), limits: Limits | None = None,
                 keep: bool = True, want_dataset: Callable | None = None,
                 pdu_events: bool = False, rules: RuleConfig | None = None) -> None:
        """``want_dataset(association, side, message)``, if given, is asked for every message
        that announces a data set and may return a DatasetSink (see dissectors.dimse.assembler)
        to receive its bytes: exports use it; plain analysis never touches data set bytes."""
        self.want_dataset = want_dataset
        # Upper-layer events as they pass to the trackers, for views that need every PDU
        # (diagrams at PDU level): on_ul_events(association, side, events). With pdu_events the
        # parsers also report each P-DATA-TF header (the analysis itself only counts them).
        self.pdu_events = pdu_events
        self.on_ul_events: list[Callable[[Association, int, list], None]] = []
        self.ports = frozenset(ports)
        self.limits = limits or Limits()
        self.keep = keep
        self.flows: dict[bytes, object] = {}  # flow key -> (Connection, side) or _IGNORED
        self.open: dict[Connection, None] = {}  # insertion-ordered: oldest first
        self.associations: list[Association] = []
        self.findings: list[Finding] = []  # capture-level and association findings
        self.stats = Stats()
        self.on_association: list[Callable[[Association], None]] = []
        self.on_finding: list[Callable[[Finding], None]] = []
        self.on_transaction: list[Callable[[Transaction], None]] = []
        self.on_association_start: list[Callable[[Association], None]] = []
        self._next_assoc = 1
        self._next_txn = 0
        self._ignored_count = 0
        self.linktypes: set[int] = set()
        # Findings rules (analysis/rules): run as each association ends and at the end.
        self.rules = RuleSet(rules).attach(self)
        MoveLinker().attach(self)  # C-MOVE <-> sub-association links on the model

    # -- ids and findings -----------------------------------------------------------------
    def _txn_seq(self) -> int:
        self._next_txn += 1
        return self._next_txn

    def _emit(self, f: Finding) -> None:
        st = self.stats
        st.findings += 1
        st.by_severity[f.severity] = st.by_severity.get(f.severity, 0) + 1
        if len(self.findings) < self.limits.max_findings:
            self.findings.append(f)
        else:
            st.findings_dropped += 1
        for cb in self.on_finding:
            cb(f)

    def capture_finding(self, severity: str, code: str, message: str, frame: int | None,
                        section: str | None = None) -> None:
        """A finding that belongs to no association (file damage, caps)."""
        self._emit(Finding(severity, code, message, frame, None, section))

    # -- the hot path ---------------------------------------------------------------------
    def consume(self, packets, frame: int = 0, progress=None, every: int = 1 << 14) -> int:
        """Feed ``(ts, linktype, data, orig_len)`` tuples; returns the last frame number.

        The common case, an in-order IPv4 TCP segment on Ethernet carrying data set bytes that
        the parser only counts, is handled inline here: no call, no copy. Everything else goes
        through :meth:`feed_frame`.
        """
        flows_get = self.flows.get
        unpack = _FAST.unpack_from
        feed_frame = self.feed_frame
        ignored = _IGNORED
        pdv_data = PDV_DATA
        st = self.stats
        mask = every - 1 if progress is not None else -1  # every: a power of two
        ts = None
        for ts, linktype, buf, _olen in packets:
            frame += 1
            if not frame & mask:
                progress(frame)  # type: ignore[misc]
            if linktype == 1 and len(buf) >= 54:
                (etype, vihl, total, frag, proto, key, seq, ack, doff, flags,
                 window) = unpack(buf, 0)
                if etype != 0x0800 or vihl != 0x45 or proto != 6:
                    feed_frame(frame, ts, linktype, buf)
                    continue
                entry = flows_get(key)
                if (entry is None or entry is ignored or frag & 0x3FFF
                        or flags & 0x07 or total + 14 > len(buf)):
                    if entry is not ignored or flags & 0x02:
                        feed_frame(frame, ts, linktype, buf)
                    continue
                conn, side = entry
                conn.last_ts = ts
                conn.last_frame = frame
                tcp = conn.tcp
                if tcp is None:
                    continue
                n = total - 20 - (doff >> 4) * 4
                if n > 0:
                    d = tcp[side]
                    ul = d.sink
                    if seq == d.next_seq and not d.held and type(ul) is ULStream:
                        # In order, nothing held: deliver straight to the parser.
                        d.next_seq = (seq + n) & 0xFFFFFFFF
                        d.delivered += n
                        ul.bytes_in += n
                        if ul.state == pdv_data and n < ul._pdv_left and not ul.collecting:
                            ul._pdv_left -= n  # data set bytes: counted, not touched
                            ul._pdu_left -= n
                            ul.data_bytes += n
                        else:
                            start = 34 + (doff >> 4) * 4
                            ul._feed(buf[start:start + n], frame, ts)
                            if ul.events:
                                self._drain(conn, side)
                            if conn.dicom is None:
                                self._judge_midstream(conn, side)
                                if conn.tcp is None:
                                    continue
                    else:
                        start = 34 + (doff >> 4) * 4
                        d.segment(seq, buf[start:start + n], frame, ts)
                        uls = conn.ul
                        if uls is not None and uls[side].events:
                            self._drain(conn, side)
                        if conn.dicom is None:
                            self._judge_midstream(conn, side)
                            if conn.tcp is None:
                                continue
                if not window and conn.tracker is not None:  # receiver says: stop sending
                    self.rules.zero_window(conn, side, frame)
                if flags & 0x10:
                    o = tcp[1 - side]
                    if o.held:
                        o.acked(ack, frame, ts)
                        if conn.ul is not None and conn.ul[1 - side].events:
                            self._drain(conn, 1 - side)
                continue
            feed_frame(frame, ts, linktype, buf)
        st.frames = frame
        if ts is not None:
            st.last_ts = ts
        return frame

    def feed_frame(self, frame: int, ts: float, linktype: int, buf) -> None:
        """One captured frame (1-based number, seconds, pcap link type, bytes)."""
        if self.stats.first_ts is None:
            self.stats.first_ts = ts
        if linktype not in self.linktypes:
            self.linktypes.add(linktype)
        if linktype == 1 and len(buf) > 14 and buf[12] == 8 and buf[13] == 0:
            etype, off = ETH_IPV4, 14
        else:
            etype, off = l3_offset(linktype, buf)
            if off < 0:
                return
        seg = tcp_segment(buf, etype, off)
        if seg is None:
            return
        key, seq, ack, flags, ps, pe, wire_len = seg
        entry = self.flows.get(key)
        if entry is _IGNORED:
            if flags & TCP_SYN and not flags & TCP_ACK:
                self._forget(key)
                entry = None
            else:
                return
        if entry is None:
            entry = self._new_flow(key, flags, buf, ps, pe, frame, ts)
            if entry is None:
                return
        conn, side = entry  # type: ignore[misc]
        conn.last_ts = ts
        conn.last_frame = frame
        if (conn.tracker is not None and not flags & (TCP_SYN | TCP_RST)
                and tcp_window(buf, etype, off) == 0):  # slow path only: rules/transport.py
            self.rules.zero_window(conn, side, frame)
        if flags & (TCP_SYN | TCP_FIN | TCP_RST):
            if not self._flags(conn, side, flags, seq, frame, ts, key, buf, ps, pe):
                return
        tcp = conn.tcp
        if tcp is None:
            return
        d = tcp[side]
        if pe > ps or wire_len:
            d.segment(seq, buf[ps:pe], frame, ts)
            if wire_len > pe - ps:  # snaplen cut the payload: the rest never reached us
                self._snap_gap(d, seq, pe - ps, wire_len, frame, ts)
            if conn.dicom is None:
                self._judge_midstream(conn, side)
                if conn.tcp is None:
                    return
            ul = conn.ul
            if ul is not None and ul[side].events:
                self._drain(conn, side)
        if flags & TCP_ACK:
            o = tcp[1 - side]
            if o.held:
                o.acked(ack, frame, ts)
                if conn.ul is not None and conn.ul[1 - side].events:
                    self._drain(conn, 1 - side)
        if flags & TCP_FIN and conn.fin[0] and conn.fin[1]:
            self._close(conn, "fin", frame, ts)

    @staticmethod
    def _snap_gap(d: TcpDirection, seq: int, got: int, wire_len: int, frame: int,
                  ts: float) -> None:
        if d.next_seq == (seq + got) & 0xFFFFFFFF:
            d.next_seq = (seq + wire_len) & 0xFFFFFFFF
            d.gaps += 1
            d.missing_bytes += wire_len - got
            d.sink.gap(wire_len - got, frame, ts)

    def _judge_midstream(self, conn: Connection, side: int) -> None:
        """A connection picked up mid-stream is DICOM once a parser finds a PDU boundary."""
        ul = conn.ul
        if ul is None:
            return
        if ul[0].synced or ul[1].synced:
            conn.dicom = True  # its findings wait until a whole PDU proves it (tracker)
        elif ul[0].bytes_in + ul[1].bytes_in > conn.budget:
            conn.dicom = False
            conn.tcp = None
            conn.ul = None
            self._ignore(conn, conn.keys[0])

    def _drain(self, conn: Connection, side: int) -> None:
        evs = conn.ul[side].events  # type: ignore[index]
        conn.ul[side].events = []  # type: ignore[index]
        self.stats.dicom_frames += 1
        conn.tracker.on_events(side, evs)  # type: ignore[union-attr]
        if self.on_ul_events:
            for cb in self.on_ul_events:
                cb(conn.tracker.assoc, side, evs)  # type: ignore[union-attr]

    # -- connection life ------------------------------------------------------------------
    def _forget(self, key: bytes) -> None:
        self.flows.pop(key, None)
        self.flows.pop(reverse_key(key), None)

    def _ignore(self, conn: Connection | None, key: bytes) -> None:
        if self._ignored_count >= self.limits.max_ignored:
            # Forget every ignored flow at once: cheap, bounded, and they are re-judged.
            self.flows = {k: v for k, v in self.flows.items() if v is not _IGNORED}
            self._ignored_count = 0
        keys = conn.keys if conn is not None else (key, reverse_key(key))
        for k in keys:
            self.flows[k] = _IGNORED
        self._ignored_count += 2
        self.stats.ignored_connections += 1
        if conn is not None:
            self.open.pop(conn, None)

    def _is_forced(self, key: bytes) -> bool:
        if not self.ports:
            return False
        sp, dp = key_ports(key)
        return sp in self.ports or dp in self.ports

    def _new_flow(self, key: bytes, flags: int, buf, ps: int, pe: int, frame: int,
                  ts: float):
        forced = self._is_forced(key)
        if flags & TCP_SYN:
            client_key = key if not flags & TCP_ACK else reverse_key(key)
            conn = Connection(client_key, forced)
            conn.syn_seen = True
            self._register(conn)
            conn.tcp = (TcpDirection(_Sniffer(conn, 0, self), self.limits.max_tcp_buffer),
                        TcpDirection(_Sniffer(conn, 1, self), self.limits.max_tcp_buffer))
            return self.flows[key]
        if pe <= ps:
            return None  # a bare ACK of a flow we never saw: nothing to judge it by
        head = buf[ps:pe]
        plausible = plausible_pdu(head, 0)
        sp, dp = key_ports(key)
        if head[0] == 1 and plausible:
            client_key = key
        elif head[0] == 2 or head[0] == 3:
            client_key = reverse_key(key)
        elif (dp in self.ports or dp in WELL_KNOWN_PORTS) and sp not in WELL_KNOWN_PORTS:
            client_key = key
        elif sp in self.ports or sp in WELL_KNOWN_PORTS:
            client_key = reverse_key(key)
        else:
            client_key = key if dp < sp else reverse_key(key)
        conn = Connection(client_key, forced)
        self._register(conn)
        self._start_dicom(conn, synced=False, frame=frame, ts=ts, midstream=True)
        conn.dicom = True if forced else None
        conn.budget = self.limits.detect_budget
        return self.flows[key]

    def _register(self, conn: Connection) -> None:
        self.flows[conn.keys[0]] = (conn, 0)
        self.flows[conn.keys[1]] = (conn, 1)
        self.open[conn] = None
        if len(self.open) > self.limits.max_streams:
            oldest = next(iter(self.open))
            self.stats.evicted += 1
            if self.stats.evicted == 1:  # one finding; the summary counts every eviction
                self.capture_finding("warning", "CAP-STREAMS",
                                     f"more than {self.limits.max_streams} connections open at "
                                     "once: the oldest are evicted and their analysis ends there "
                                     "(raise --max-streams; the summary counts evictions)",
                                     oldest.last_frame or None)
            self._close(oldest, "eof", oldest.last_frame, oldest.last_ts)

    def _start_dicom(self, conn: Connection, *, synced: bool, frame: int, ts: float,
                     midstream: bool) -> None:
        lim = self.limits
        conn.ul = (ULStream(synced=synced, max_associate_pdu=lim.max_associate_pdu,
                            pdata_events=self.pdu_events),
                   ULStream(synced=synced, max_associate_pdu=lim.max_associate_pdu,
                            pdata_events=self.pdu_events))
        old = conn.tcp
        conn.tcp = (TcpDirection(conn.ul[0], lim.max_tcp_buffer),
                    TcpDirection(conn.ul[1], lim.max_tcp_buffer))
        if old is not None:
            for i in (0, 1):
                new, prev = conn.tcp[i], old[i]
                new.next_seq, new.next_u = prev.next_seq, prev.next_u
                new.held, new.heap, new.held_bytes = prev.held, prev.heap, prev.held_bytes
                prev.held, prev.heap, prev.held_bytes = {}, [], 0
        a = Association(self._next_assoc, format_endpoint(conn.keys[0], 0),
                        format_endpoint(conn.keys[0], 1))
        self._next_assoc += 1
        a.first_frame = frame
        a.start = ts
        a.midstream = midstream
        conn.tracker = AssociationTracker(a, self._emit, self._txn_seq, self.on_transaction,
                                          self.on_association_start)
        conn.tracker.ul = conn.ul
        self.rules.connection_started(conn)
        if midstream and not conn.forced:  # --port: the user says it is DICOM
            conn.tracker.hold_findings()  # until a whole PDU proves it is DICOM
        if self.want_dataset is not None:
            for side in (0, 1):
                conn.ul[side].collect_data = True
                conn.tracker.asm[side].want_dataset = functools.partial(self.want_dataset, a,
                                                                        side)
        self.stats.connections += 1

    def _decide(self, conn: Connection, side: int, head: bytes, frame: int, ts: float,
                gap: int = 0) -> None:
        """First bytes of a connection seen from its SYN: DICOM or not?"""
        if conn.dicom is not None:
            return
        # The requestor speaks first with an A-ASSOCIATE-RQ. Reordering in the capture may show
        # the acceptor's answer first: an A-ASSOCIATE-AC/RJ from the acceptor counts too.
        ok = (len(head) >= 10 and head[0] == (1 if side == 0 else 2 if head[0] == 2 else 3)
              and plausible_pdu(head, 0) is True)
        if not ok and len(head) >= 8 and head[0] in (1, 2) and head[1] == 0 and (
                head[6:8] == b"\x00\x01"):
            # An A-ASSOCIATE with a broken length but the right protocol version: a DICOM peer
            # gone wrong, which deserves findings, not silence.
            ok = True
        if not ok and not conn.forced:
            conn.dicom = False
            conn.tcp = None
            self._ignore(conn, conn.keys[0])
            return
        conn.dicom = True
        self._start_dicom(conn, synced=True, frame=frame, ts=ts, midstream=False)
        assert conn.ul is not None
        # The sniffer's reassembler already advanced past these bytes: replay them.
        conn.ul[side].feed(head, frame, ts)
        if gap:
            conn.ul[side].gap(gap, frame, ts)

    def _flags(self, conn: Connection, side: int, flags: int, seq: int, frame: int,
               ts: float, key: bytes, buf, ps: int, pe: int) -> bool:
        """SYN/FIN/RST bookkeeping. Returns False when the packet should go no further."""
        if flags & (TCP_RST | TCP_FIN):
            self.rules.tcp_end(conn, side, flags, frame, ts)  # who ended it; refused SYNs
        if flags & TCP_RST:
            if conn.tcp is not None and pe > ps:
                conn.tcp[side].segment(seq, buf[ps:pe], frame, ts)
            self._close(conn, "rst", frame, ts)
            return False
        if flags & TCP_SYN:
            if conn.tcp is None:
                return False
            d = conn.tcp[side]
            isn = (seq + 1) & 0xFFFFFFFF
            if conn.dicom is not None and d.next_seq is not None and d.next_seq != isn and (
                    d.delivered or conn.fin[side]):
                # Port reuse: the same four-tuple starts a new connection.
                self._close(conn, "fin" if any(conn.fin) else "eof", frame, ts)
                self._forget(key)
                entry = self._new_flow(key, flags, buf, ps, pe, frame, ts)
                if entry is not None:
                    nconn, nside = entry
                    nconn.tcp[nside].syn(seq)
                return False
            d.syn(seq)
            conn.syn_seen = True
            return True
        if flags & TCP_FIN:
            conn.fin[side] = True
            if conn.tcp is not None and pe > ps:
                conn.tcp[side].segment(seq, buf[ps:pe], frame, ts)
                if conn.ul is not None and conn.ul[side].events:
                    self._drain(conn, side)
            if conn.fin[0] and conn.fin[1]:
                self._close(conn, "fin", frame, ts)
            return False
        return True

    def _close(self, conn: Connection, how: str, frame: int, ts: float) -> None:
        """Finish a connection: flush reassembly, end the association, hand it out."""
        if conn not in self.open:
            return
        del self.open[conn]
        for k in conn.keys:
            if self.flows.get(k, (None,))[0] is conn:  # type: ignore[index]
                del self.flows[k]
        if conn.tracker is None or conn.tcp is None or conn.ul is None:
            return
        for side in (0, 1):
            conn.tcp[side].flush(frame, ts)
            conn.ul[side].close(frame, ts)
            if conn.ul[side].events:
                self._drain(conn, side)
        self._transport_findings(conn, frame)
        t = conn.tracker
        t.finish(how, frame, ts)
        a = t.assoc
        if conn.dicom is None or (a.midstream and not conn.forced and not t.proven):
            self.stats.connections -= 1
            return  # never found a DICOM PDU: it was not DICOM after all; its findings go too
        t.release_findings()
        a.bytes = {"requestor": conn.ul[0].bytes_in, "acceptor": conn.ul[1].bytes_in}
        if a.last_frame is None or a.last_frame < conn.last_frame:
            a.last_frame = conn.last_frame
        self.rules.association_closed(conn, how)  # rule findings join the association first
        if self.keep:
            self.associations.append(a)
        for cb in self.on_association:
            cb(a)

    def _transport_findings(self, conn: Connection, frame: int) -> None:
        t = conn.tracker
        assert t is not None and conn.tcp is not None
        for side, d in enumerate(conn.tcp):
            name = ("requestor", "acceptor")[side]
            if d.conflicts:
                t.finding("warning", "TCP-OVERLAP-CONFLICT",
                          f"{name}: {d.conflicts} retransmitted segment(s) carried different "
                          "bytes than the first copy (the first copy was used)", frame, None)
            if d.buffer_overflows:
                t.finding("warning", "CAP-TCP-BUFFER",
                          f"{name}: out-of-order data exceeded the {self.limits.max_tcp_buffer}"
                          "-byte reassembly buffer; the hole was declared a gap "
                          "(raise --max-tcp-buffer)", frame, None)

    def finish(self) -> None:
        """End of capture: every open connection ends as it is."""
        for conn in list(self.open):
            self._close(conn, "eof", conn.last_frame, conn.last_ts)
        self.associations.sort(key=lambda a: (a.first_frame or 0))
        self.rules.finish()  # capture-wide rules (MPPS, commitment, refused connections)

