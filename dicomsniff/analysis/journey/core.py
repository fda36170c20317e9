"""The journey: follows studies across associations, AEs and services, with bounded state.

:class:`Journey` subscribes to an Analyzer's hooks. When an association's negotiation is
answered it chooses what to read (:mod:`.collect`); data sets arrive as their messages end
(:meth:`Journey.on_data`) and wait, keyed by association, direction and Message ID, for their
transaction's final response (:meth:`Journey.on_transaction`), which files them into the
study they belong to: a worklist item, an MPPS status change, a stored instance, a commitment
request or report, an IAN. Print and UPS traffic go to :mod:`.printing` and :mod:`.ups`.

State is per study, capped (``max_studies``; the oldest is judged and released early, with a
STUDY-CAP finding) and released when the study's last open association ends once its journey
is complete (MPPS final, every stored instance's commitment answered, an IAN in). A study that
is complete but for an IAN waits ``settle_wait`` seconds of capture time for one (IANs come
after commitment, on an association of their own), an incomplete one ``idle_wait`` for later
associations; the end of the capture releases the rest. Indexes that link a commitment or MPPS
instance back to its study are bounded maps (oldest forgotten first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...model import Association, Finding, Transaction
from ..rules.base import CODES
from ..rules.journey import CAP, FAILED, STORE_CUT
from ..rules.state import Bounded
from . import checks, collect, kinds
from .decode import decode, esc, integer, items, text
from .headers import sniff_encoding
from .study import MAX_EVENTS, MAX_TRANSITIONS, Commit, Ian, Instance, Mpps, Scheduled, Seen, Study

MAX_PER_STUDY = 20_000  # instances kept per study (the rest are counted)
MAX_PENDING = 4096  # decoded data sets waiting for their transaction, per association
MAX_ITEMS = 10_000  # worklist items read from one C-FIND

# (explicit VR, little endian) told from the bytes -> the transfer syntax to decode with
SNIFFED = {(True, True): "1.2.840.10008.1.2.1", (False, True): "1.2.840.10008.1.2",
           (True, False): "1.2.840.10008.1.2.2"}

ATTRS = ("patient_id", "patient_name", "accession_number", "study_instance_uid",
         "requested_procedure_id", "sps_id")


def _ends(a: Association, t: Transaction) -> tuple[str | None, str | None]:
    """(sender AE, receiver AE) of a request."""
    if t.sent_by == "requestor":
        return a.calling_ae, a.called_ae
    return a.called_ae, a.calling_ae


class Journey:
    """Studies followed across a capture; ``on_study`` hooks get each one when released."""

    def __init__(self, emit: Callable[[Finding], None] | None = None, *,
                 max_studies: int = 10_000, max_tracked: int = 100_000,
                 settle_wait: float = 300.0, idle_wait: float = 3600.0,
                 disabled: frozenset[str] = frozenset()) -> None:
        self.emit = emit or (lambda f: None)
        self.disabled = disabled
        self.max_studies = max_studies
        self.studies: dict[str, Study] = {}  # insertion-ordered; capped in _study
        self.instance_study: Bounded[str, str] = Bounded(max_tracked)
        self.mpps_study: Bounded[str, str] = Bounded(max_tracked)
        self.mpps_orphans: Bounded[str, Mpps] = Bounded(max(1024, max_tracked // 100))
        self.commits: Bounded[str, tuple[str, Commit]] = Bounded(max(1024, max_tracked // 10))
        self.worklist: Bounded[str, Scheduled] = Bounded(max_tracked)  # study UID -> item
        self.by_accession: Bounded[str, str] = Bounded(max_tracked)
        self.by_sps: Bounded[str, str] = Bounded(max_tracked)
        self.worklist_modalities: set[str] = set()
        self.worklist_seen = False
        self.ian_seen = False
        self.touched: dict[int, set[str]] = {}  # open association -> studies it carried
        self.pending: dict[tuple[int, int, int], list[Any]] = {}
        self.pending_count: dict[int, int] = {}
        self.on_study: list[Callable[[Study], None]] = []
        # Studies with no open association, oldest first: released after these waits
        # (capture time) unless an association carries them again.
        self.idle_settled: dict[str, float] = {}
        self.idle_open: dict[str, float] = {}
        self.settle_wait = settle_wait
        self.idle_wait = idle_wait
        self.released = 0
        self.evicted = 0
        self.headers_read = 0
        self.headers_failed = 0
        self.cut: dict[int, list[dict[str, Any]]] = {}  # association -> C-STOREs cut
        self.cut_instances: Bounded[str, bool] = Bounded(max(1024, max_tracked // 100))
        self.policy: collect.JourneyPolicy | None = None
        self.max_tracked = max_tracked
        # Print and UPS trackers (and their modules) are made at their first transaction:
        # most captures hold neither, and every start would pay for them.
        self._printing: Any = None
        self._ups: Any = None

    @property
    def printing(self) -> Any:
        """The :class:`~.printing.PrintTracker` (made on first use)."""
        if self._printing is None:
            from .printing import PrintTracker

            self._printing = PrintTracker(self._emit_hit)
        return self._printing

    @property
    def ups(self) -> Any:
        """The :class:`~.ups.UpsTracker` (made on first use)."""
        if self._ups is None:
            from .ups import UpsTracker

            self._ups = UpsTracker(self._emit_hit, self.max_tracked)
        return self._ups

    # -- wiring -------------------------------------------------------------------------------
    def attach(self, analyzer: Any) -> Journey:
        """Follow ``analyzer``: its hooks, a collection policy; findings go to its ``emit``.
        (The engine attaches a :class:`~.lazy.LazyJourney` instead, which makes a Journey
        only when the capture needs one.)"""
        self.follow(analyzer)
        analyzer.on_transaction.append(self.on_transaction)
        analyzer.on_association.append(self.on_association)
        analyzer.collect(self.policy)
        from .web import WebStores  # STOW-RS stores: images arriving at the archive too

        WebStores(self).attach(analyzer)
        return self

    def follow(self, analyzer: Any) -> collect.JourneyPolicy:
        """What :meth:`attach` does but subscribe: findings to ``analyzer.emit``, its
        disabled rules, the collection policy made (returned); the caller delivers."""
        self.emit = analyzer.emit
        self.disabled = analyzer.rules.config.disabled
        self.policy = collect.JourneyPolicy(self.on_data, self.on_cut)
        return self.policy

    # -- data sets ----------------------------------------------------------------------------
    def on_data(self, a: Association, side: int, m: Any, got: Any) -> None:
        """A data set the journey reads has ended (see :mod:`.collect`)."""
        cmd = m.command
        mid = cmd.get("MessageIDBeingRespondedTo", cmd.get("MessageID"))
        if not isinstance(mid, int):
            return
        if self.pending_count.get(a.id, 0) >= MAX_PENDING:
            return
        if isinstance(got, tuple):  # (SmallSink, transfer syntax)
            sink, ts = got
            if sink.buf is None or sink.partial:
                value: Any = {"error": "data set too large or cut by bytes missing from the "
                                       "capture", "size": sink.size}
            elif ts is None and a.midstream:  # negotiation not captured: tell, never guess
                enc = sniff_encoding(bytes(sink.buf[:8]))
                ds, err = (decode(bytes(sink.buf), SNIFFED[enc]) if enc is not None else
                           (None, "transfer syntax not captured and not told by the bytes"))
                value = ds if err is None else {"error": err, "size": sink.size}
            else:
                ds, err = decode(bytes(sink.buf), ts)
                value = ds if err is None else {"error": err, "size": sink.size}
        else:  # a HeaderReader
            if got.error:
                self.headers_failed += 1
            else:
                self.headers_read += 1
            value = got
        key = (a.id, side, mid)
        lst = self.pending.get(key)
        if lst is None:
            lst = self.pending[key] = []
        if len(lst) < MAX_ITEMS:
            lst.append(value)
            self.pending_count[a.id] = self.pending_count.get(a.id, 0) + 1

    def _take(self, aid: int, side: int, mid: int | None) -> list[Any]:
        if mid is None:
            return []
        lst = self.pending.pop((aid, side, mid), None)
        if lst:
            self.pending_count[aid] = max(0, self.pending_count.get(aid, 0) - len(lst))
        return lst or []

    def on_cut(self, a: Association, m: Any) -> None:
        """A C-STORE-RSP answering a request sent before the capture began (see collect)."""
        lst = self.cut.setdefault(a.id, [])
        if len(lst) >= collect.MAX_CUT:
            return
        cmd = m.command
        sop = cmd.get("AffectedSOPInstanceUID")
        status = cmd.get("Status")
        lst.append({"sop_instance": esc(sop) if isinstance(sop, str) and sop else None,
                    "status": status if isinstance(status, int) else None,
                    "frame": m.frame, "association": a.id})
        if isinstance(sop, str) and sop:
            self.cut_instances.put(esc(sop), True)

    # -- transactions -------------------------------------------------------------------------
    def on_transaction(self, a: Association, t: Transaction) -> None:
        req_side = 0 if t.sent_by == "requestor" else 1
        req = self._take(t.association, req_side, t.message_id)
        rsp = self._take(t.association, 1 - req_side, t.message_id)
        cls = t.sop_class or ""
        try:
            if t.command == "C-STORE":
                self._store(a, t, req)
            elif cls == kinds.WORKLIST and t.command == "C-FIND":
                self._worklist(a, t, req, rsp)
            elif cls == kinds.MPPS:
                self._mpps(a, t, req)
            elif cls == kinds.COMMITMENT:
                self._commitment(a, t, req)
            elif cls == kinds.IAN and t.command == "N-CREATE":
                self._ian(a, t, req)
            elif cls.startswith(kinds.UPS_PREFIX):
                self.ups.transaction(a, t, _ds(req), _ds(rsp))
            elif cls.startswith(kinds.PRINT_PREFIX):
                self.printing.transaction(a, t, _ds(req), _ds(rsp))
        except Exception as exc:  # a journey bug must not stop the analysis
            self._emit_hit(checks.Hit(FAILED, f"the study journey could not file "
                                      f"transaction {t.id} ({t.command}): "
                                      f"{type(exc).__name__}: {exc}", t.request_frame), None)

    def _seen(self, a: Association, t: Transaction) -> Seen:
        s, r = _ends(a, t)
        return Seen(s, r, a.id, t.request_frame, t.request_time)

    def _study(self, uid: str, a: Association, frame: int | None,
               ts: float | None) -> Study:
        return self._study_in(uid, a.id, frame, ts)

    def _study_in(self, uid: str, carrier: int, frame: int | None, ts: float | None) -> Study:
        self.idle_settled.pop(uid, None)
        self.idle_open.pop(uid, None)
        st = self.studies.get(uid)
        if st is None:
            if len(self.studies) >= self.max_studies:
                self._evict()
            st = Study(uid)
            self.studies[uid] = st
        st.touch(carrier, frame, ts)
        self.touched.setdefault(carrier, set()).add(uid)
        return st

    def _evict(self) -> None:
        uid, st = next(iter(self.studies.items()))
        self.evicted += 1
        if self.evicted == 1:
            self._emit_hit(checks.Hit(CAP, f"more than {self.max_studies} studies "
                                      "followed at once: the oldest are judged early and "
                                      "released (what comes later about them is not matched)",
                                      st.last_frame), None)
        self._release(uid)

    def _instance(self, st: Study, uid: str) -> Instance | None:
        inst = st.instances.get(uid)
        if inst is None:
            if len(st.instances) >= MAX_PER_STUDY:
                st.dropped += 1
                return None
            inst = st.instances[uid] = Instance(uid)
            self.instance_study.put(uid, st.uid)
            if uid in self.cut_instances:  # stored before the capture began
                st.midstream = True
        return inst

    def _store(self, a: Association, t: Transaction, req: list[Any]) -> None:
        reader = req[0] if req else None
        v = reader.values if reader is not None else {}
        self.stored(a.id, self._seen(a, t), t.sop_instance or v.get("sop_instance"),
                    t.sop_class, t.status_category, v, a.midstream)

    def stored(self, carrier: int, seen: Seen, sop: str | None, sop_class: str | None,
               status_category: str | None, v: dict[str, Any], midstream: bool = False) -> None:
        """An instance stored (a C-STORE, or a STOW-RS part: see :mod:`.web`), with the
        attributes its header showed (``v``, a HeaderReader's values); ``carrier`` is the
        association or HTTP connection (its end is :meth:`carrier_ended`)."""
        study_uid = v.get("study_instance_uid")
        if not isinstance(study_uid, str) or not study_uid or not sop:
            return
        st = self._study_in(study_uid, carrier, seen.frame, seen.ts)
        inst = self._instance(st, sop)
        if inst is None:
            return
        if midstream:
            st.midstream = True
        inst.stored, inst.store_status = seen, status_category
        inst.stored_to = seen.receiver
        inst.sop_class = sop_class
        inst.series = v.get("series_instance_uid") or inst.series  # type: ignore[assignment]
        inst.attrs = {
            "patient_id": v.get("patient_id"), "patient_name": v.get("patient_name"),
            "accession_number": v.get("accession_number"), "study_instance_uid": study_uid,
            "requested_procedure_id": v.get("requested_procedure_id"),
            "sps_id": v.get("sps_id"), "modality": v.get("modality"),
            "pps_id": v.get("pps_id"),
        }  # type: ignore[dict-item]
        for ref in v.get("pps_instances") or []:
            self._link_mpps(st, str(ref))

    def _link_mpps(self, st: Study, mpps_uid: str) -> None:
        if mpps_uid in st.mpps:
            return
        m = self.mpps_orphans.pop(mpps_uid, None)
        if m is None:
            other = self.mpps_study.get(mpps_uid)
            if other is None or other == st.uid:
                return
            ost = self.studies.get(other)
            m = ost.mpps.pop(mpps_uid, None) if ost is not None else None
            if m is None:
                return
            if ost is not None and not (ost.instances or ost.mpps or ost.commits or ost.ians):
                # The MPPS named a Study Instance UID the images do not carry: its study is
                # the images' (the findings compare the two), and the empty one goes.
                self._forget(other)
        st.mpps[mpps_uid] = m
        self.mpps_study.put(mpps_uid, st.uid)
        for uid, series in m.instances.items():
            inst = self._instance(st, uid)
            if inst is not None:
                inst.in_mpps = mpps_uid
                inst.series = inst.series or series

    def _worklist(self, a: Association, t: Transaction, req: list[Any],
                  rsp: list[Any]) -> None:
        self.worklist_seen = True
        q = _ds(req)
        for sps in items(q, "ScheduledProcedureStepSequence")[:1]:
            mod = text(sps, "Modality")
            if mod and len(self.worklist_modalities) < 64:
                self.worklist_modalities.add(mod)
        for ds in rsp:
            if isinstance(ds, dict):
                continue
            study_uid = text(ds, "StudyInstanceUID")
            steps = items(ds, "ScheduledProcedureStepSequence")
            sps = steps[0] if steps else None
            attrs = {"patient_id": text(ds, "PatientID"),
                     "patient_name": text(ds, "PatientName"),
                     "accession_number": text(ds, "AccessionNumber"),
                     "study_instance_uid": study_uid,
                     "requested_procedure_id": text(ds, "RequestedProcedureID"),
                     "sps_id": text(sps, "ScheduledProcedureStepID")}
            mod = text(sps, "Modality")
            if mod and len(self.worklist_modalities) < 64:
                self.worklist_modalities.add(mod)
            item = Scheduled(attrs, mod, text(sps, "ScheduledStationAETitle"),
                             " ".join(x for x in (text(sps, "ScheduledProcedureStepStartDate"),
                                                  text(sps, "ScheduledProcedureStepStartTime"))
                                      if x) or None,
                             Seen(a.called_ae if t.sent_by == "requestor" else a.calling_ae,
                                  a.calling_ae if t.sent_by == "requestor" else a.called_ae,
                                  a.id, t.request_frame, t.request_time))
            key = study_uid or f"sps:{attrs['sps_id']}"
            self.worklist.put(key, item)
            if attrs["accession_number"]:
                self.by_accession.put(attrs["accession_number"], key)
            if attrs["sps_id"]:
                self.by_sps.put(attrs["sps_id"], key)

    def _mpps(self, a: Association, t: Transaction, req: list[Any]) -> None:
        uid = t.sop_instance
        if not uid or t.command not in ("N-CREATE", "N-SET"):
            return
        ds = _ds(req)
        status = text(ds, "PerformedProcedureStepStatus")
        ok = t.status_category in ("Success", "Warning")
        sid = self.mpps_study.get(uid)
        st = self.studies.get(sid) if sid else None
        m = st.mpps.get(uid) if st is not None else self.mpps_orphans.get(uid)
        if t.command == "N-CREATE":
            steps = items(ds, "ScheduledStepAttributesSequence")
            s0 = steps[0] if steps else None
            study_uid = text(s0, "StudyInstanceUID")
            m = m or Mpps(uid)
            m.attrs = {"patient_id": text(ds, "PatientID"),
                       "patient_name": text(ds, "PatientName"),
                       "accession_number": text(s0, "AccessionNumber"),
                       "study_instance_uid": study_uid,
                       "requested_procedure_id": text(s0, "RequestedProcedureID"),
                       "sps_id": text(s0, "ScheduledProcedureStepID"),
                       "pps_id": text(ds, "PerformedProcedureStepID"),
                       "modality": text(ds, "Modality"),
                       "performed_station_ae": text(ds, "PerformedStationAETitle")}
            m.created = self._seen(a, t)
            if study_uid and st is None:
                st = self._study(study_uid, a, t.request_frame, t.request_time)
                st.mpps[uid] = m
                self.mpps_study.put(uid, study_uid)
                self.mpps_orphans.pop(uid, None)
            elif st is None:
                self.mpps_orphans.put(uid, m)
        if m is None:
            return  # an N-SET of an MPPS created before the capture began
        if st is not None:
            st.touch(a.id, t.request_frame, t.request_time)
            self.touched.setdefault(a.id, set()).add(st.uid)
        if len(m.transitions) < MAX_TRANSITIONS:
            m.transitions.append((status if ok else f"refused ({t.status_meaning or t.status})",
                                  self._seen(a, t), t.command))
        if ok and status:
            m.status = status
        for series in items(ds, "PerformedSeriesSequence"):
            suid = text(series, "SeriesInstanceUID")
            m.series += 1
            refs = (items(series, "ReferencedImageSequence")
                    + items(series, "ReferencedNonImageCompositeSOPInstanceSequence"))
            for ref in refs:
                sop = text(ref, "ReferencedSOPInstanceUID")
                if sop and len(m.instances) < MAX_PER_STUDY:
                    m.instances[sop] = suid
        if st is None:
            # Unscheduled and no Study Instance UID: link through an instance it lists.
            for sop in m.instances:
                sid = self.instance_study.get(sop)
                if sid and sid in self.studies:
                    st = self.studies[sid]
                    break
            if st is None:
                return
            st.touch(a.id, t.request_frame, t.request_time)
            self.touched.setdefault(a.id, set()).add(st.uid)
            st.mpps[uid] = m
            self.mpps_study.put(uid, st.uid)
            self.mpps_orphans.pop(uid, None)
        for sop, suid in m.instances.items():
            inst = self._instance(st, sop)
            if inst is not None:
                inst.in_mpps = uid
                inst.series = inst.series or suid

    def _commitment(self, a: Association, t: Transaction, req: list[Any]) -> None:
        ds = _ds(req)
        tuid = text(ds, "TransactionUID")
        if t.command == "N-ACTION" and t.status_category in ("Success", "Warning"):
            c = Commit(tuid, self._seen(a, t))
            refs = [text(r, "ReferencedSOPInstanceUID") for r in
                    items(ds, "ReferencedSOPSequence")]
            c.requested = [r for r in refs if r][:MAX_PER_STUDY]
            st = self._study_of(c.requested, a, t)
            if st is None:
                return
            if len(st.commits) < MAX_EVENTS:
                st.commits.append(c)
            if tuid:
                self.commits.put(tuid, (st.uid, c))
            for uid in c.requested:
                self._instance(st, uid)
        elif t.command == "N-EVENT-REPORT" and t.event_type in (1, 2):
            ok = [text(r, "ReferencedSOPInstanceUID") for r in items(ds, "ReferencedSOPSequence")]
            bad = [(text(r, "ReferencedSOPInstanceUID"), integer(r, "FailureReason"))
                   for r in items(ds, "FailedSOPSequence")]
            found = self.commits.get(tuid) if tuid else None
            if found is not None and found[0] in self.studies:
                st, c = self.studies[found[0]], found[1]
                st.touch(a.id, t.request_frame, t.request_time)
                self.touched.setdefault(a.id, set()).add(st.uid)
            else:
                st = self._study_of([u for u in ok if u] + [u for u, _ in bad if u], a, t)
                if st is None:
                    return
                c = Commit(tuid, None)
                if len(st.commits) < MAX_EVENTS:
                    st.commits.append(c)
            c.report = self._seen(a, t)
            c.event_type = t.event_type
            c.committed = [u for u in ok if u][:MAX_PER_STUDY]
            c.failed = [(u, r) for u, r in bad if u][:MAX_PER_STUDY]
            for uid in c.committed:
                inst = self._instance(st, uid)
                if inst is not None:
                    inst.committed = True
            for uid, reason in c.failed:
                inst = self._instance(st, uid)
                if inst is not None and not inst.committed:
                    inst.committed, inst.failure = False, reason

    def _study_of(self, uids: list[str], a: Association, t: Transaction) -> Study | None:
        """The study most of these instances belong to (a commitment names no study)."""
        votes: dict[str, int] = {}
        for u in uids:
            sid = self.instance_study.get(u)
            if sid is not None and sid in self.studies:
                votes[sid] = votes.get(sid, 0) + 1
        if not votes:
            return None
        sid = max(votes, key=lambda k: votes[k])
        return self._study(sid, a, t.request_frame, t.request_time)

    def _ian(self, a: Association, t: Transaction, req: list[Any]) -> None:
        self.ian_seen = True
        ds = _ds(req)
        study_uid = text(ds, "StudyInstanceUID")
        if not study_uid:
            return
        st = self._study(study_uid, a, t.request_frame, t.request_time)
        ian = Ian(self._seen(a, t))
        for series in items(ds, "ReferencedSeriesSequence"):
            for ref in items(series, "ReferencedSOPSequence"):
                uid = text(ref, "ReferencedSOPInstanceUID")
                if not uid or len(ian.instances) >= MAX_PER_STUDY:
                    continue
                ian.instances.append(uid)
                av = text(ref, "InstanceAvailability") or "?"
                ian.availability[av] = ian.availability.get(av, 0) + 1
                inst = self._instance(st, uid)
                if inst is not None:
                    inst.in_ian = True
                    inst.series = inst.series or text(series, "SeriesInstanceUID")
        if len(st.ians) < MAX_EVENTS:
            st.ians.append(ian)

    # -- association end, release ------------------------------------------------------------
    def on_association(self, a: Association) -> None:
        if self._printing is not None:
            self._printing.association_ended(a)
        if self.policy is not None:
            self.policy.ended(a)
        cut = self.cut.pop(a.id, None)
        if cut:
            self._cut_finding(a, cut)
        if self.pending_count.pop(a.id, 0):
            for key in [k for k in self.pending if k[0] == a.id]:
                del self.pending[key]
        self.carrier_ended(a.id, a.end if a.end is not None else a.start)

    def carrier_ended(self, carrier: int, now: float | None) -> None:
        """An association or HTTP connection that carried studies is over."""
        for uid in self.touched.pop(carrier, ()):
            st = self.studies.get(uid)
            if st is None:
                continue
            st.open.discard(carrier)
            if st.open:
                continue
            if self._settled(st) and (st.ians or not self.ian_seen):
                if st.ians:
                    self._release(uid)  # nothing more is expected
                    continue
                self.idle_settled[uid] = now or 0.0  # an IAN may still come
            else:
                self.idle_open[uid] = now or 0.0
        if now is not None:
            self._expire(now)

    def _cut_finding(self, a: Association, cut: list[dict[str, Any]]) -> None:
        """The C-STOREs the capture's start cut: what the responses say, and the studies the
        association's later instances belong to, named as such (never attributed)."""
        studies = sorted(self.touched.get(a.id, ()))
        for st_uid in studies:
            st = self.studies.get(st_uid)
            if st is not None and len(st.cut) < collect.MAX_CUT:
                st.cut.extend(cut[:collect.MAX_CUT - len(st.cut)])
        named = [c for c in cut if c["sop_instance"]]
        what = ", ".join(f"{c['sop_instance']} ({_status(c['status'])}, frame {c['frame']})"
                         for c in named[:5]) or "no SOP Instance UID in the response"
        later = (f"; the association's later instances belong to study "
                 f"{', '.join(studies[:3])}" if studies else "")
        self._emit_hit(checks.Hit(
            STORE_CUT, f"{len(cut)} C-STORE(s) from {esc(a.calling_ae or '?')} to "
            f"{esc(a.called_ae or '?')} on association #{a.id} began before the capture "
            f"did: only the response was captured ({what}); their data set headers were "
            f"not, so their study is not known (not guessed){later}",
            cut[0]["frame"], [c["frame"] for c in cut],
            uids={"sop_instances": [c["sop_instance"] for c in named][:20],
                  "association_studies": studies[:20]}, association=a), None)

    def _expire(self, now: float) -> None:
        """Release studies idle for longer than their wait (capture time)."""
        for idle, wait in ((self.idle_settled, self.settle_wait), (self.idle_open, self.idle_wait)):
            while idle:
                uid, since = next(iter(idle.items()))
                if now - since < wait:
                    break
                del idle[uid]
                st = self.studies.get(uid)
                if st is not None and not st.open:
                    self._release(uid)

    def _settled(self, st: Study) -> bool:
        """MPPS final and every stored instance's commitment answered (see the module doc)."""
        if any(not m.final for m in st.mpps.values()):
            return False
        stored = [i for i in st.instances.values() if i.stored_ok]
        return bool(stored) and all(i.committed is not None for i in stored)

    def _forget(self, uid: str) -> None:
        """Drop a study that turned out to be empty, without judging it."""
        self.studies.pop(uid, None)
        self.idle_settled.pop(uid, None)
        self.idle_open.pop(uid, None)

    def _release(self, uid: str) -> None:
        self.idle_settled.pop(uid, None)
        self.idle_open.pop(uid, None)
        st = self.studies.pop(uid, None)
        if st is None:
            return
        if not st.judged:
            st.judged = True
            self._match_worklist(st)
            for hit in checks.judge(st, self):
                self._emit_hit(hit, st)
        self.released += 1
        for cb in self.on_study:
            cb(st)

    def _match_worklist(self, st: Study) -> None:
        """The worklist item this study performed: by Study Instance UID, else by Accession
        Number, else by Scheduled Procedure Step ID (then the Study Instance UID changed)."""
        item = self.worklist.get(st.uid)
        if item is not None:
            st.scheduled, st.how_matched = item, "study_instance_uid"
            return
        for attr, index in (("accession_number", self.by_accession), ("sps_id", self.by_sps)):
            for src in [*(m.attrs for m in st.mpps.values()),
                        *(i.attrs for i in st.instances.values() if i.attrs)]:
                v = src.get(attr)
                key = index.get(v) if v else None
                if key is not None and key in self.worklist:
                    st.scheduled, st.how_matched = self.worklist[key], attr
                    return

    def finish(self) -> None:
        """End of capture: every study still followed is judged as it stands."""
        for uid in list(self.studies):
            self._release(uid)
        if self._printing is not None:
            self._printing.finish()
        if self._ups is not None:
            self._ups.finish()

    # -- findings -----------------------------------------------------------------------------
    def _emit_hit(self, hit: checks.Hit, st: Study | None) -> None:
        if hit.code in self.disabled:
            return
        c = CODES[hit.code]
        f = Finding(hit.severity or c.severity, hit.code, hit.message, hit.frame,
                    hit.association, hit.section or c.section, hit.frames)
        if hit.uids:
            f.uids = hit.uids
        if st is not None:
            st.findings.append(hit.code)
        if hit.assoc_obj is not None:
            hit.assoc_obj.findings.append(f)
        self.emit(f)


def _ds(lst: list[Any]) -> Any:
    """The first decoded data set of a list (None when absent or undecodable)."""
    for x in lst:
        if not isinstance(x, dict):
            return x
    return None


def _status(status: int | None) -> str:
    return f"status 0x{status:04X}" if status is not None else "no status"
