"""From upper-layer events and DIMSE messages to one Association with its transactions.

One tracker per TCP connection carrying DICOM. Side 0 is the association requestor (the
client), side 1 the acceptor (``dissectors.ul.pdu.REQUESTOR``, ``ACCEPTOR``). Each PDU drives
the PS3.8 state machine of both AEs (``dissectors.ul.states``, the standard's table); what the
table has no transition for is a finding naming the state and the event. It never raises on
odd input.
"""

from __future__ import annotations

from collections.abc import Callable

from dissectors.dimse.assembler import Message, MessageAssembler
from dissectors.dimse.command import service_name
from dissectors.dimse.status import category as status_category
from dissectors.dimse.status import meaning as status_meaning
from dissectors.ul import events as ev
from dissectors.ul import pdu
from dissectors.ul.pdu import ACCEPTOR, PDU_NAMES, REQUESTOR, ROLES
from dissectors.ul.reasons import (
    abort_reason,
    abort_source,
    reject_reason,
    reject_result,
    reject_source,
    user_identity_type,
)
from dissectors.ul.states import AssociationStates, Step
from dissectors.wiretext import mark

from ..model import Association, Finding, PresentationContext, Side, Transaction
from .loss import SideLoss

SIDES = ROLES  # side 0 is the association-requestor, side 1 the acceptor (PS3.8 7.1)
PER_CODE_CAP = 20  # findings of one code kept per association; the rest are counted
# Per association (docs/limits.md; Limits in engine.py): transactions kept before the reported
# ones are retired, requests followed at once, response frames listed per transaction.
MAX_KEPT = 1000
MAX_OUTSTANDING = 4096
MAX_RESPONSE_FRAMES = 1000

# Severity of upper-layer problems by code prefix; everything else malformed is an error.
_UL_SEVERITY = {"UL-STREAM-TRUNCATED": "info", "UL-PDV-ODD": "warning",
                "UL-PDV-MCH": "warning", "UL-ITEM-UNEXPECTED": "warning",
                "DIMSE-CMD-ORDER": "warning"}

_SECTIONS = {"UL": "PS3.8 9.3", "DIMSE": "PS3.7 6.3"}
_SUBOPS = _REMAINING, _COMPLETED = ("NumberOfRemainingSuboperations",
                                     "NumberOfCompletedSuboperations")
# Status class per code seen (PS3.7 Annex C), filled as codes appear: a response costs a dict
# lookup, not a call (a handful of distinct codes per capture; bounded by the 65,536 codes)
_CATEGORY: dict[int, str] = {}


def _side_from(user: ev.UserInfo, side: Side) -> None:
    side.max_pdu = user.max_pdu
    side.implementation_class_uid = user.implementation_class_uid
    side.implementation_version_name = user.implementation_version_name
    side.async_invoked = user.async_invoked
    side.async_performed = user.async_performed
    side.roles = [{"sop_class": r.sop_class, "scu_role": r.scu_role, "scp_role": r.scp_role}
                  for r in user.roles]
    side.extended = [{"sop_class": x.sop_class, "info": x.info.hex()} for x in user.extended]
    side.common_extended = [{"sop_class": x.sop_class, "service_class": x.service_class,
                             "related_classes": x.related_classes}
                            for x in user.common_extended]
    if user.identity_type is not None:
        side.user_identity = {"type": user.identity_type,
                              "type_text": user_identity_type(user.identity_type),
                              "response_requested": user.identity_response_requested,
                              "username": user.identity_username}
    elif user.identity_server_response_length is not None:
        side.user_identity = {"server_response": True,
                              "length": user.identity_server_response_length}


def _where(step: Step) -> str:
    """'requestor in Sta6 (Association established ...): Evt3 (A-ASSOCIATE-AC PDU received)
    has no transition in PS3.8 Table 9-10'."""
    return f"{step.describe()} has no transition in PS3.8 Table 9-10"


