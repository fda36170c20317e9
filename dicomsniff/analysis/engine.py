"""The analysis loop: frames in, associations, transactions and findings out.

``Analyzer.consume`` (and ``feed_frame`` for whatever it does not handle inline) is the
per-packet hot path. It decodes headers with :mod:`dissectors.net`, finds the connection in
the flow table (:mod:`.flows`) with one dict lookup on the flow key, and hands the payload to
that direction's TCP reassembler, whose sink belongs to the connection's protocol analyzer,
chosen by detection from the dispatch table (:mod:`.dispatch`; DICOM: :mod:`.dicom`). A
connection no analyzer wants is remembered as ignored after one look and costs one dict lookup
per packet from then on.

Named hooks, mitmproxy style, let features attach without touching the loop; each carries the
objects it is about: ``on_association_start(association)`` (negotiation answered:
A-ASSOCIATE-AC or -RJ; for an association picked up mid-stream, its first DIMSE command or data
set), ``on_transaction(association, transaction)`` (a request got its final response, or its
association ended without one), ``on_finding(finding)`` and ``on_association(association)``
(it is over; unless ``keep`` is False it is also kept in ``self.associations``). Data set bytes
go to whoever asked with :meth:`Analyzer.collect` (:mod:`.collect`). Memory is bounded by open
connections (``max_streams``, oldest evicted) and caps on ignored flows and findings, not by
capture size.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

from dissectors._plain import Factory, Record
from dissectors.net import (
    ETH_IPV4,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    Fragments,
    key_ports,
    l3_offset,
    reverse_key,
    tcp_segment,
)
from dissectors.tcp import DEFAULT_MAX_BUFFER, RECENT, TcpDirection, release_views, settle
from dissectors.ul.events import DataComplete, PdvCommand, PdvData
from dissectors.ul.stream import ULStream

from ..model import Association, Finding, Transaction
from . import accel, dispatch
from .collect import CollectionPolicy
from .dicom import WELL_KNOWN_PORTS
from .flows import IGNORED, Connection, DetectSink, FlowTable
from .http import HTTP as _HTTP  # noqa: F401  registers "http" in the dispatch table
from .loss import Truncation
from .moves import MoveLinker
from .rules import RuleConfig, RuleSet
from .tlsport import PlainToTLSPort
from .tracker import MAX_KEPT, MAX_OUTSTANDING, MAX_RESPONSE_FRAMES

# Ethernet type, IPv4 version/IHL, total length, flags/fragment, protocol, then addresses and
# ports as one 12-byte flow key, TCP seq, ack, data offset, flags, window: one unpack per packet
# for the fast path in Analyzer.consume (IPv4 without options on Ethernet, the common capture).
_FAST = struct.Struct("!12xHBxH2xHxB2x12sIIBBH")
# frames between two looks at whether the reader left its chunk (dissectors.tcp.release_views;
# a power of two): the references kept for overlap checks pin at most the chunks these hold
RELEASE_EVERY = 32
# A bulk run is handed to the compiled walker (accel.py) only while more than a full Ethernet
# segment of the PDV is left to count: a walk that stops at once costs about 2 us, which
# small data sets (a C-FIND identifier in one segment) would pay each.
RUN_MIN = 1460
# the events the walker of small-message runs makes (dissectors/_small.c)
_EVENTS = (PdvCommand, PdvData, DataComplete)

__all__ = ["WELL_KNOWN_PORTS", "Analyzer", "Connection", "Limits", "Stats"]


class Limits(Record):
    """Caps that keep memory bounded whatever the capture holds (documented in docs/limits.md)."""

    max_streams: int = 10000
    max_ignored: int = 200000
    max_findings: int = 100000
    max_tcp_buffer: int = DEFAULT_MAX_BUFFER
    max_associate_pdu: int = 1 << 20
    detect_budget: int = 256 * 1024
    # per association (tracker.py): transactions kept before reported ones are retired,
    # requests followed at once, response frames listed per transaction
    max_transactions: int = MAX_KEPT
    max_outstanding: int = MAX_OUTSTANDING
    max_response_frames: int = MAX_RESPONSE_FRAMES


class Stats(Record):
    frames: int = 0
    tcp_segments: int = 0
    dicom_frames: int = 0
    connections: int = 0
    ignored_connections: int = 0
    evicted: int = 0
    findings: int = 0
    findings_dropped: int = 0
    bytes: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    by_severity: dict[str, int] = Factory(lambda: {"error": 0, "warning": 0, "info": 0})


class _WantDataset(CollectionPolicy):
    """``Analyzer(want_dataset=...)``: every data set, to the sink the function gives."""

    def __init__(self, func: Callable) -> None:
        self.func = func

    def contexts(self, association: Association, side: int) -> bool:
        return True

    def dataset(self, association: Association, side: int, message: Any) -> Any:
        return self.func(association, side, message)


class Analyzer:
    """Feed frames; get associations. The same object serves files, live capture and tests."""

    def __init__(self, *, ports: Iterable[int] = (), limits: Limits | None = None,
                 keep: bool = True, want_dataset: Callable | None = None,
                 pdu_events: bool = False, rules: RuleConfig | None = None,
                 tls_keylog: Any = None) -> None:
        """``want_dataset(association, side, message)``, if given, is asked for every message
        that announces a data set and may return a DatasetSink (see dissectors.dimse.assembler)
        to receive its bytes (a shorthand for :meth:`collect` with a policy collecting every
        context); plain analysis never touches data set bytes."""
        # Upper-layer events as they pass to the trackers, for views that need every PDU
        # (diagrams at PDU level): on_ul_events(association, side, events). With pdu_events the
        # parsers also report each P-DATA-TF header (the analysis itself only counts them).
        self.pdu_events = pdu_events
        self.on_ul_events: list[Callable[[Association, int, list], None]] = []
        self.ports = frozenset(ports)
        self.limits = limits or Limits()
        self.keep = keep
        self.table = FlowTable(self.ports, self.limits.max_streams, self.limits.max_ignored)
        self.flows = self.table.flows  # flow key -> (Connection, side) or IGNORED
        self.open = self.table.open  # open connections, oldest first
        # reassemblers whose delivered segments may still look into a reader's buffer
        self.pinned: set[TcpDirection] = set()
        self.fragments = Fragments()  # IP fragments waiting for the rest of their datagram
        self.truncation = Truncation()  # records the snapshot length cut (analysis/loss.py)
        self.associations: list[Association] = []
        self.findings: list[Finding] = []  # capture-level and association findings
        self.stats = Stats()
        self.on_association: list[Callable[[Association], None]] = []
        self.on_finding: list[Callable[[Finding], None]] = []
        self.on_transaction: list[Callable[[Association, Transaction], None]] = []
        self.on_association_start: list[Callable[[Association], None]] = []
        # A reported transaction leaves association.transactions (past Limits.max_transactions
        # in one association): take what you need of it now (docs/architecture.md).
        self.on_retire: list[Callable[[Association, Transaction], None]] = []
        self.policies: list[CollectionPolicy] = []
        self._next_assoc = 1
        self._next_txn = 0
        self.linktypes: set[int] = set()
        # Findings rules (analysis/rules): run as each association ends and at the end. They
        # get what they need injected and follow the hooks like any subscriber.
        self.rules = RuleSet(rules, emit=self.emit,
                             dicom_ports=WELL_KNOWN_PORTS | self.ports)
        self.on_association_start.append(self.rules.association_started)
        self.on_transaction.append(self.rules.transaction)
        self.collect(self.rules.datasets)
        if want_dataset is not None:
            self.collect(_WantDataset(want_dataset))
        # The study journey across associations (analysis/journey, docs/studies.md).
        # Its stand-in: the journey's modules load when the capture holds study traffic.
        from .journey.lazy import LazyJourney

        self.journey = LazyJourney(max_tracked=self.rules.config.max_tracked)
        if self.rules.config.scope != "local":  # a shard leaves them to the merge (parallel/)
            MoveLinker().attach(self)  # C-MOVE <-> sub-association links on the model
            self.journey.attach(self)
        # TLS (analysis/tls.py, registered in the dispatch table): the key log it decrypts
        # with (a dissectors.tls.keylog.KeyLog), on_tls(session) as each TLS connection ends.
        self.tls_keylog = tls_keylog
        self.tls_sessions: list[Any] = []
        self.on_tls: list[Callable[[Any], None]] = []
        self.tls_servers: set[str] = set()  # "ip:port" that answered a ClientHello in TLS
        self._next_tls = 0
        PlainToTLSPort(self).attach(self)

    # -- seams ----------------------------------------------------------------------------
    def collect(self, policy: CollectionPolicy) -> None:
        """Copy data set bytes as ``policy`` says (see :mod:`.collect`), for the associations
        that start from now on."""
        self.policies.append(policy)

    def next_association_id(self) -> int:
        n = self._next_assoc
        self._next_assoc += 1
        self.stats.connections += 1
        return n

    def next_tls_id(self) -> int:
        self._next_tls += 1
        return self._next_tls

    def next_transaction_id(self) -> int:
        self._next_txn += 1
        return self._next_txn

    # -- findings -------------------------------------------------------------------------
    def emit(self, f: Finding) -> None:
        """A finding: counted, kept (up to ``max_findings``) and handed to ``on_finding``."""
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
        self.emit(Finding(severity, code, message, frame, None, section))

    # -- the hot path ---------------------------------------------------------------------
    def consume(self, packets, frame: int = 0, progress=None, every: int = 1 << 14) -> int:
        """Feed ``(ts, linktype, data, orig_len)`` tuples; returns the last frame number.

        The common case, an in-order IPv4 TCP segment on Ethernet carrying data set bytes that
        the parser only counts, is handled inline here: no call, no copy (``ULStream.countable``).
        Everything else goes through :meth:`feed_frame`.
        """
        flows_get = self.flows.get
        unpack = _FAST.unpack_from
        feed_frame = self.feed_frame
        ignored = IGNORED
        st = self.stats
        # every RELEASE_EVERY frames (and at progress time: every is a power of two), if the
        # reader has moved to another chunk, the delivered segments still kept by reference
        # into the chunks it left are copied (dissectors.tcp.release_views): quiet connections
        # pin no chunk, and a copy is made once per chunk, not per frame
        pinned = self.pinned
        pin = pinned.add
        mask = min(every, RELEASE_EVERY) - 1
        chunk = None
        recent = RECENT - 1  # slots of the delivered segments kept (dissectors/tcp.py)
        run_min = RUN_MIN
        ts = None
        packets_it = iter(packets)
        # Bulk runs walked by the compiled accelerator (accel.py), when the reader lets us;
        # ``send_walker`` where the frames pass through a filter that must count the walked
        # ones (the -j workers, parallel/local.py)
        send = (getattr(packets, "send_walker", None) or packets_it.send) if (
            accel.walk is not None and getattr(packets, "walks", False)) else None
        # and small-message runs (query-heavy traffic) by the other one, where built
        small = send if accel.small is not None else None
        try:  # an interrupt (Ctrl-C, SIGTERM) still leaves the count of frames read
            for ts, linktype, buf, _olen in packets_it:
                frame += 1
                if not frame & mask:
                    now = buf.obj if type(buf) is memoryview else None
                    if now is not chunk or now is None:
                        chunk = now
                        release_views(pinned, now)
                    now = None  # (a chunk left behind must not stay referenced here)
                    if progress is not None and not frame & (every - 1):
                        progress(frame)
                if linktype == 1 and len(buf) >= 54:
                    (etype, vihl, total, frag, proto, key, seq, ack, doff, flags,
                     window) = unpack(buf, 0)
                    if etype != 0x0800 or vihl != 0x45 or proto != 6:
                        feed_frame(frame, ts, linktype, buf, _olen)
                        continue
                    # Eligible: what dissectors.net.tcp_segment reads the same way, a whole,
                    # unfragmented packet of a known flow whose headers fit its IP total length
                    # (tests/test_fast_path.py drives both paths frame for frame); anything else,
                    # TSO's total length 0 and a data offset below 5 included, takes the general
                    # path, which decides.
                    entry = flows_get(key)
                    if (entry is None or entry is ignored or frag & 0x3FFF or flags & 0x07
                            or total + 14 > len(buf) or doff < 0x50):
                        if entry is not ignored or flags & 0x02:
                            feed_frame(frame, ts, linktype, buf, _olen)
                        continue
                    n = total - 20 - (doff >> 4) * 4
                    if n < 0:
                        feed_frame(frame, ts, linktype, buf, _olen)
                        continue
                    conn, side = entry
                    conn.last_ts = ts
                    conn.last_frame = frame
                    tcp = conn.tcp
                    if tcp is None:
                        continue
                    if flags & 0x10:  # the ACK first: what the sender had when it sent this
                        o = tcp[1 - side]
                        # Past what was captured of the other direction: lost bytes. Judged
                        # when the sender acts on them (sends data), not on bare ACKs.
                        if o.held or (n and ack != o.next_seq and 1 < (
                                ack - (o.next_seq or ack)) & 0xFFFFFFFF < 0x80000000):
                            gated = o.acked(ack, frame, ts, tcp[side])
                            if conn.app is not None:  # a gate that opened: the loss first
                                conn.app.pump(side)
                                conn.app.pump(1 - side)
                            tcp = conn.tcp  # the bytes it released may have decided the
                            if tcp is None:  # protocol: new reassemblers, or none
                                continue
                            if gated:
                                # this segment is gated on the bytes it acknowledges, which
                                # the capture may show late (dissectors/tcp.py): held, as
                                # feed_frame does after the same ACK
                                d = tcp[side]
                                start = 34 + (doff >> 4) * 4
                                d.segment(seq, buf[start:start + n], frame, ts)
                                if conn.verdict is None and conn.app is not None:
                                    self._judge(conn)
                                    if conn.tcp is None:
                                        continue
                                app = conn.app
                                if app is not None:
                                    app.pump(1 - side)
                                    app.pump(side)
                                    if d.gate:
                                        settle(tcp, app.pump, frame, ts)
                                    if not window:
                                        self.rules.zero_window(conn, side, frame)
                                continue
                    if n:
                        d = tcp[side]
                        ul = d.sink
                        if seq == d.next_seq and not d.held and type(ul) is ULStream:
                            # In order, nothing held: deliver straight to the DICOM parser.
                            d.next_seq = (seq + n) & 0xFFFFFFFF
                            d.delivered += n
                            # kept by reference to judge a retransmission (tcp.py)
                            i = d.ri  # the frame itself: tcp.recent_payload reads it back
                            d.rbuf[i] = buf
                            d.rframe[i] = frame
                            d.ri = (i + 1) & recent
                            pin(d)
                            c = ul.countable
                            if n < c:  # data set bytes nobody collects: counted, not touched
                                ul.countable = c - n
                                if send is not None and c - n > run_min and conn.verdict:
                                    if buf.obj is not chunk:  # the reader moved on: see below
                                        chunk = buf.obj
                                        release_views(pinned, chunk)
                                    frame, ts = self._walk(send, conn, side, key, frame, ts,
                                                           window, progress, every)
                                    continue
                            else:
                                start = 34 + (doff >> 4) * 4
                                ul.take(buf, start, start + n, frame, ts)
                                if ul.events:
                                    conn.app.drain(side)
                                if conn.verdict is None:
                                    self._judge(conn)
                                    if conn.tcp is None:
                                        continue
                                if (send is not None and ul.countable > run_min
                                        and conn.tcp is tcp and conn.verdict):
                                    # A walk goes to the end of the reader's chunk: if the
                                    # reader has just moved to another, the references into
                                    # the one it left are copied now rather than at the next
                                    # look (what a copy is compared with does not depend on
                                    # when: dissectors/tcp.py)
                                    if buf.obj is not chunk:
                                        chunk = buf.obj
                                        release_views(pinned, chunk)
                                    frame, ts = self._walk(send, conn, side, key, frame, ts,
                                                           window, progress, every)
                                    continue
                                if small is not None and conn.tcp is tcp and conn.verdict:
                                    if buf.obj is not chunk:  # as for a bulk run, above
                                        chunk = buf.obj
                                        release_views(pinned, chunk)
                                    frame, ts = self._small(small, conn, side, frame, ts,
                                                            window, progress, every)
                                    continue
                        else:
                            start = 34 + (doff >> 4) * 4
                            d.segment(seq, buf[start:start + n], frame, ts)
                            app = conn.app
                            if app is not None:
                                app.pump(1 - side)  # a gate that opened: the peer's loss
                                app.pump(side)
                                if d.gate:  # (its own gates: what they wait for may have come)
                                    settle(tcp, app.pump, frame, ts)
                            if conn.verdict is None and conn.app is not None:
                                self._judge(conn)
                                if conn.tcp is None:
                                    continue
                    if not window and conn.app is not None:  # receiver says: stop sending
                        self.rules.zero_window(conn, side, frame)
                    continue
                feed_frame(frame, ts, linktype, buf, _olen)
        finally:
            st.frames = frame
            if ts is not None:
                st.last_ts = ts
            release_views(pinned)  # the reader's buffers are its own again
        return frame

    def _walk(self, send, conn: Connection, side: int, key: bytes, frame: int, ts: float,
              window: int, progress, every: int) -> tuple[int, float]:
        """The end of the fast path for a segment after which a bulk run may follow (its
        zero window, as the fast path ends), then the run, to the end of the reader's chunk
        at most (the caller released the references into the chunk before, if any)."""
        if not window and conn.app is not None:  # receiver says: stop sending
            self.rules.zero_window(conn, side, frame)
        return self._run(send, conn, side, key, frame, ts, -1, progress, every)

    def _small(self, send, conn: Connection, side: int, frame: int, ts: float, window: int,
               progress, every: int) -> tuple[int, float]:
        """The end of the fast path for a segment the parser read (its zero window), then the
        compiled walker of small-message runs (:mod:`.accel`) on the records after ``frame``
        as long as each is one of this connection the fast path above takes (in order, each
        side's payload read by its parser's common branches: ``ULStream.walk_state``). What
        it did is applied as the fast path applies it, record for record, and the events it
        made go to the tracker in the order of the records (``DicomAnalyzer.walked``). It
        stops after a record that leaves a bulk run to count: the fast path counts the next
        record and hands the run to the bulk walker (the reader takes one walker at a time:
        ``send`` once, then ``next``). The walk goes to the end of the reader's chunk at most
        (the caller released the references into the chunk before, if any)."""
        if not window and conn.app is not None:  # receiver says: stop sending
            self.rules.zero_window(conn, side, frame)
        tcp = conn.tcp
        if tcp is None:
            return frame, ts
        d0, d1 = tcp
        if (d0.held or d1.held or d0.gate or d1.gate or d0.gate_next is not None
                or d1.gate_next is not None or type(d0.sink) is not ULStream
                or type(d1.sink) is not ULStream):
            return frame, ts
        k0, k1 = conn.keys
        flows_get = self.flows.get
        e0, e1 = flows_get(k0), flows_get(k1)
        if (len(k0) != 12 or e0 is None or e0 is IGNORED or e0[0] is not conn or e0[1] != 0
                or e1 is None or e1 is IGNORED or e1[0] is not conn or e1[1] != 1):
            return frame, ts
        app = conn.app
        states = app.walk_states()
        if states is None:
            return frame, ts
        if states[0] is None and states[1] is None:
            app.walked((None, None), [], 0)
            return frame, ts
        walk = accel.small
        got = send(lambda chunk, off, layout: walk(
            chunk, off, layout, k0, k1, d0.next_seq, d1.next_seq, states[0], states[1], frame,
            -1, RUN_MIN, _EVENTS))
        k = got[1]
        if not k:
            app.walked((None, None), [], 0)
            return frame, ts
        frame0 = frame + 1  # the first record walked
        frame += k
        ts = got[2]
        conn.last_ts = ts
        conn.last_frame = frame
        recent = RECENT - 1
        for d, seq, n, ring in ((d0, got[3], got[5], got[9]), (d1, got[4], got[6], got[10])):
            d.next_seq = seq
            if n:
                d.delivered += n
            if ring:
                for view, i in ring:  # the fast path's ring of delivered segments (tcp.py)
                    r = d.ri
                    d.rbuf[r] = view
                    d.rframe[r] = frame0 + i
                    d.ri = (r + 1) & recent
                self.pinned.add(d)  # they look into the reader's chunk (tcp.release_views)
                ring.clear()  # (the reader keeps what its walker returned until the next walk)
        app.walked((got[7], got[8]), got[11], got[12])
        if progress is not None and (frame0 - 1) // every != frame // every:
            progress(frame)
        return frame, ts

    def _run(self, send, conn: Connection, side: int, key: bytes, frame: int, ts: float,
             limit: int, progress, every: int) -> tuple[int, float]:
        """The compiled walker (:mod:`.accel`) takes the records after ``frame`` as long as
        each is one the fast path above would only count: in-order data set bytes of this
        side nobody collects, with the next P-DATA-TF headers its parser lets it read
        (``ULStream.crossing``), and the other side's bare ACKs. What it did is applied as
        the fast path applies it, record for record; returns the last frame and its time."""
        tcp = conn.tcp
        rkey = conn.keys[1 - side]
        back = self.flows.get(rkey)
        if (tcp is None or len(key) != 12 or back is None or back is IGNORED
                or back[0] is not conn):
            return frame, ts
        d, o = tcp[side], tcp[1 - side]
        if o.held or d.held or type(d.sink) is not ULStream:
            return frame, ts
        ul = d.sink
        cross = ul.crossing() if not self.on_ul_events else None
        walk = accel.walk
        got = send(lambda chunk, off, layout: walk(
            chunk, off, layout, key, rkey, d.next_seq, o.next_seq, ul.countable, cross, limit))
        k = got[1]
        if not k:
            return frame, ts
        frame0 = frame + 1  # the first record walked
        frame += k
        ts = got[2]
        conn.last_ts = ts
        conn.last_frame = frame
        d.next_seq = got[3]
        d.delivered += got[4]
        views = got[6]  # for the fast path's ring of delivered segments (tcp.py)
        if len(views) == RECENT:  # all of it anew, oldest first (the ring turned: slot 0 next)
            d.rbuf = [v for v, _ in views]
            d.rframe = [frame0 + i for _, i in views]
            d.ri = 0
            self.pinned.add(d)  # they look into the reader's chunk (tcp.release_views)
        elif views:
            recent = RECENT - 1
            rbuf, rframe, r = d.rbuf, d.rframe, d.ri
            for view, i in views:
                rbuf[r] = view
                rframe[r] = frame0 + i
                r = (r + 1) & recent
            d.ri = r
            self.pinned.add(d)
        if got[9]:  # the other side's bare ACKs that closed its window (the fast path's end)
            self.rules.zero_window(conn, 1 - side, frame0 + got[10], got[9])
        if got[7] or got[8]:
            ul.crossed(got[7], got[5], got[8], frame0)
            if ul.events:
                conn.app.drain(side)
        else:
            ul.countable = got[5]
        if progress is not None and (frame0 - 1) // every != frame // every:
            progress(frame)
        return frame, ts

    def feed_frame(self, frame: int, ts: float, linktype: int, buf, olen: int = 0) -> None:
        """One captured frame (1-based number, seconds, pcap link type, bytes; ``olen``: its
        length on the wire when the capture says, to count records the snapshot length cut)."""
        if self.stats.first_ts is None:
            self.stats.first_ts = ts
        if olen > len(buf):
            self.truncation.record(frame, len(buf), olen)
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
            whole = self.fragments.add(buf, etype, off, frame, ts)  # None: not a fragment
            if whole is None:
                return
            buf, off = whole, 0  # the datagram the last fragment completed, read as one
            seg = tcp_segment(buf, etype, off)
            if seg is None:
                return
        key, seq, ack, flags, ps, pe, wire_len, window = seg
        entry = self.flows.get(key)
        if entry is IGNORED:
            if flags & TCP_SYN and not flags & TCP_ACK:
                self.table.forget(key)
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
        if not window and conn.app is not None and not flags & (TCP_SYN | TCP_RST):
            self.rules.zero_window(conn, side, frame)
        if flags & TCP_ACK and not flags & (TCP_SYN | TCP_RST) and conn.tcp is not None:
            # The ACK first: it says what the sender had received when it sent this segment;
            # past what the capture delivered of the other direction, those bytes were lost
            # (judged when the sender acts on them: data or FIN, as the fast path does).
            o = conn.tcp[1 - side]
            nx = o.next_seq
            if o.held or ((wire_len or flags & TCP_FIN) and nx is not None
                          and 2 <= (ack - nx) & 0xFFFFFFFF < 0x80000000):
                # (True: this segment's bytes wait for them, the capture may show them late)
                o.acked(ack, frame, ts, conn.tcp[side])
                if conn.app is not None:  # a gate that opened: the loss first
                    conn.app.pump(side)
                    conn.app.pump(1 - side)
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
            if conn.verdict is None and conn.app is not None:
                self._judge(conn)
                if conn.tcp is None:
                    return
            app = conn.app
            if app is not None:
                app.pump(1 - side)  # a gate that opened: the peer's loss first
                app.pump(side)
                if d.gate:  # (its own gates: what they wait for may have come)
                    settle(tcp, app.pump, frame, ts)
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

    def _judge(self, conn: Connection) -> None:
        """A connection picked up mid-stream: is its analyzer's guess confirmed yet?"""
        verdict = conn.app.judge()
        if verdict is None:
            return
        conn.verdict = verdict
        if not verdict:
            conn.tcp = None
            conn.app = None
            self._ignore(conn, conn.keys[0])

    # -- connection life ------------------------------------------------------------------
    def _ignore(self, conn: Connection | None, key: bytes) -> None:
        self.table.ignore(conn, key)
        self.stats.ignored_connections = self.table.ignored_connections

    def _new_flow(self, key: bytes, flags: int, buf, ps: int, pe: int, frame: int,
                  ts: float):
        forced = self.table.is_forced(key)
        if flags & TCP_SYN:
            client_key = key if not flags & TCP_ACK else reverse_key(key)
            conn = Connection(client_key, forced)
            conn.syn_seen = True
            self._register(conn)
            lim = self.limits.max_tcp_buffer
            conn.tcp = (TcpDirection(DetectSink(conn, 0, self._decide), lim, self.pinned),
                        TcpDirection(DetectSink(conn, 1, self._decide), lim, self.pinned))
            return self.flows[key]
        if pe <= ps:
            return None  # a bare ACK of a flow we never saw: nothing to judge it by
        head = buf[ps:pe]
        found = dispatch.choose_pickup(head, key_ports(key), self.ports)
        if found is None:
            self._ignore(None, key)
            return None
        proto, sender = found
        conn = Connection(key if sender == 0 else reverse_key(key), forced)
        self._register(conn)
        conn.attach(proto.create(self, conn, sender, True, frame, ts), self.limits.max_tcp_buffer,
                    self.pinned)
        conn.verdict = conn.app.verdict
        return self.flows[key]

    def _register(self, conn: Connection) -> None:
        oldest = self.table.register(conn)
        if oldest is not None:
            self.stats.evicted += 1
            if self.stats.evicted == 1:  # one finding; the summary counts every eviction
                self.capture_finding("warning", "CAP-STREAMS",
                                     f"more than {self.limits.max_streams} connections open at "
                                     "once: the oldest are evicted and their analysis ends there "
                                     "(raise --max-streams; the summary counts evictions)",
                                     oldest.last_frame or None)
            self._close(oldest, "eof", oldest.last_frame, oldest.last_ts)

    def _decide(self, conn: Connection, side: int, head: bytes, frame: int, ts: float,
                gap: int = 0) -> None:
        """First bytes of a connection seen from its SYN: which analyzer, if any?"""
        if conn.verdict is not None:
            return
        proto = dispatch.choose(head, side, final=bool(gap))
        if proto and conn.forced and proto.name == "http":
            proto = False  # --port says DICOM: a request line there is DICOM gone wrong
        if proto is None:
            if not conn.forced:
                return  # a protocol wants more bytes
            proto = False
        if proto is False:
            if not conn.forced:
                conn.verdict = False
                conn.tcp = None
                self._ignore(conn, conn.keys[0])
                return
            proto = dispatch.protocol("dicom")  # --port: the user says it is DICOM
        assert proto
        app = proto.create(self, conn, side, False, frame, ts)
        other = conn.tcp[1 - side].sink if conn.tcp is not None else None
        conn.attach(app, self.limits.max_tcp_buffer, self.pinned)
        if isinstance(other, DetectSink):
            other.replay(app)  # bytes the other side lost before its first captured byte
        conn.verdict = True
        # The detecting reassembler already advanced past these bytes: replay them.
        app.feed(side, head, frame, ts)
        if gap:
            app.gap(side, gap, frame, ts)

    def _flags(self, conn: Connection, side: int, flags: int, seq: int, frame: int,
               ts: float, key: bytes, buf, ps: int, pe: int) -> bool:
        """SYN/FIN/RST bookkeeping. Returns False when the packet should go no further."""
        if flags & TCP_RST and conn.tcp is not None and not conn.tcp[side].judge_rst(
                seq, frame, conn.fin[side]):
            return False  # outside what the receiver expects: dropped (RFC 5961 3.2)
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
            if (conn.verdict is not None and d.next_seq is not None and d.next_seq != isn
                    and not any(conn.fin) and (d.delivered or conn.tcp[1 - side].delivered)):
                # A SYN inside a synchronised connection that is not closing: a receiver
                # answers with a challenge ACK and goes on (RFC 5961 4.2).
                d.judge_syn(frame)
                return False
            if conn.verdict is not None and d.next_seq is not None and d.next_seq != isn and (
                    d.delivered or conn.fin[side]):
                # Port reuse: the same four-tuple starts a new connection.
                self._close(conn, "fin" if any(conn.fin) else "eof", frame, ts)
                self.table.forget(key)
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
            if conn.tcp is not None:
                if pe > ps:
                    conn.tcp[side].segment(seq, buf[ps:pe], frame, ts)
                # bytes sent before the FIN that the capture never had
                conn.tcp[side].ended_at((seq + pe - ps) & 0xFFFFFFFF, frame, ts)
            if conn.app is not None:  # with or without bytes: the analyzer sees the FIN
                conn.app.pump(side)
            if conn.fin[0] and conn.fin[1]:
                self._close(conn, "fin", frame, ts)
            return False
        return True

    def _close(self, conn: Connection, how: str, frame: int, ts: float) -> None:
        """Finish a connection: its analyzer flushes and ends; a DICOM association is handed
        out."""
        if not self.table.remove(conn):
            return
        app = conn.app
        if app is None or conn.tcp is None:
            return
        a = app.close(how, frame, ts)
        if a is None:
            if app.protocol == "dicom":
                self.stats.connections -= 1  # never found a DICOM PDU: it was not DICOM
            return
        self.rules.association_closed(a, how, conn.tcp, app.tracker.code_counts)
        if self.keep:
            self.associations.append(a)
        for cb in self.on_association:
            cb(a)

    def truncation_finding(self, cut: Truncation) -> None:
        """Records the capture cut, once (``parallel`` sums its workers' into one)."""
        text = cut.message()
        if text is not None:
            self.capture_finding("warning", "CAPTURE-TRUNCATED", text, cut.frames[0])

    def _fragment_findings(self) -> None:
        fr = self.fragments
        fr.finish(self.stats.frames)
        if fr.conflicts:
            self.capture_finding(
                "warning", "IP-FRAGMENT-CONFLICT",
                f"{fr.conflicts} IP fragment(s) overlapped earlier fragments of the same "
                "datagram with different bytes (the first copy was kept, as most receivers "
                f"do); frames {', '.join(map(str, fr.conflict_frames[:5]))}",
                fr.conflict_frames[0], "RFC 791 3.2 / RFC 8200 4.5")
        if fr.expired or fr.bad:
            frames = fr.expired_frames or [None]
            self.capture_finding(
                "warning", "IP-FRAGMENT-INCOMPLETE",
                f"{fr.expired + fr.bad} IP datagram(s) or fragment(s) could not be "
                f"reassembled (missing fragments, older than {fr.timeout:.0f} s of capture "
                f"time, past the {fr.max_datagrams}-datagram or {fr.max_bytes >> 20} MiB "
                "caps, or not placeable); their bytes are missing from the analysis",
                frames[0], "RFC 791 3.2 / RFC 8200 4.5")

        if fr.undecodable:
            self.capture_finding(
                "warning", "CAPTURE-UNDECODED",
                f"{fr.undecodable} IPv6 packet(s) whose extension header chain could not be "
                f"walked to a transport header (cut by the capture, or more than "
                "64 headers): not analysed", None, "RFC 8200 4")

    def finish(self) -> None:
        """End of capture: every open connection ends as it is."""
        for conn in list(self.open):
            self._close(conn, "eof", conn.last_frame, conn.last_ts)
        self._fragment_findings()
        self.truncation_finding(self.truncation)
        self.associations.sort(key=lambda a: (a.first_frame or 0))
        self.journey.finish()
        self.rules.finish()  # capture-wide rules (MPPS, commitment, refused connections)
