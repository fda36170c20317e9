"""Workflow rules: MPPS never completed, storage commitment never confirmed or failed.

These span associations (a modality creates the MPPS on one association and completes it on
another; a storage commitment report often comes back on an association the archive opens
later), so requests are remembered as associations end and judged once the capture is over.
The MPPS status and the commitment's Transaction UID and failed instances are in the data
sets, which :mod:`.datasets` collects for these SOP classes; without them (a capture that
started mid-association) the rules fall back to "an N-CREATE with no later N-SET" and
"an N-ACTION with no N-EVENT-REPORT between the same AEs".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dissectors.dimse.status import failure_reason

from ...model import Association, Transaction
from ...uids import MPPS
from ...uids import STORAGE_COMMITMENT_PUSH as COMMITMENT
from .base import AssocView, Hit, RuleConfig, check, code, listing
from .state import CaptureState

MPPS_OPEN = code("WORKFLOW-MPPS-NOT-COMPLETED", "warning", "PS3.4 F.7.2",
                 "an MPPS created (N-CREATE) but never set to COMPLETED or DISCONTINUED")
COMMIT_NO_REPORT = code("WORKFLOW-COMMIT-NO-REPORT", "warning", "PS3.4 J.3.3",
                        "a storage commitment request (N-ACTION) never answered by its "
                        "N-EVENT-REPORT")
COMMIT_FAILED = code("WORKFLOW-COMMIT-FAILURES", "warning", "PS3.4 J.3.3.1",
                     "a storage commitment report lists instances that were NOT committed")

FINAL_PPS = ("COMPLETED", "DISCONTINUED")


def _ok(t: Transaction) -> bool:
    return t.done and t.status_category in ("Success", "Warning")


def _ends(a: Association, t: Transaction) -> tuple[str | None, str | None]:
    """(sender AE, receiver AE) of a request."""
    if t.sent_by == "requestor":
        return a.calling_ae, a.called_ae
    return a.called_ae, a.calling_ae


@check(MPPS_OPEN, cross=True)
def remember_mpps(v: AssocView) -> list[Hit]:
    a, mpps = v.assoc, v.state.mpps
    for t in a.transactions:
        if t.sop_class != MPPS or not t.sop_instance or not _ok(t):
            continue
        info = v.dataset(t)
        decoded = info is not None and not info.partial and "error" not in info.fields
        status = info.fields.get("pps_status") if decoded else None
        rec = mpps.get(t.sop_instance)
        if t.command == "N-CREATE":
            sender, receiver = _ends(a, t)
            mpps.put(t.sop_instance, {"assoc": a.id, "frame": t.request_frame, "status": status,
                                      "sender": sender, "receiver": receiver,
                                      "final": status in FINAL_PPS, "sets": 0, "last": None})
        elif t.command == "N-SET" and rec is not None:
            rec["sets"] += 1
            rec["last"] = t.request_frame
            if status is not None:
                rec["status"] = status
            # Without its data set, an N-SET is taken as the step's completion (the best a
            # capture that lacks it allows); with it, only COMPLETED or DISCONTINUED count.
            rec["final"] = rec["final"] or status in FINAL_PPS or not decoded
    return []


class _NoData:
    fields: dict[str, Any] = {}


@check(MPPS_OPEN, phase="finish")
def mpps_not_completed(state: CaptureState, config: RuleConfig) -> Iterator[Hit]:
    for uid, rec in state.mpps.items():
        if rec["final"]:
            continue
        last = (f"; its last N-SET (frame {rec['last']}) left it {rec['status']}" if rec["sets"]
                else "; no N-SET for it followed")
        yield Hit(MPPS_OPEN,
                  f"MPPS {uid}, created{' ' + rec['status'] if rec['status'] else ''} by "
                  f"{rec['sender'] or '?'} on "
                  f"{rec['receiver'] or '?'} (association #{rec['assoc']}, frame {rec['frame']}), "
                  f"was never set to COMPLETED or DISCONTINUED in this capture{last}: the RIS "
                  "keeps the procedure step open (worklist, billing and reporting wait for it); "
                  "check that the exam was ended on the modality and its MPPS N-SET was sent",
                  rec["frame"])


@check(COMMIT_FAILED, cross=True)
def commitment(v: AssocView) -> Iterator[Hit]:
    a, st = v.assoc, v.state
    for t in a.transactions:
        if t.sop_class != COMMITMENT or not t.done:
            continue
        data = (v.dataset(t) or _NoData).fields
        sender, receiver = _ends(a, t)
        if t.command == "N-ACTION" and _ok(t):
            st.commit_requests.append({
                "assoc": a.id, "frame": t.request_frame, "ts": t.request_time,
                "scu": sender, "scp": receiver, "tuid": data.get("transaction_uid"),
                "refs": data.get("referenced")})
        elif t.command == "N-EVENT-REPORT":
            st.commit_reports.append({
                "assoc": a.id, "frame": t.request_frame, "ts": t.request_time,
                "scp": sender, "scu": receiver, "tuid": data.get("transaction_uid")})
            if t.event_type == 2:
                yield _failures(t, sender, receiver, data)


def _failures(t: Transaction, sender: str | None, receiver: str | None,
              data: dict[str, Any]) -> Hit:
    failed = data.get("failed")
    text = (f"storage commitment report (N-EVENT-REPORT event type 2) from {sender or '?'} to "
            f"{receiver or '?'}")
    if data.get("transaction_uid"):
        text += f", transaction {data['transaction_uid']}"
    if failed:
        items = [f"{uid} ({failure_reason(r) if r is not None else 'no reason given'})"
                 for uid, r in failed]
        text += (f": {len(failed)} instance(s) NOT committed - {listing(items, 3)}; "
                 f"{data.get('referenced', 0)} committed")
    else:
        text += ": some instances were NOT committed (the data set with the list was not seen)"
    text += (". The archive does not hold them safely: the sender must keep them, send them "
             "again and ask for commitment again")
    return Hit(COMMIT_FAILED, text, t.request_frame)


@check(COMMIT_NO_REPORT, phase="finish")
def commitment_unanswered(state: CaptureState, config: RuleConfig) -> Iterator[Hit]:
    reports = list(state.commit_reports.values())
    for rq in state.commit_requests.values():
        match = None
        for rp in reports:
            if rq["tuid"] and rp["tuid"]:
                if rq["tuid"] == rp["tuid"]:
                    match = rp
                    break
            elif (rp["scp"] == rq["scp"] and rp["scu"] == rq["scu"]
                  and (rp["ts"] or 0) >= (rq["ts"] or 0)):
                match = rp
                break
        if match is not None:
            reports.remove(match)
            continue
        pair = {rq["scu"], rq["scp"]}
        if any(m.lost and {m.calling_ae, m.called_ae} == pair for m in state.assocs.values()):
            continue  # the capture lost bytes between them: the report may be among them
        what = f"transaction {rq['tuid']}" if rq["tuid"] else "a storage commitment request"
        refs = f" for {rq['refs']} instance(s)" if rq["refs"] is not None else ""
        yield Hit(COMMIT_NO_REPORT,
                  f"{what}{refs} sent by {rq['scu'] or '?'} to {rq['scp'] or '?'} (N-ACTION, "
                  f"association #{rq['assoc']}, frame {rq['frame']}) was accepted but no "
                  "N-EVENT-REPORT with the result came back in this capture: the sender cannot "
                  "know the images are safe (and must not delete them); check that the archive "
                  "can open an association back to the sender (its AE title, host and port, "
                  "and the SCP role for Storage Commitment) or that the sender waits long enough",
                  rq["frame"])
