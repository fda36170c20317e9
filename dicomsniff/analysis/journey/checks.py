"""The journey's findings: what does not add up along a study's way, print and UPS.

Codes are registered in the rules' catalogue (``python -m dicomsniff.analysis.rules`` lists
them, ``--disable-rule`` silences them). A study is judged once, when it is released
(:mod:`.core`): attributes compared between the worklist item, the MPPS and the image headers,
and completeness between what was performed, stored, committed and made available. Two
conditions of the journey already had codes and keep them (stable codes): an MPPS never
COMPLETED or DISCONTINUED is WORKFLOW-MPPS-NOT-COMPLETED and a commitment report with failures
is WORKFLOW-COMMIT-FAILURES; the study's record and timeline show both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..rules.base import CODES, listing
from ..rules.journey import (
    ACCESSION,
    IAN_MISSING,
    IAN_NOT_STORED,
    MISMATCH,
    MPPS_NOT_STORED,
    NOT_COMMITTED,
    STORED_NOT_MPPS,
    UNSCHEDULED,
)
from .decode import said

if TYPE_CHECKING:
    from .study import Study

__all__ = ["CODES", "Hit", "judge"]


NAMES = {"patient_id": "Patient ID", "patient_name": "Patient's Name",
         "accession_number": "Accession Number", "study_instance_uid": "Study Instance UID",
         "requested_procedure_id": "Requested Procedure ID",
         "sps_id": "Scheduled Procedure Step ID"}
COMPARED = tuple(NAMES)


class Hit:
    """A journey finding before it becomes a Finding (see core.Journey._emit_hit)."""

    __slots__ = ("code", "message", "frame", "frames", "severity", "section", "uids",
                 "association", "assoc_obj")

    def __init__(self, code: str, message: str, frame: int | None = None,
                 frames: list[int] | None = None, *, severity: str | None = None,
                 section: str | None = None, uids: dict[str, Any] | None = None,
                 association: Any = None) -> None:
        self.code, self.message, self.frame = code, message, frame
        self.frames = sorted(set(f for f in (frames or []) if f is not None))[:50]
        self.severity, self.section, self.uids = severity, section, uids
        self.assoc_obj = association  # findings of one association (print) join it
        self.association = association.id if association is not None else None


def _norm(attr: str, v: str | None) -> str | None:
    if not v:
        return None
    v = v.strip()
    if attr == "patient_name":
        v = v.rstrip("^ ").upper()
    return v or None


def _who(study: Study) -> str:
    parts = [f"study {study.uid}"]
    acc = study.value("accession_number")
    if acc:
        parts.append(f"accession {said(acc)}")
    pid = study.value("patient_id")
    if pid:
        parts.append(f"patient {said(pid)}")
    return ", ".join(parts)


def judge(st: Study, journey: Any) -> Iterator[Hit]:
    """Every journey finding about one study (called once, when it is released)."""
    uids = {"study_instance_uid": st.uid}
    who = _who(st)
    yield from _attributes(st, who, uids)
    yield from _completeness(st, who, uids)
    if st.scheduled is None and journey.worklist_seen:
        mods = {i.attrs.get("modality") for i in st.instances.values() if i.attrs}
        mods |= {m.attrs.get("modality") for m in st.mpps.values()}
        mods.discard(None)
        queried = journey.worklist_modalities
        if mods & queried or (not queried and mods):
            stored = [i for i in st.instances.values() if i.stored_ok]
            if stored:
                first = min(stored, key=lambda i: i.stored.frame or 0)  # type: ignore[union-attr]
                s = first.stored
                yield Hit(UNSCHEDULED,
                          f"{who}: {len(stored)} image(s) of modality {', '.join(sorted(mods))} "
                          f"stored by {said(s.sender)} to {said(s.receiver)} (first at frame "  # type: ignore[union-attr]
                          f"{s.frame}) match no worklist item (by Study Instance UID, Accession "  # type: ignore[union-attr]
                          "Number or Scheduled Procedure Step ID), although worklist items for "
                          f"{', '.join(sorted(queried)) or 'that modality'} were fetched in this "
                          "capture: an unscheduled study, performed without the order, which the "
                          "RIS and the archive cannot reconcile without manual correction",
                          s.frame, [i.stored.frame for i in stored], uids=uids)  # type: ignore[union-attr]


def _attributes(st: Study, who: str, uids: dict[str, Any]) -> Iterator[Hit]:
    sources: list[tuple[str, dict[str, Any], Any]] = []
    if st.scheduled is not None:
        sources.append(("the worklist item", st.scheduled.attrs, st.scheduled.seen))
    for m in st.mpps.values():
        sources.append((f"the MPPS {m.uid}", m.attrs, m.created))
    images: dict[str, dict[str | None, list[Any]]] = {}
    for inst in st.instances.values():
        if inst.attrs is None or inst.stored is None:
            continue
        for attr in COMPARED:
            images.setdefault(attr, {}).setdefault(_norm(attr, inst.attrs.get(attr)), []).append(
                inst)
    for attr in COMPARED:
        values: list[tuple[str, str, Any]] = []  # (value, where, seen)
        for where, attrs, seen in sources:
            v = _norm(attr, attrs.get(attr))
            if v is not None:
                values.append((v, where, seen))
        img = images.get(attr, {})
        for v, insts in img.items():
            if v is None:
                continue
            s = insts[0].stored
            values.append((v, f"{len(insts)} image(s)", s))
        distinct = {v for v, _, _ in values}
        missing = img.get(None, [])
        if attr == "accession_number" and missing and distinct:
            s = missing[0].stored
            yield Hit(ACCESSION,
                      f"{who}: {len(missing)} image(s) stored by {said(s.sender)} to "
                      f"{said(s.receiver)} (first at frame {s.frame}) carry no Accession Number "
                      f"(0008,0050), while the others carry it ({_listing(values)}): the "
                      "archive cannot tie these images to "
                      "the order (reports and billing go astray); the modality must copy it "
                      "from the worklist item",
                      s.frame, [i.stored.frame for i in missing], uids={
                          **uids, "sop_instances": [i.uid for i in missing[:20]]})
        if len(distinct) > 1:
            frames = [seen.frame for _, _, seen in values if seen is not None]
            yield Hit(MISMATCH,
                      f"{who}: {NAMES[attr]} differs along the way: {_listing(values)}. The "
                      "attribute is copied from the worklist item into the MPPS and the image "
                      "headers; a difference splits the study at the RIS or the archive "
                      "(unmatched images, an MPPS the RIS cannot link, a study under the wrong "
                      "patient)", frames[0] if frames else None, frames,
                      uids={**uids, "attribute": attr})


def _listing(values: list[tuple[str, str, Any]]) -> str:
    parts = []
    for v, where, seen in values:
        hop = ""
        if seen is not None:
            hop = f" ({said(seen.sender)} -> {said(seen.receiver)}, frame {seen.frame})"
        parts.append(f"{where}: {said(v, quoted=True)}{hop}")
    return listing(parts, 5)


def _completeness(st: Study, who: str, uids: dict[str, Any]) -> Iterator[Hit]:
    insts = list(st.instances.values())
    # "Never stored" needs the storage path in the capture: at least one C-STORE of the study.
    # A capture that began inside one of the study's associations missed its earlier
    # C-STOREs: then "never stored" cannot be told either.
    saw_stores = any(i.stored is not None for i in insts) and not st.midstream
    final = [m for m in st.mpps.values() if m.final]
    if final:
        listed = [i for i in insts if i.in_mpps]
        never = [i for i in listed if i.stored is None] if saw_stores else []
        if never:
            m = st.mpps[never[0].in_mpps]  # type: ignore[index]
            last = m.transitions[-1][1] if m.transitions else m.created
            yield Hit(MPPS_NOT_STORED,
                      f"{who}: the MPPS {m.uid} ({m.status}, from {said(last.sender)} to "
                      f"{said(last.receiver)}, frame {last.frame}) lists {len(never)} instance(s) "
                      "as performed that were never stored in this capture: "
                      f"{listing([i.uid for i in never], 3)}; the study is incomplete in the "
                      "archive (images kept on the modality, or sent elsewhere)",
                      last.frame, [last.frame], uids={**uids, "mpps": m.uid,
                                                      "sop_instances": [i.uid for i in never][:20]})
        stored_out = [i for i in insts if i.stored_ok and not i.in_mpps]
        if stored_out:
            s = stored_out[0].stored
            yield Hit(STORED_NOT_MPPS,
                      f"{who}: {len(stored_out)} instance(s) stored successfully by "
                      f"{said(s.sender)} to {said(s.receiver)} are in no MPPS's Performed Series "
                      f"Sequence ({', '.join(m.uid for m in final)}): "
                      f"{listing([i.uid for i in stored_out], 3)}; the RIS believes the study "
                      "has fewer images than the archive holds",
                      s.frame, [i.stored.frame for i in stored_out],
                      uids={**uids, "sop_instances": [i.uid for i in stored_out][:20]})
    if st.commits:
        asked = {u for c in st.commits for u in c.requested}
        skipped = [i for i in insts if i.stored_ok and i.uid not in asked and i.committed is None]
        if skipped:
            c = st.commits[0]
            rq = c.request
            where = (f" (its commitment request went from {said(rq.sender)} to "
                     f"{said(rq.receiver)} at frame {rq.frame})" if rq else "")
            s = skipped[0].stored
            yield Hit(NOT_COMMITTED,
                      f"{who}: {len(skipped)} instance(s) stored by {said(s.sender)} to "
                      f"{said(s.receiver)} were never in a storage commitment request{where}: "
                      f"{listing([i.uid for i in skipped], 3)}; nothing confirms the archive "
                      "holds them, and a modality that deletes after commitment may lose them",
                      s.frame, [i.stored.frame for i in skipped] + ([rq.frame] if rq else []),
                      uids={**uids, "sop_instances": [i.uid for i in skipped][:20]})
    if st.ians:
        in_ian = [i for i in insts if i.in_ian]
        ghost = [i for i in in_ian if i.stored is None] if saw_stores else []
        ian = st.ians[-1].seen
        if ghost:
            yield Hit(IAN_NOT_STORED,
                      f"{who}: the IAN from {said(ian.sender)} to {said(ian.receiver)} (frame "
                      f"{ian.frame}) lists {len(ghost)} instance(s) never stored in this "
                      f"capture: {listing([i.uid for i in ghost], 3)}; the RIS is told of "
                      "images the archive may not have",
                      ian.frame, [ian.frame],
                      uids={**uids, "sop_instances": [i.uid for i in ghost][:20]})
        lost = [i for i in insts if i.stored_ok and not i.in_ian]
        if lost:
            yield Hit(IAN_MISSING,
                      f"{who}: {len(lost)} instance(s) stored successfully are in no IAN about "
                      f"the study (last IAN from {said(ian.sender)} to {said(ian.receiver)}, "
                      f"frame {ian.frame}): {listing([i.uid for i in lost], 3)}; the RIS and "
                      "reading worklists do not know they are available",
                      ian.frame, [ian.frame] + [i.stored.frame for i in lost],  # type: ignore[union-attr]
                      uids={**uids, "sop_instances": [i.uid for i in lost][:20]})
