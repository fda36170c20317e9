"""The DICOM upper layer analyzer of one connection: two PS3.8 parsers and one association.

Registered in the dispatch table (:mod:`.dispatch`) as "dicom": a connection whose start was
captured is DICOM when its first bytes are a well-formed A-ASSOCIATE-RQ (or, reordered, the
acceptor's A-ASSOCIATE-AC/RJ); one picked up mid-stream is a guess, parsed from the first
plausible PDU boundary, that becomes a certainty when a whole PDU is parsed and is dropped
without a trace when none is within ``detect_budget`` bytes. The parsers
(:class:`~dissectors.ul.stream.ULStream`) are the TCP reassemblers' sinks themselves, so the
engine's fast path can count data set bytes without a call (see ``ULStream.skippable``).
"""

from __future__ import annotations

from typing import Any

from dissectors.net import format_endpoint
from dissectors.tcp import settle
from dissectors.ul.pdu import (
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    ACCEPTOR,
    REQUESTOR,
    ROLES,
)
from dissectors.ul.stream import ULStream, plausible_pdu

from ..model import Association
from .collect import Collection
from .dispatch import AppProtocol, FlowAnalyzer, register
from .tracker import AssociationTracker

WELL_KNOWN_PORTS = frozenset({104, 11112, 4242, 2761, 2762})


class DicomAnalyzer(FlowAnalyzer):
    """One DICOM connection: side 0 is the association requestor, side 1 the acceptor."""

    protocol = "dicom"
    __slots__ = ("host", "conn", "ul", "tracker", "assoc", "collection", "verdict", "budget",
                 "sinks")

    def __init__(self, host: Any, conn: Any, *, synced: bool, frame: int, ts: float,
                 midstream: bool) -> None:
        lim = host.limits
        self.host = host
        self.conn = conn
        self.ul = (ULStream(synced=synced, max_associate_pdu=lim.max_associate_pdu,
                            pdata_events=host.pdu_events),
                   ULStream(synced=synced, max_associate_pdu=lim.max_associate_pdu,
                            pdata_events=host.pdu_events))
        self.sinks = self.ul
        a = Association(host.next_association_id(), format_endpoint(conn.keys[0], 0),
                        format_endpoint(conn.keys[0], 1))
        a.first_frame = frame
        a.start = ts
        a.midstream = midstream
        self.assoc = a
        self.tracker = AssociationTracker(a, host.emit, host.next_transaction_id,
                                          host.on_transaction, self._started, host.on_retire,
                                          # an analyzer that keeps its associations (the
                                          # report, the TUI) keeps them whole
                                          1 << 62 if host.keep else lim.max_transactions,
                                          lim.max_outstanding, lim.max_response_frames)
        self.tracker.ul = self.ul
        self.collection: Collection | None = None
        if host.policies:
            self.collection = Collection(host.policies, a, self.ul, self.tracker.asm)
        if midstream and not conn.forced:  # --port: the user says it is DICOM
            self.tracker.hold_findings()  # until a whole PDU proves it is DICOM
        # a mid-stream guess is judged by the first PDU boundary within the budget
        self.verdict: bool | None = True if (conn.forced or not midstream) else None
        self.budget = lim.detect_budget

    def _started(self, a: Association) -> None:
        """Negotiation answered (or a mid-stream association proven): collection first, then
        the host's hooks."""
        if self.collection is not None:
            self.collection.refresh()
        for cb in self.host.on_association_start:
            cb(a)

    # -- bytes in ---------------------------------------------------------------------------
    def drain(self, side: int) -> None:
        """Hand the events ``side``'s parser made to the tracker (and the on_ul_events hooks)."""
        ul = self.ul[side]
        evs = ul.events
        ul.events = []
        host = self.host
        host.stats.dicom_frames += 1
        self.tracker.on_events(side, evs)
        hooks = host.on_ul_events
        if hooks:
            for cb in hooks:
                cb(self.assoc, side, evs)

    def walk_states(self) -> tuple | None:
        """The two parsers' states for the compiled walker of small-message runs
        (``ULStream.walk_state``; dicomsniff/analysis/accel.py), or None when the tracker
        cannot take the events of a run at once (``AssociationTracker.batchable``) or views
        want the events as they come. :meth:`walked` must follow."""
        if self.host.on_ul_events or not self.tracker.batchable:
            return None
        return self.ul[0].walk_state(), self.ul[1].walk_state()

    def walked(self, states: tuple, groups: list, drains: int) -> None:
        """After a walk: the parsers' new states (``ULStream.walked``), then the events of the
        records walked to the tracker, in the order they came, ``(side, events)`` each
        (``drains``: how many records made events, as many drains as the Python path)."""
        self.ul[0].walked(states[0])
        self.ul[1].walked(states[1])
        self.host.stats.dicom_frames += drains
        on_events = self.tracker.on_events
        for side, evs in groups:
            on_events(side, evs)

    def pump(self, side: int) -> None:
        if self.ul[side].events:
            self.drain(side)

    def feed(self, side: int, data, frame: int, ts: float) -> None:
        self.ul[side].feed(data, frame, ts)
        if self.ul[side].events:
            self.drain(side)

    def gap(self, side: int, missing: int, frame: int, ts: float) -> None:
        self.ul[side].gap(missing, frame, ts)
        if self.ul[side].events:
            self.drain(side)

    def judge(self) -> bool | None:
        """A mid-stream guess is DICOM once a parser finds a PDU boundary; not DICOM when
        none is found within the budget."""
        ul = self.ul
        if ul[REQUESTOR].synced or ul[ACCEPTOR].synced:
            self.verdict = True  # its findings wait until a whole PDU proves it (tracker)
        elif ul[REQUESTOR].bytes_in + ul[ACCEPTOR].bytes_in > self.budget:
            self.verdict = False
        return self.verdict

    # -- the end ----------------------------------------------------------------------------
    def close(self, how: str, frame: int, ts: float) -> Association | None:
        """Flush, end the association; returns it, or None when it never proved to be
        DICOM (then it leaves no trace: no findings, not counted)."""
        conn = self.conn
        if conn.tcp is not None:  # segments gated on the other side's bytes, in turn
            settle(conn.tcp, self.pump, frame, ts, force=True)
        for side in (REQUESTOR, ACCEPTOR):
            if conn.tcp is not None:
                conn.tcp[side].flush(frame, ts)
            self.ul[side].close(frame, ts)
            if self.ul[side].events:
                self.drain(side)
        self._transport_findings(frame)
        t = self.tracker
        t.finish(how, frame, ts)
        a = self.assoc
        if self.verdict is None or (a.midstream and not conn.forced and not t.proven):
            return None
        t.release_findings()
        a.bytes = {ROLES[s]: self.ul[s].bytes_in for s in (REQUESTOR, ACCEPTOR)}
        if a.last_frame is None or a.last_frame < conn.last_frame:
            a.last_frame = conn.last_frame
        return a

    def _transport_findings(self, frame: int) -> None:
        tcp = self.conn.tcp
        if tcp is None:
            return
        t = self.tracker
        for side, d in enumerate(tcp):
            name = ROLES[side]
            if d.conflicts:
                pairs = "; ".join(f"frame {a} and frame {b}" for a, b in d.conflict_frames[:5])
                first = d.conflict_frames[0][0] if d.conflict_frames else frame
                t.finding("warning", "TCP-OVERLAP-CONFLICT",
                          f"{name}: {d.conflicts} retransmitted segment(s) carried different "
                          f"bytes than the first copy ({pairs}); the first copy was used, as "
                          "a receiver that already read it does", first, None)
            if d.ignored_rst:
                t.finding("warning", "TCP-RST-IGNORED",
                          f"{name}: {d.ignored_rst} RST segment(s) with a sequence number other "
                          "than the one the receiver expected next: a receiver drops them or "
                          "answers with a challenge ACK (RFC 5961 3.2), so the association went "
                          "on; injected or stale (frames "
                          f"{', '.join(map(str, d.ignored_frames[:5]))})",
                          d.ignored_frames[0], "RFC 5961 3.2")
            if d.ignored_syn:
                t.finding("warning", "TCP-SYN-IGNORED",
                          f"{name}: {d.ignored_syn} SYN segment(s) in the middle of the "
                          "connection: a receiver answers with a challenge ACK and goes on "
                          "(RFC 5961 4.2); the association continues", d.ignored_frames[0],
                          "RFC 5961 4.2")
            if d.buffer_overflows:
                t.finding("warning", "CAP-TCP-BUFFER",
                          f"{name}: out-of-order data exceeded the {d.max_buffer}"
                          "-byte reassembly buffer; the hole was declared a gap "
                          "(raise --max-tcp-buffer)", frame, None)


