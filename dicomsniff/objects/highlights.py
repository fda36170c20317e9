"""What to point at in a data set, per service: the attributes the workflow depends on.

For MPPS these are the five things the Scheduled Workflow builds on (PS3.4 F.7, IHE RAD SWF):
who the patient is, which procedure (requested procedure, scheduled step, accession), which
study, the Performed Procedure Step Status, and the series and images produced. Storage
commitment is about a transaction UID and the lists of committed and failed instances; a
worklist item about patient, order and scheduled step; a query about its level and unique keys.
"""

from __future__ import annotations

from typing import Any

from dissectors.dimse.status import failure_reason

from ..uids import MPPS, MPPS_RETRIEVE
from ..uids import STORAGE_COMMITMENT_PUSH as COMMITMENT

WORKLIST = "1.2.840.10008.5.1.4.31"
PRINT_PREFIX = "1.2.840.10008.5.1.1."

_IDS = ("PatientName", "PatientID", "AccessionNumber", "RequestedProcedureID",
        "ScheduledProcedureStepID", "StudyInstanceUID")
MPPS_KEYS = frozenset(_IDS + (
    "ScheduledStepAttributesSequence", "PerformedProcedureStepID", "StudyID",
    "PerformedProcedureStepStatus", "PerformedSeriesSequence", "SeriesInstanceUID",
    "ReferencedImageSequence", "ReferencedSOPInstanceUID"))
WORKLIST_KEYS = frozenset(_IDS + (
    "ScheduledProcedureStepSequence", "Modality", "ScheduledStationAETitle",
    "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime"))
COMMITMENT_KEYS = frozenset(("TransactionUID", "ReferencedSOPSequence", "FailedSOPSequence",
                             "FailureReason", "ReferencedSOPInstanceUID"))
QUERY_KEYS = frozenset(("QueryRetrieveLevel", "PatientID", "StudyInstanceUID",
                        "SeriesInstanceUID", "SOPInstanceUID", "AccessionNumber"))
PRINT_KEYS = frozenset(("NumberOfCopies", "PrintPriority", "MediumType", "FilmDestination",
                        "ImageDisplayFormat", "FilmOrientation", "FilmSizeID",
                        "PrinterStatus", "PrinterStatusInfo", "ExecutionStatus",
                        "ExecutionStatusInfo", "ReferencedFilmSessionSequence"))


def keys_for(sop_class: str | None, sop_class_name: str | None) -> frozenset[str]:
    """The keywords to mark in this service's data sets."""
    if sop_class in (MPPS, MPPS_RETRIEVE):
        return MPPS_KEYS
    if sop_class == WORKLIST:
        return WORKLIST_KEYS
    if sop_class == COMMITMENT:
        return COMMITMENT_KEYS
    if sop_class and sop_class.startswith(PRINT_PREFIX):
        return PRINT_KEYS
    if sop_class_name and "Query/Retrieve" in sop_class_name:
        return QUERY_KEYS
    return frozenset()


def _get(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword) if ds is not None else None
    if value is None or value == "":
        return None
    return str(value)


def _first_item(ds: Any, seq: str) -> Any:
    items = ds.get(seq) if ds is not None else None
    return items[0] if items else None


def summary(sop_class: str | None, command: str, ds: Any, event_type: int | None = None
            ) -> list[str]:
    """A few plain lines naming the key items of this message (empty when nothing applies)."""
    if ds is None:
        return []
    if sop_class in (MPPS, MPPS_RETRIEVE):
        return _mpps(ds)
    if sop_class == COMMITMENT:
        return _commitment(ds, command, event_type)
    if sop_class == WORKLIST and command == "C-FIND-RSP":
        return _worklist(ds)
    return []


def _mpps(ds: Any) -> list[str]:
    missing = "not in this message"
    sched = _first_item(ds, "ScheduledStepAttributesSequence")
    name, pid = _get(ds, "PatientName"), _get(ds, "PatientID")
    patient = f"{name or '-'} (ID {pid or '-'})" if name or pid else missing
    proc = [f"{label} {v}" for label, v in (
        ("accession", _get(sched, "AccessionNumber")),
        ("requested procedure", _get(sched, "RequestedProcedureID")),
        ("scheduled step", _get(sched, "ScheduledProcedureStepID")),
        ("performed step", _get(ds, "PerformedProcedureStepID"))) if v]
    study = _get(sched, "StudyInstanceUID") or _get(ds, "StudyInstanceUID")
    series = ds.get("PerformedSeriesSequence")
    if series is None:
        produced = missing
    else:
        images = sum(len(s.get("ReferencedImageSequence") or []) for s in series)
        produced = f"{len(series)} series, {images} image{'s' if images != 1 else ''}"
    return ["MPPS key attributes:",
            f"  1 patient:   {patient}",
            f"  2 procedure: {', '.join(proc) if proc else missing}",
            f"  3 study:     {study or missing}",
            f"  4 status:    {_get(ds, 'PerformedProcedureStepStatus') or missing}",
            f"  5 produced:  {produced}"]


def _commitment(ds: Any, command: str, event_type: int | None) -> list[str]:
    uid = _get(ds, "TransactionUID") or "-"
    ok = len(ds.get("ReferencedSOPSequence") or [])
    failed = ds.get("FailedSOPSequence") or []
    if command.startswith("N-ACTION"):
        return [f"storage commitment request: transaction {uid}, {ok} instance"
                f"{'s' if ok != 1 else ''} to commit"]
    lines = [f"storage commitment result (event type {event_type if event_type else '?'}): "
             f"transaction {uid}, {ok} committed, {len(failed)} failed"]
    for item in failed:
        reason = item.get("FailureReason")
        lines.append(f"  failed: {_get(item, 'ReferencedSOPInstanceUID') or '-'}: "
                     f"{failure_reason(int(reason)) if reason is not None else 'no reason'}")
    return lines


def _worklist(ds: Any) -> list[str]:
    sps = _first_item(ds, "ScheduledProcedureStepSequence")

    def g(item: Any, keyword: str) -> str:
        return _get(item, keyword) or "-"

    when = (f"{g(sps, 'ScheduledProcedureStepStartDate')} "
            f"{_get(sps, 'ScheduledProcedureStepStartTime') or ''}")
    return [f"worklist item: {g(ds, 'PatientName')} (ID {g(ds, 'PatientID')}), accession "
            f"{g(ds, 'AccessionNumber')}, requested procedure {g(ds, 'RequestedProcedureID')}; "
            f"step {g(sps, 'ScheduledProcedureStepID')} {g(sps, 'Modality')} on "
            f"{g(sps, 'ScheduledStationAETitle')} at {when.rstrip()}"]
