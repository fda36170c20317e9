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
                 "judged")

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

    def record(self) -> dict[str, Any]:
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
                "associations": sorted(self.assocs),
                "first_frame": self.first_frame, "last_frame": self.last_frame,
                "findings": sorted(set(self.findings))}