# -- detection ------------------------------------------------------------------------------


def detect(head: bytes, side: int) -> bool | None:
    """The first bytes of a connection whose start was captured: an A-ASSOCIATE-RQ from the
    client (or, reordered in the capture, the acceptor's A-ASSOCIATE-AC/RJ)?"""
    if len(head) >= 10 and head[0] == (
            A_ASSOCIATE_RQ if side == REQUESTOR
            else A_ASSOCIATE_AC if head[0] == A_ASSOCIATE_AC else A_ASSOCIATE_RJ
    ) and plausible_pdu(head, 0) is True:
        return True
    if (len(head) >= 8 and head[0] in (A_ASSOCIATE_RQ, A_ASSOCIATE_AC) and head[1] == 0
            and head[6:8] == b"\x00\x01"):
        # An A-ASSOCIATE with a broken length but the right protocol version: a DICOM peer
        # gone wrong, which deserves findings, not silence.
        return True
    return None if len(head) < 10 else False


def pickup(head: bytes, ports: tuple[int, int], forced_ports: frozenset[int]) -> int | None:
    """A connection already running: always worth a guess (the parser hunts for a PDU
    boundary within the budget). Which side is the requestor: the one sending an
    A-ASSOCIATE-RQ, the other if an A-ASSOCIATE-AC/RJ, else by the well-known and --port
    ports, else the higher port."""
    sp, dp = ports
    if head[0] == 1 and plausible_pdu(head, 0):
        return 0
    if head[0] == 2 or head[0] == 3:
        return 1
    if (dp in forced_ports or dp in WELL_KNOWN_PORTS) and sp not in WELL_KNOWN_PORTS:
        return 0
    if sp in forced_ports or sp in WELL_KNOWN_PORTS:
        return 1
    return 0 if dp < sp else 1


def create(host: Any, conn: Any, side: int, midstream: bool, frame: int,
           ts: float) -> DicomAnalyzer:
    return DicomAnalyzer(host, conn, synced=not midstream, frame=frame, ts=ts,
                         midstream=midstream)


DICOM = register(AppProtocol("dicom", detect, create, pickup=pickup, ports=WELL_KNOWN_PORTS,
                             priority=10, pickup_priority=100, detect_bytes=10))