class AssociationTracker:
    """Builds one :class:`Association` from both directions' events."""

    # The fused small-message path: a whole command set, and the end of a data set nobody
    # collects, handled as they come (``MessageAssembler.whole_command``/``data_done``) rather
    # than through the assembler's queue; False only to test that both give the same.
    fused = True

    __slots__ = ("assoc", "asm", "states", "seen_pdu", "data_ok", "outstanding",
                 "emit_finding", "code_counts", "_txn_seq",
                 "seen_command", "midstream_leftovers", "on_transaction",
                 "started", "announced", "ul", "pdv_seen", "held_findings",
                 "proven", "final_waiting", "loss", "rq_lost", "on_retire", "max_kept",
                 "max_outstanding", "max_response_frames", "_reported", "_kept_after",
                 "untracked", "untracked_responses", "untracked_frame")

    def __init__(self, assoc: Association, emit_finding: Callable[[Finding], None],
                 txn_seq: Callable[[], int],
                 on_transaction: list[Callable[[Association, Transaction], None]] | None = None,
                 started: Callable[[Association], None] | None = None,
                 on_retire: list[Callable[[Association, Transaction], None]] | None = None,
                 max_kept: int = MAX_KEPT, max_outstanding: int = MAX_OUTSTANDING,
                 max_response_frames: int = MAX_RESPONSE_FRAMES) -> None:
        """``on_transaction``: hooks called with (association, transaction) when a request got
        its final response (data set included) or never will. ``started(association)``: once,
        when the negotiation is answered (A-ASSOCIATE-AC or -RJ) or, for an association picked
        up mid-stream, when its first DIMSE command or data set proves it.

        Memory is bounded per association, not by its length (docs/limits.md): past
        ``max_kept`` transactions, those already reported (``on_transaction``) leave
        ``association.transactions``, each handed to ``on_retire(association, transaction)``
        first and counted in ``association.transactions_retired``; at most
        ``max_outstanding`` requests are followed at once (the rest are counted: a
        CAP-OUTSTANDING finding) and ``max_response_frames`` response frames listed per
        transaction (the rest counted in ``response_frames_dropped``)."""
        self.assoc = assoc
        self.asm = (MessageAssembler(), MessageAssembler())
        # PS3.8 9.2: both AEs' states, and the Maximum Length each announced
        self.states = AssociationStates(midstream=assoc.midstream)
        self.seen_pdu = False  # an A-ASSOCIATE, A-RELEASE or A-ABORT PDU was seen
        # per side: P-DATA seen and the sender in Sta6, where P-DATA needs no state check
        self.data_ok = [False, False]
        self.outstanding: dict[tuple[int, int], Transaction] = {}
        self.emit_finding = emit_finding
        self.code_counts: dict[str, int] = {}
        self._txn_seq = txn_seq
        self.seen_command = [False, False]
        self.ul: tuple | None = None  # the two ULStreams, set by the engine
        self.pdv_seen = [False, False]
        self.held_findings: list[Finding] | None = None
        # A whole PDU, command fragment or data set was parsed: the connection is DICOM. Until
        # then a mid-stream candidate's findings are held, and it is dropped if never proven.
        self.proven = False
        self.final_waiting: dict[int, Transaction] = {}  # id(final response) -> transaction
        self.on_transaction = on_transaction if on_transaction is not None else []
        self.started = started
        self.announced = False  # started() was called
        self.midstream_leftovers = 0  # fragments/responses of messages begun before capture
        # bytes each side sent that the capture lost, and what they carried (analysis/loss)
        self.loss: list[SideLoss | None] = [None, None]
        self.rq_lost = False  # the A-ASSOCIATE-RQ was among them: its contexts are unknown
        self.on_retire = on_retire if on_retire is not None else []
        self.max_kept = max_kept
        self.max_outstanding = max_outstanding
        self.max_response_frames = max_response_frames
        self._reported: set[int] = set()  # id() of kept transactions already reported
        self._kept_after = 0  # transactions kept after the last retirement (still open)
        self.untracked = 0  # requests past max_outstanding: counted, not followed
        self.untracked_responses = 0  # responses that may answer them
        self.untracked_frame: int | None = None

    # -- findings -------------------------------------------------------------------------
    def finding(self, severity: str, code: str, message: str, frame: int | None,
                section: str | None = None) -> None:
        n = self.code_counts.get(code, 0) + 1
        self.code_counts[code] = n
        if n > PER_CODE_CAP:
            return
        if n == PER_CODE_CAP:
            message += f" (further {code} findings on this association are counted, not listed)"
        if section is None:
            section = _SECTIONS.get(code.split("-", 1)[0])
        f = Finding(severity, code, message, frame, self.assoc.id, section)
        self.assoc.findings.append(f)
        if self.held_findings is not None:
            self.held_findings.append(f)
        else:
            self.emit_finding(f)

    def hold_findings(self) -> None:
        """Keep findings back until the connection is known to be DICOM (mid-stream pickup)."""
        if self.held_findings is None:
            self.held_findings = []

    def release_findings(self) -> None:
        """It is DICOM: report the findings held so far, and the next ones as they come."""
        held, self.held_findings = self.held_findings, None
        for f in held or ():
            self.emit_finding(f)

    # -- upper layer ----------------------------------------------------------------------
    @property
    def batchable(self) -> bool:
        """May the events of several frames of P-DATA-TF PDUs come in one call, after the
        parsers read them all (the engine's compiled walker of small-message runs)? Only if
        handling them changes nothing the parsers read: their collection and maximum length
        change with a negotiation PDU (never in such a run) and when an association picked
        up mid-stream is announced (the collection policies are asked then), and held
        findings wait for the proof that this is DICOM."""
        return self.held_findings is None and (self.announced or not self.assoc.midstream)

    def on_events(self, side: int, events: list) -> None:
        # Once per drain, several times per DIMSE message: the common events first, module
        # names rather than attribute lookups, the PDU counts looked up only when needed.
        a = self.assoc
        asm = self.asm[side]
        for e in events:
            t = type(e)
            if t is _PdvCommand:
                self.proven = True
                if not self.data_ok[side]:
                    self._first_pdv(side, e.frame)
                if not self.announced and a.midstream:
                    self._announce()  # picked up mid-stream: the first we know of it
                lost = self.loss[side]
                if lost is not None:  # a command after a loss: what came before is told
                    lost.open = False
                    if lost.command_frame is None:
                        lost.command_frame = e.frame
                m = None if asm.problems or not self.fused else asm.whole_command(e)
                if m is not None:  # fused: no queue (the same as the general way below)
                    self._on_command(side, m)
                    if m.complete:
                        self._on_complete(side, m)
                    continue
                asm.on_command(e)
            elif t is _PdvData:
                if not self.pdv_seen[side]:
                    self._first_pdv(side, e.frame)
                asm.on_data(e)
            elif t is _PdvDataRun:  # a bulk run's fragment headers (ULStream.crossed)
                if not self.pdv_seen[side]:
                    self._first_pdv(side, e.first_frame)
                asm.on_data_run(e)
            elif t is _DataComplete:
                self.proven = True
                lost = self.loss[side]
                if lost is not None:  # _resumed(side), inlined
                    lost.open = False
                if not self.announced and a.midstream:
                    self._announce()  # picked up mid-stream: the first we know of it
                m = None if asm.problems or not self.fused else asm.data_done(e)
                if m is not None:  # fused: no queue (the same as the general way below)
                    self._on_complete(side, m)
                    continue
                asm.on_data_complete(e)
            elif t is _PdvBytes:
                asm.on_bytes(e)
            elif t is _PDataTF:
                counts = a.pdus[SIDES[side]]
                counts["P-DATA-TF"] = counts.get("P-DATA-TF", 0) + 1
            elif t is _Malformed:
                counts = a.pdus[SIDES[side]]
                if e.pdu_type == 4 and "P-DATA-TF" in counts:
                    # A P-DATA-TF cut off by the end of the stream was never a whole PDU; it
                    # is reported by this finding, not counted (tshark agrees).
                    counts["P-DATA-TF"] -= 1
                self.finding(_UL_SEVERITY.get(e.code, "error"), e.code,
                             f"{SIDES[side]}: {e.message}", e.frame,
                             "PS3.8 D.1" if e.code == "UL-PDU-TOO-LONG" else None)
            else:
                name = _PDU_OF.get(t)
                if name is not None:
                    counts = a.pdus[SIDES[side]]
                    counts[name] = counts.get(name, 0) + 1
                    self.proven = True
                self._on_pdu(side, e)
                if name is not None:
                    self._resumed(side)
            if asm.out:
                self._on_messages(side, asm)
        if self.held_findings is not None and self.proven:
            self.release_findings()  # a whole PDU or PDV was parsed: this is DICOM
        if events:
            last = events[-1].frame
            if a.last_frame is None or last > a.last_frame:
                a.last_frame = last

    def _announce(self) -> None:
        if not self.announced:
            self.announced = True
            if self.started is not None:
                self.started(self.assoc)

    def _data_ok(self) -> None:
        st = self.states.states
        self.data_ok = [self.pdv_seen[0] and st[0] == "Sta6", self.pdv_seen[1] and st[1] == "Sta6"]

    def _first_pdv(self, side: int, frame: int) -> None:
        """State checks on P-DATA (Evt9), made on its first PDV and whenever the sender is
        not in Sta6: P-DATA never changes a valid state, so the others need no look."""
        self.pdv_seen[side] = True
        a = self.assoc
        self._explain(side, pdu.P_DATA_TF)
        sent = self.states.pdu(side, pdu.P_DATA_TF)[0]
        self._data_ok()
        if sent.valid:
            return
        if (a.accept_frame is None or a.outcome == "rejected") and not a.midstream:
            self.finding("error", "UL-STATE-PDATA",
                         f"{SIDES[side]} sent P-DATA-TF before the association was accepted "
                         f"({_where(sent)}; P-DATA is only valid in Sta6)", frame, "PS3.8 9.2")
        elif sent.before == "Sta7":
            self.finding("warning", "UL-STATE-DATA-AFTER-RELEASE",
                         f"{SIDES[side]} sent P-DATA-TF after its own A-RELEASE-RQ "
                         f"({_where(sent)})", frame, "PS3.8 9.2")

    def _on_pdu(self, side: int, e) -> None:
        a = self.assoc
        t = type(e)
        ptype = _TYPE_OF.get(t)
        if ptype is not None:
            self._explain(side, ptype)
        steps = self.states.pdu(side, ptype) if ptype is not None else []
        if steps:
            self._data_ok()
        seen_before, self.seen_pdu = self.seen_pdu, self.seen_pdu or ptype is not None
        if t is ev.AssociateRQ:
            if side != REQUESTOR:
                self.finding("warning", "UL-RQ-FROM-ACCEPTOR",
                             "A-ASSOCIATE-RQ sent by the side that accepted the TCP connection",
                             e.frame, "PS3.8 9.2")
            if seen_before:
                self.finding("error", "UL-STATE-SECOND-RQ",
                             "a second A-ASSOCIATE-RQ on an association that already had one "
                             f"({_where(steps[0])})", e.frame, "PS3.8 9.2")
                return
            a.calling_ae, a.called_ae = e.calling_ae, e.called_ae
            a.protocol_version = e.protocol_version
            a.application_context = e.application_context
            a.request_frame = e.frame
            if a.start is None or not a.midstream:
                a.start = e.ts
            for c in e.contexts:
                a.contexts[c.id] = PresentationContext(c.id, c.abstract_syntax,
                                                       list(c.transfer_syntaxes))
            _side_from(e.user, a.requestor)
            self._max_pdu(pdu.REQUESTOR, e.user.max_pdu)
        elif t is ev.AssociateAC:
            received = steps[-1]
            if not received.valid:
                self.finding("error", "UL-STATE-AC",
                             f"A-ASSOCIATE-AC received by the {_where(received)}", e.frame,
                             "PS3.8 9.2")
            a.accept_frame = e.frame
            if a.calling_ae is None:
                a.calling_ae, a.called_ae = e.calling_ae, e.called_ae
            for c in e.contexts:
                pc = a.contexts.get(c.id)
                if pc is None:
                    pc = a.contexts[c.id] = PresentationContext(c.id)
                    if self.rq_lost:
                        continue  # the A-ASSOCIATE-RQ that proposed it was not captured
                    self.finding("error", "UL-AC-UNKNOWN-CONTEXT",
                                 f"A-ASSOCIATE-AC answers presentation context {c.id}, which "
                                 "the A-ASSOCIATE-RQ did not propose", e.frame, "PS3.8 9.3.3.2")
                pc.result = c.result
                pc.transfer_syntax = c.transfer_syntax if c.result == 0 else None
                if (c.result == 0 and pc.transfer_syntaxes
                        and c.transfer_syntax not in pc.transfer_syntaxes):
                    self.finding("error", "UL-AC-TS-NOT-PROPOSED",
                                 f"context {c.id} accepted with transfer syntax "
                                 f"{mark(c.transfer_syntax or '?')}, which was not proposed",
                                 e.frame, "PS3.8 9.3.3.2")
            _side_from(e.user, a.acceptor)
            self._max_pdu(pdu.ACCEPTOR, e.user.max_pdu)
            self._announce()
        elif t is ev.AssociateRJ:
            a.accept_frame = e.frame
            a.outcome = "rejected"
            a.reject = {"result": e.result, "source": e.source, "reason": e.reason}
            a.source = reject_source(e.source)
            a.reason = reject_reason(e.source, e.reason)
            a.end = e.ts
            self.finding("error", "ASSOC-REJECTED",
                         f"association rejected ({reject_result(e.result)}) by "
                         f"{a.source}: {a.reason}", e.frame, "PS3.8 9.3.4")
            self._announce()
        elif t is ev.ReleaseRQ:
            if any(s.action == "AR-8" for s in steps):
                self.finding("info", "UL-RELEASE-COLLISION",
                             "both sides sent A-RELEASE-RQ (release collision: AR-8, the "
                             "requestor goes to Sta9, the acceptor to Sta10)", e.frame,
                             "PS3.8 7.2.2")
            a.release_frames.append(e.frame)
        elif t is ev.ReleaseRP:
            a.release_frames.append(e.frame)
            if steps and steps[0].before == "Sta6" and steps[-1].before == "Sta6":
                self.finding("error", "UL-STATE-RP",
                             "A-RELEASE-RP without an A-RELEASE-RQ (the "
                             f"{_where(steps[-1])})", e.frame, "PS3.8 9.2")
            if a.outcome not in ("aborted", "rejected"):
                a.outcome = "released"
            a.end = e.ts
        elif t is ev.Abort:
            a.outcome = "aborted"
            a.abort = {"source": e.source, "reason": e.reason, "by": SIDES[side],
                       "frame": e.frame}
            a.source = abort_source(e.source)
            a.reason = abort_reason(e.reason, e.source)
            a.end = e.ts
            self.finding("error" if e.source == 2 else "warning", "ASSOC-ABORTED",
                         f"A-ABORT sent by the {SIDES[side]} (source: {a.source}; "
                         f"reason: {a.reason})", e.frame, "PS3.8 9.3.8")
        elif t is ev.Resync:
            lost = self.loss[side]
            if lost is not None and e.reason.startswith("after bytes missing from the capture"):
                lost.skipped += e.skipped  # part of the loss, told with it
                return
            expected = a.midstream and a.pdus[SIDES[side]] == {}  # picking up mid-stream
            self.finding("info" if expected else "warning", "UL-RESYNC",
                         f"{SIDES[side]}: skipped {e.skipped} bytes {e.reason}", e.frame,
                         "PS3.8 9.3.1")
        elif t is ev.StreamGap:
            self.asm[side].on_gap(e)
            lost = self.loss[side]
            if lost is None:
                lost = self.loss[side] = SideLoss()
            lost.add(e.missing, e.frame, e.resynchronised)  # told once, when it ends

    # -- capture loss ---------------------------------------------------------------------
    def _resumed(self, side: int) -> None:
        """A whole PDU or message of ``side`` was read after its loss: what it lost lies
        before, and what it sends from now on is its own."""
        lost = self.loss[side]
        if lost is not None:
            lost.open = False

    def _explain_end(self) -> None:
        """The connection closed (FIN) with neither release nor rejection seen: if a loss not
        yet accounted for could hold the A-RELEASE-RQ and/or -RP, or the A-ASSOCIATE-RJ,
        that end an association as the peers ended this one (PS3.8 Table 9-10: the TCP
        connection closes after the A-RELEASE-RP or the A-ASSOCIATE-RJ), the capture lost
        them: the association was released (rejected)."""
        loss = self.loss
        st = self.states
        if st.states[REQUESTOR] is None:
            return
        ends = {pdu.A_RELEASE_RP: "released", pdu.A_ASSOCIATE_RJ: "rejected"}
        cands = [(s, t) for s in (REQUESTOR, ACCEPTOR) if loss[s] is not None and loss[s].open
                 for t in (pdu.A_RELEASE_RQ, pdu.A_RELEASE_RP, pdu.A_ASSOCIATE_RJ)
                 if t != pdu.A_ASSOCIATE_RJ or s == ACCEPTOR]
        for seq in [(c,) for c in cands] + [(c, d) for c in cands for d in cands]:
            if seq[-1][1] not in ends or not _valid_after(st, seq[:-1], *seq[-1]):
                continue
            for s, t in seq:
                st.pdu(s, t)
                loss[s].carried_also(f"the {PDU_NAMES[t]}")  # type: ignore[union-attr]
            self.assoc.outcome = ends[seq[-1][1]]
            return

    def _explain(self, side: int, ptype: int) -> None:
        """Before ``side``'s PDU drives the machines: if the table refuses it and a loss
        not yet accounted for could hold the PDU(s) that make it valid, those were lost by
        the capture, not left out by the peers: apply them and say so in the loss."""
        loss = self.loss
        if not ((loss[0] is not None and loss[0].open)
                or (loss[1] is not None and loss[1].open)):
            return
        st = self.states
        if st.states[REQUESTOR] is None or _valid_after(st, (), side, ptype):
            return
        cands = [(s, t) for s in (REQUESTOR, ACCEPTOR) if loss[s] is not None and loss[s].open
                 for t in _LOSABLE[s]]
        for seq in [(c,) for c in cands] + [(c, d) for c in cands for d in cands]:
            if _valid_after(st, seq, side, ptype):
                for s, t in seq:
                    st.pdu(s, t)
                    loss[s].carried_also(f"the {PDU_NAMES[t]}")  # type: ignore[union-attr]
                    if t == pdu.A_ASSOCIATE_RQ:
                        self.rq_lost = True
                self._data_ok()
                return

    def _lost_request(self, side: int, what: str) -> bool:
        """A response from ``side`` answers no request seen: was the request lost?"""
        lost = self.loss[1 - side]
        if lost is None:
            return False
        lost.carried_also(what)
        return True

    def _lost_own_request(self, side: int, what: str) -> bool:
        """A C-CANCEL-RQ from ``side`` names a request not seen: did ``side``'s loss hold
        it?"""
        lost = self.loss[side]
        if lost is None:
            return False
        lost.carried_also(what)
        return True

    def _lost_response(self, t: Transaction, side: int) -> bool:
        """``t``, sent by ``side``, got no final response: did the capture lose it?"""
        lost = self.loss[1 - side]
        if lost is None or lost.last_frame < (t.request_frame or 0):
            return False
        lost.carried_also(f"the {t.command}-RSP (message {t.message_id})")
        t.response_lost = True
        return True

    def _report_loss(self) -> None:
        for s, lost in enumerate(self.loss):
            if lost is not None and lost.gaps:
                self.finding("warning", "TCP-GAP", lost.message(SIDES[s]), lost.frames[0], None)

    def _max_pdu(self, side: int, max_pdu: int) -> None:
        """``side`` announced its Maximum Length (PS3.8 D.1): the most its peer may send it."""
        if not max_pdu:
            return
        self.states.max_pdu[side] = max_pdu
        if self.ul is not None:
            self.ul[1 - side].set_max_pdu(max_pdu)

    # -- DIMSE ----------------------------------------------------------------------------
    def _on_messages(self, side: int, asm: MessageAssembler) -> None:
        if asm.problems:
            for frame, code, text in asm.problems:
                if (code == "DIMSE-DATA-ORPHAN" and self.assoc.midstream
                        and not self.seen_command[side]):
                    self.midstream_leftovers += 1  # the rest of a message begun before capture
                    continue
                lost = self.loss[side]
                if code == "DIMSE-DATA-ORPHAN" and lost is not None and lost.orphan(frame):
                    continue  # its command set was among the bytes the capture lost
                self.finding("warning" if code == "DIMSE-CMD-ORDER" else "error", code,
                             f"{SIDES[side]}: {text}", frame)
            asm.problems.clear()
        for kind, m in asm.out:
            if kind == "command":
                self._on_command(side, m)
            else:
                self._on_complete(side, m)
        asm.out.clear()

    def _on_command(self, side: int, m: Message) -> None:
        a = self.assoc
        cf = m.command_field
        cmd = m.command
        if cf == 0x0FFF:  # C-CANCEL-RQ refers to the request it cancels
            target = self.outstanding.get((side, cmd.get("MessageIDBeingRespondedTo", -1)))
            if target is not None:
                target.cancel_frame = m.frame
            elif not self._lost_own_request(
                    side, f"the request (message {cmd.get('MessageIDBeingRespondedTo')}) that "
                          "a C-CANCEL-RQ cancels"):
                self.finding("warning", "DIMSE-CANCEL-UNMATCHED",
                             f"C-CANCEL-RQ for message {cmd.get('MessageIDBeingRespondedTo')}, "
                             "which is not outstanding", m.frame, "PS3.7 9.3.2.3")
            return
        seen_before = self.seen_command[1 - side]
        self.seen_command[side] = True
        if cf & 0x8000:  # a response (is_response, inlined: once per message)
            mid = cmd.get("MessageIDBeingRespondedTo")
            t = self.outstanding.get((1 - side, mid)) if isinstance(mid, int) else None
            if t is None:
                if a.midstream and not seen_before:
                    self.midstream_leftovers += 1  # answers a request sent before the capture
                    return
                if self._lost_request(side, f"the {service_name(cf)}-RQ (message {mid})"):
                    return
                if self.untracked:
                    self.untracked_responses += 1  # may answer a request past the cap
                    return
                self.finding("error", "DIMSE-RSP-UNMATCHED",
                             f"{service_name(cf)}-RSP from the {SIDES[side]} answers message "
                             f"{mid}, for which no request is outstanding", m.frame, "PS3.7 9.3")
                return
            if (cf & 0x7FFF) != t.command_field:
                self.finding("error", "DIMSE-RSP-MISMATCH",
                             f"{service_name(cf)}-RSP answers message {mid}, a {t.command}-RQ",
                             m.frame, "PS3.7 9.3")
            status = cmd.get("Status")
            if len(t.response_frames) < self.max_response_frames:
                t.response_frames.append(m.frame)
            else:
                t.response_frames_dropped += 1
            m.owner = t
            if not isinstance(status, int):
                self.finding("error", "DIMSE-RSP-NO-STATUS",
                             f"{t.command}-RSP without a Status (0000,0900)", m.frame,
                             "PS3.7 9.3")
                return
            cat = _CATEGORY.get(status)
            if cat is None:
                cat = _CATEGORY[status] = status_category(status)
            t.status, t.status_category = status, cat
            if _REMAINING in cmd or _COMPLETED in cmd:
                self._suboperations(t, cmd)
            if cat == "Pending":
                t.pending += 1
                return
            t.status_meaning = status_meaning(status, t.command, t.sop_class)
            t.response_time = m.ts
            t.response_command = cmd
            t.error_comment = cmd.get("ErrorComment")  # type: ignore[assignment]
            del self.outstanding[(1 - side, mid)]
            self.final_waiting[id(m)] = t  # reported when its data set (if any) is in too
            return
        # A request.
        mid = cmd.get("MessageID")
        if len(self.outstanding) >= self.max_outstanding and isinstance(mid, int):
            self.untracked += 1  # past the cap: counted, not followed (CAP-OUTSTANDING)
            if self.untracked_frame is None:
                self.untracked_frame = m.frame
            return
        command = service_name(cf)
        pc = a.contexts.get(m.context_id)
        t = Transaction(
            id=self._txn_seq(), association=a.id, command=command, command_field=cf,
            message_id=mid if isinstance(mid, int) else None, context_id=m.context_id,
            sent_by=SIDES[side],
            sop_class=cmd.get("AffectedSOPClassUID") or cmd.get("RequestedSOPClassUID"),
            sop_instance=cmd.get("AffectedSOPInstanceUID") or cmd.get("RequestedSOPInstanceUID"),
            priority=cmd.get("Priority"), move_destination=cmd.get("MoveDestination"),
            request_frame=m.frame, request_time=m.ts,
            transfer_syntax=pc.transfer_syntax if pc else None,
            event_type=cmd.get("EventTypeID"), action_type=cmd.get("ActionTypeID"),
            request_command=cmd)
        a.transactions.append(t)
        m.owner = t
        if pc is None or (pc.result is not None and pc.result != 0):
            # (an A-ASSOCIATE-RQ not captured proposed contexts nobody saw)
            if not a.midstream and (pc is not None or a.request_frame is not None):
                why = "was never proposed" if pc is None else "was not accepted"
                self.finding("error", "DIMSE-CONTEXT-NOT-ACCEPTED",
                             f"{command}-RQ sent on presentation context {m.context_id}, which "
                             f"{why}", m.frame, "PS3.8 9.3.5 / PS3.7 7.1")
        if t.message_id is None:
            self._reported.add(id(t))  # nothing can answer it: nothing more to wait for
            return
        key = (side, t.message_id)
        old = self.outstanding.get(key)
        if old is not None:
            if self._lost_response(old, side):
                # its response was among the bytes the capture lost: done, reported now
                for cb in self.on_transaction:
                    cb(a, old)
                self._reported.add(id(old))
            else:
                self.finding("error", "DIMSE-DUPLICATE-MESSAGE-ID",
                             f"{command}-RQ reuses message ID {t.message_id} while an earlier "
                             "request with that ID is still outstanding", m.frame,
                             "PS3.7 9.1.1.1")
        self.outstanding[key] = t

    @staticmethod
    def _suboperations(t: Transaction, cmd: dict) -> None:
        if _SUBOPS[0] in cmd or _SUBOPS[1] in cmd:
            t.suboperations = {
                "remaining": cmd.get("NumberOfRemainingSuboperations"),
                "completed": cmd.get("NumberOfCompletedSuboperations"),
                "failed": cmd.get("NumberOfFailedSuboperations"),
                "warning": cmd.get("NumberOfWarningSuboperations")}

    def _on_complete(self, side: int, m: Message) -> None:
        t = m.owner
        if t is None:
            return
        m.owner = None
        if m.command_field & 0x8000:  # a response
            t.response_dataset_bytes += m.dataset_bytes
            waiting = self.final_waiting  # empty but for a final response's data set
            if waiting and waiting.pop(id(m), None) is not None:
                for cb in self.on_transaction:
                    cb(self.assoc, t)
                self._reported.add(id(t))
                if len(self.assoc.transactions) > self.max_kept + self._kept_after:
                    self._retire()
            return
        t.request_end_time = m.end_ts
        t.dataset_bytes = m.dataset_bytes
        t.dataset_partial = m.partial
        t.dataset_missing = m.dataset_missing
        if m.dataset_first_frame is not None and m.dataset_last_frame is not None:
            t.dataset_frames = (m.dataset_first_frame, m.dataset_last_frame)

    def _retire(self) -> None:
        """Past ``max_kept``: the transactions already reported leave the association (in
        their order), handed to ``on_retire`` first; the open ones stay."""
        a = self.assoc
        done = self._reported
        keep = []
        for t in a.transactions:
            if id(t) in done:
                for cb in self.on_retire:
                    cb(a, t)
                a.transactions_retired += 1
            else:
                keep.append(t)
        a.transactions = keep
        done.clear()
        self._kept_after = len(keep)

    # -- the end --------------------------------------------------------------------------
    def finish(self, how: str, frame: int | None, ts: float | None) -> None:
        """The connection is over: ``how`` is "fin", "rst" or "eof" (capture ended)."""
        a = self.assoc
        for s in (REQUESTOR, ACCEPTOR):
            self.asm[s].close(frame or 0, ts or 0.0)
            if self.asm[s].out or self.asm[s].problems:
                self._on_messages(s, self.asm[s])
        if self.ul is not None:
            for s, ul in enumerate(self.ul):
                if ul.pdata_count:
                    a.pdus[SIDES[s]]["P-DATA-TF"] = ul.pdata_count
        if self.untracked:
            self.finding("warning", "CAP-OUTSTANDING",
                         f"{self.untracked} request(s) arrived while {self.max_outstanding} "
                         "were already waiting for their responses (the cap on outstanding "
                         "requests per association): counted, not followed; "
                         f"{self.untracked_responses} response(s) matched none of the followed "
                         "requests and were counted with them", self.untracked_frame,
                         "PS3.7 D.3.3.3")
        if self.midstream_leftovers:
            self.finding("info", "CAPTURE-MIDSTREAM",
                         f"the capture started inside this association: "
                         f"{self.midstream_leftovers} fragment(s) or response(s) belong to "
                         "messages sent before the first captured packet", a.first_frame, None)
        if a.outcome == "incomplete" and how == "fin":
            self._explain_end()
        if a.outcome == "incomplete":
            if how == "eof":
                a.outcome = "incomplete"
                if self.seen_pdu:
                    self.finding("info", "ASSOC-OPEN-AT-END",
                                 "the capture ended while the association was still open",
                                 frame, None)
            else:
                a.outcome = "closed"
                self.finding("error" if how == "rst" else "warning", "ASSOC-CLOSED-NO-RELEASE",
                             f"TCP connection {'reset' if how == 'rst' else 'closed'} without "
                             "A-RELEASE or A-ABORT", frame, "PS3.8 9.1.6")
        if a.end is None:
            a.end = ts
        for (s, mid), t in self.outstanding.items():
            if t.status is None or t.status_category == "Pending":
                if not self._lost_response(t, s):  # else: among bytes the capture lost
                    ended = ("the capture ended" if a.outcome == "incomplete"
                             else "the association ended")
                    self.finding("info" if a.outcome == "incomplete" else "warning",
                                 "DIMSE-NO-RESPONSE",
                                 f"{t.command}-RQ (message {mid}) from the {SIDES[s]} got no "
                                 f"final response before {ended}", t.request_frame,
                                 "PS3.7 9.3")
                for cb in self.on_transaction:
                    cb(a, t)  # unanswered: reported when the association ends
        self._report_loss()
        for t in self.final_waiting.values():  # final responses whose data set never ended
            for cb in self.on_transaction:
                cb(a, t)
        self.final_waiting.clear()
        self.outstanding.clear()


