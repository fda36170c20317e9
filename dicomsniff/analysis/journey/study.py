"""A study's journey as records: what was scheduled, performed, stored, committed, available.

Plain slotted classes (no dataclasses: import time is part of analysing a small capture). One
:class:`Study` per Study Instance UID, holding its instances, the MPPS that performed it, its
commitment transactions and IANs, each with the AEs and frames that carried it; ``to_record``
is the ``{"type": "study"}`` JSON record (docs/studies.md).
"""

from __future__ import annotations

from typing import Any

FINAL_PPS = ("COMPLETED", "DISCONTINUED")
MAX_TRANSITIONS = 32  # MPPS status changes kept per MPPS
MAX_EVENTS = 64  # commitment transactions and IANs kept per study


class Seen:
    """Where a fact came from: AEs, association, frame, capture time."""

    __slots__ = ("sender", "receiver", "assoc", "frame", "ts")

    def __init__(self, sender: str | None, receiver: str | None, assoc: int,
                 frame: int | None, ts: float | None) -> None:
        self.sender, self.receiver, self.assoc, self.frame, self.ts = (sender, receiver, assoc,
                                                                       frame, ts)

    def record(self) -> dict[str, Any]:
        return {"from": self.sender, "to": self.receiver, "association": self.assoc,
                "frame": self.frame, "time": self.ts}


class Scheduled:
    """One worklist item (a scheduled procedure step) as a worklist SCP returned it."""

    __slots__ = ("attrs", "modality", "station_ae", "start", "seen")

    def __init__(self, attrs: dict[str, str | None], modality: str | None,
                 station_ae: str | None, start: str | None, seen: Seen) -> None:
        self.attrs = attrs  # patient_id, patient_name, accession_number, study_instance_uid,
        # requested_procedure_id, sps_id
        self.modality, self.station_ae, self.start, self.seen = modality, station_ae, start, seen

    def record(self) -> dict[str, Any]:
        return {**self.attrs, "modality": self.modality, "scheduled_station_ae": self.station_ae,
                "scheduled_start": self.start, "fetched_by": self.seen.receiver,
                "worklist_ae": self.seen.sender, "association": self.seen.assoc,
                "frame": self.seen.frame}


class Mpps:
    """One Modality Performed Procedure Step and its status transitions."""

    __slots__ = ("uid", "status", "transitions", "attrs", "instances", "created", "series")

    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.status: str | None = None
        self.transitions: list[tuple[str | None, Seen, str]] = []  # (status, where, command)
        self.attrs: dict[str, str | None] = {}
        self.instances: dict[str, str | None] = {}  # performed SOP instance -> series
        self.created: Seen | None = None
        self.series = 0

    @property
    def final(self) -> bool:
        return self.status in FINAL_PPS

    def record(self) -> dict[str, Any]:
        return {"sop_instance": self.uid, "status": self.status,
                "transitions": [{"command": c, "status": s, **w.record()}
                                for s, w, c in self.transitions],
                "performed_instances": len(self.instances),
                **{k: v for k, v in self.attrs.items() if v is not None}}


class Instance:
    """One SOP instance of the study and what happened to it along the way."""

    __slots__ = ("uid", "sop_class", "series", "stored", "store_status", "attrs", "in_mpps",
                 "committed", "failure", "in_ian", "stored_to")

    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.sop_class: str | None = None
        self.series: str | None = None
        self.stored: Seen | None = None  # the C-STORE that carried it (last one)
        self.store_status: str | None = None  # status category of that C-STORE
        self.attrs: dict[str, str | None] | None = None  # identifying header attributes
        self.in_mpps: str | None = None  # the MPPS that lists it
        self.committed: bool | None = None  # None: no commitment result seen
        self.failure: int | None = None  # Failure Reason (0008,1197)
        self.in_ian = False
        self.stored_to: str | None = None

    @property
    def stored_ok(self) -> bool:
        return self.stored is not None and self.store_status in ("Success", "Warning")


class Commit:
    """One Storage Commitment transaction (N-ACTION and, once seen, its N-EVENT-REPORT)."""

    __slots__ = ("tuid", "request", "report", "requested", "committed", "failed", "event_type")

    def __init__(self, tuid: str | None, request: Seen | None) -> None:
        self.tuid, self.request = tuid, request
        self.report: Seen | None = None
        self.requested: list[str] = []
        self.committed: list[str] = []
        self.failed: list[tuple[str, int | None]] = []
        self.event_type: int | None = None

    def record(self) -> dict[str, Any]:
        from dissectors.dimse.status import failure_reason

        return {"transaction_uid": self.tuid, "requested": len(self.requested),
                "committed": len(self.committed), "failed": len(self.failed),
                "failures": [{"sop_instance": u, "reason": r,
                              "reason_text": failure_reason(r) if r is not None else None}
                             for u, r in self.failed[:100]],
                "request": self.request.record() if self.request else None,
                "report": self.report.record() if self.report else None}