_TYPE_OF = {ev.AssociateRQ: pdu.A_ASSOCIATE_RQ, ev.AssociateAC: pdu.A_ASSOCIATE_AC,
            ev.AssociateRJ: pdu.A_ASSOCIATE_RJ, ev.ReleaseRQ: pdu.A_RELEASE_RQ,
            ev.ReleaseRP: pdu.A_RELEASE_RP, ev.Abort: pdu.A_ABORT}
_PDU_OF = {t: PDU_NAMES[n] for t, n in _TYPE_OF.items()}
_PdvDataRun = ev.PdvDataRun
_PdvCommand, _PdvData, _DataComplete, _PdvBytes = (ev.PdvCommand, ev.PdvData, ev.DataComplete,
                                                   ev.PdvBytes)
_PDataTF, _Malformed = ev.PDataTF, ev.Malformed
# PDUs a loss may have held, by sender, that the state machine can ask for: the rest of the
# negotiation and the release (an A-ABORT or P-DATA never makes another PDU valid).
_LOSABLE = {REQUESTOR: (pdu.A_ASSOCIATE_RQ, pdu.A_RELEASE_RQ, pdu.A_RELEASE_RP),
            ACCEPTOR: (pdu.A_ASSOCIATE_AC, pdu.A_RELEASE_RQ, pdu.A_RELEASE_RP)}


def _valid_after(st: AssociationStates, lost: tuple, sender: int, ptype: int) -> bool:
    """Would ``sender``'s PDU ``ptype`` be valid after the ``lost`` (sender, type) PDUs?
    Tried on a copy of the machines."""
    trial = st.copy()
    for s, t in lost:
        if not all(step.valid for step in trial.pdu(s, t)):
            return False
    return all(step.valid for step in trial.pdu(sender, ptype))