class Ian:
    """One Instance Availability Notification (N-CREATE) about the study."""

    __slots__ = ("seen", "instances", "availability")

    def __init__(self, seen: Seen) -> None:
        self.seen = seen
        self.instances: list[str] = []
        self.availability: dict[str, int] = {}

    def record(self) -> dict[str, Any]:
        return {**self.seen.record(), "instances": len(self.instances),
                "availability": self.availability}


class Study:
    """Everything the capture showed about one Study Instance UID."""

    __slots__ = ("uid", "instances", "mpps", "scheduled", "commits", "ians", "open", "assocs",
                 "first_frame", "last_frame", "last_ts", "findings", "dropped", "how_matched",
                 "judged", "midstream", "cut")

    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.instances: dict[str, Instance] = {}
        self.mpps: dict[str, Mpps] = {}
        self.scheduled: Scheduled | None = None
        self.how_matched: str | None = None  # the key the worklist item was found by
        self.commits: list[Commit] = []
        self.ians: list[Ian] = []
        self.open: set[int] = set()  # associations still open that carried it
        self.assocs: list[int] = []  # every association that carried it (bounded)
        self.first_frame: int | None = None
        self.last_frame: int | None = None
        self.last_ts: float | None = None
        self.findings: list[str] = []  # codes raised about it
        self.dropped = 0  # instances beyond the per-study cap, counted
        self.judged = False
        self.midstream = False  # an association that carried it began before the capture
        self.cut: list[dict[str, Any]] = []  # C-STOREs on its associations cut by the start

    def touch(self, assoc: int, frame: int | None, ts: float | None) -> None:
        if assoc not in self.open:
            self.open.add(assoc)
            if len(self.assocs) < 256 and assoc not in self.assocs:
                self.assocs.append(assoc)
        if frame is not None:
            if self.first_frame is None or frame < self.first_frame:
                self.first_frame = frame
            if self.last_frame is None or frame > self.last_frame:
                self.last_frame = frame
        if ts is not None:
            self.last_ts = ts

    # -- what the record and the text show ----------------------------------------------------
    def value(self, key: str) -> str | None:
        """The study's value of an attribute: worklist first, then MPPS, then images."""
        if self.scheduled is not None and self.scheduled.attrs.get(key):
            return self.scheduled.attrs[key]
        for m in self.mpps.values():
            if m.attrs.get(key):
                return m.attrs[key]
        for i in self.instances.values():
            if i.attrs and i.attrs.get(key):
                return i.attrs[key]
        return None

    def counts(self) -> dict[str, int]:
        inst = self.instances.values()
        return {"stored": sum(1 for i in inst if i.stored_ok),
                "in_mpps": sum(1 for i in inst if i.in_mpps),
                "committed": sum(1 for i in inst if i.committed),
                "commit_failed": sum(1 for i in inst if i.committed is False),
                "in_ian": sum(1 for i in inst if i.in_ian)}

    def series(self) -> list[dict[str, Any]]:
        out: dict[str | None, dict[str, Any]] = {}
        for i in self.instances.values():
            if i.stored is None:
                continue
            s = out.setdefault(i.series, {"series_instance_uid": i.series, "instances": 0,
                                          "stored_to": [], "statuses": {}})
            s["instances"] += 1
            if i.stored_to and i.stored_to not in s["stored_to"]:
                s["stored_to"].append(i.stored_to)
            st = i.store_status or "unanswered"
            s["statuses"][st] = s["statuses"].get(st, 0) + 1
        return list(out.values())

    def steps(self) -> list[dict[str, Any]]:
        """One timeline per scheduled procedure step: worklist item, MPPS transitions, the
        images, commitment request and report, IANs, in capture order.

        A fact goes to the step whose Scheduled Procedure Step ID it carries: an MPPS its own
        (Scheduled Step Attributes Sequence), an image the one of the MPPS that lists it, else
        its Request Attributes Sequence's; a commitment or an IAN the step most of its
        instances belong to. What carries none goes to a step with ``sps_id`` null: nothing
        is attributed by guess (a changed SPS ID shows as two steps, and a finding)."""
        events: dict[str | None, list[dict[str, Any]]] = {}

        def add(sps: str | None, stage: str, what: str, seen: Seen | None,
                **more: Any) -> None:
            ev = {"stage": stage, "what": what, **(seen.record() if seen else
                                                    {"from": None, "to": None,
                                                     "association": None, "frame": None,
                                                     "time": None}), **more}
            events.setdefault(sps, []).append(ev)

        if self.scheduled is not None:
            add(self.scheduled.attrs.get("sps_id"), "scheduled", "worklist item fetched",
                self.scheduled.seen)
        mpps_sps: dict[str, str | None] = {}
        for m in self.mpps.values():
            sps = m.attrs.get("sps_id")
            mpps_sps[m.uid] = sps
            for status, seen, command in m.transitions:
                add(sps, "performed", f"MPPS {command} {status or '(no status)'}", seen,
                    sop_instance=m.uid, status=status)
        inst_sps: dict[str, str | None] = {}
        stored: dict[tuple[str | None, int, str | None], dict[str, Any]] = {}
        for i in self.instances.values():
            if i.in_mpps and i.in_mpps in mpps_sps:
                sps = mpps_sps[i.in_mpps]
            else:
                sps = i.attrs.get("sps_id") if i.attrs else None
            inst_sps[i.uid] = sps
            if i.stored is None:
                continue
            key = (sps, i.stored.assoc, i.stored_to)
            ev = stored.get(key)
            if ev is None:
                service = ("STOW-RS" if (i.stored_to or "").startswith("STOW-RS ")
                           else "C-STORE")  # journey/web.py names the receiver so
                add(sps, "stored", service, i.stored, instances=0, last_frame=None,
                    statuses={})
                ev = stored[key] = events[sps][-1]
            ev["instances"] += 1
            f = i.stored.frame
            if f is not None and (ev["frame"] is None or f < ev["frame"]):
                ev["frame"], ev["time"] = f, i.stored.ts
            if f is not None and (ev["last_frame"] is None or f > ev["last_frame"]):
                ev["last_frame"] = f
            status = i.store_status or "unanswered"
            ev["statuses"][status] = ev["statuses"].get(status, 0) + 1

        def vote(uids: list[str]) -> str | None:
            count: dict[str | None, int] = {}
            for u in uids:
                if u in inst_sps:
                    count[inst_sps[u]] = count.get(inst_sps[u], 0) + 1
            return max(count, key=lambda k: count[k]) if count else None

        for c in self.commits:
            sps = vote(c.requested or c.committed + [u for u, _ in c.failed])
            if c.request is not None:
                add(sps, "committed", "storage commitment requested", c.request,
                    instances=len(c.requested), transaction_uid=c.tuid)
            if c.report is not None:
                add(sps, "committed", "storage commitment report", c.report,
                    instances=len(c.committed) + len(c.failed), committed=len(c.committed),
                    failed=len(c.failed), transaction_uid=c.tuid)
        for ian in self.ians:
            add(vote(ian.instances), "available", "Instance Availability Notification",
                ian.seen, instances=len(ian.instances))
        out = []
        for sps, evs in events.items():
            evs.sort(key=lambda e: (e["frame"] is None, e["frame"] or 0))
            out.append({"sps_id": sps,
                        "scheduled": self.scheduled is not None
                        and self.scheduled.attrs.get("sps_id") == sps,
                        "state": _state(evs), "timeline": evs})
        out.sort(key=lambda s: (s["sps_id"] is None, s["timeline"][0]["frame"] or 0))
        return out

    def record(self) -> dict[str, Any]:
        steps = self.steps()
        return {"type": "study", "study_instance_uid": self.uid,
                "accession_number": self.value("accession_number"),
                "patient_id": self.value("patient_id"),
                "patient_name": self.value("patient_name"),
                "scheduled": self.scheduled.record() if self.scheduled else None,
                "scheduled_match": self.how_matched,
                "mpps": [m.record() for m in self.mpps.values()],
                "instances": self.counts(),
                "instances_dropped": self.dropped,
                "series": self.series(),
                "commitment": [c.record() for c in self.commits],
                "ian": [i.record() for i in self.ians],
                "procedure_steps": steps,
                "capture_began_inside": self.midstream,
                "cut_stores": self.cut,
                "state": max((s["state"] for s in steps), key=lambda x: RANK.get(x, -1),
                             default=None),
                "associations": sorted(self.assocs),
                "first_frame": self.first_frame, "last_frame": self.last_frame,
                "findings": sorted(set(self.findings))}


RANK = {"scheduled": 0, "in progress": 1, "stored": 2, "completed": 3, "discontinued": 3,
        "committed": 4, "available": 5}  # how far along the journey a stage is


def _state(events: list[dict[str, Any]]) -> str:
    """How far a procedure step got: the furthest stage its timeline reached (an MPPS status
    names its stage: IN PROGRESS, COMPLETED or DISCONTINUED)."""
    state, rank = "", -1
    for ev in events:
        stage = ev["stage"]
        if stage == "performed":
            status = ev.get("status")
            if status not in ("IN PROGRESS", *FINAL_PPS):
                continue  # refused or without a status
            stage = str(status).lower()
        if RANK.get(stage, -1) > rank:
            state, rank = stage, RANK[stage]
    return state or events[0]["stage"]
