"""Unified Procedure Step (PS3.4 annex CC): workitem states, their transitions, the
Transaction UID, subscriptions and their N-EVENT-REPORTs.

The state machine is the standard's table CC.1.1-2 as data (``ALLOWED``): a Change State
request (N-ACTION type 1) for a transition the table does not have is an illegal transition,
whatever the SCP answered (the finding says what it answered, and is an error when it accepted
it). The Transaction UID that claimed a workitem (IN PROGRESS) must come with every later
N-SET and final state change (CC.1.1, CC.2.1.3). Workitems are kept in a bounded map.

Subscribers: an accepted Subscribe (N-ACTION type 3) on the global subscription instance or on
one workitem, until its Unsubscribe (type 4) or Suspend Global Subscription (type 5), makes an
AE a subscriber; the SCP owes it a UPS State Report (N-EVENT-REPORT type 1) for every state
change it accepts afterwards (CC.2.4.3), on whatever association it chooses. Judged at the end
of the capture: a subscriber with no report of that state after the change is a finding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...model import Association, Transaction
from ..rules.journey import ILLEGAL, REPORT_MISSING, TUID
from ..rules.state import Bounded
from .checks import Hit
from .decode import said, text

SCHEDULED, IN_PROGRESS, COMPLETED, CANCELED = "SCHEDULED", "IN PROGRESS", "COMPLETED", "CANCELED"
# PS3.4 Table CC.1.1-2: (from, to) pairs a Change State may request.
ALLOWED = frozenset({(SCHEDULED, IN_PROGRESS), (IN_PROGRESS, COMPLETED),
                     (IN_PROGRESS, CANCELED)})
FINAL = (COMPLETED, CANCELED)
ACTIONS = {1: "Change UPS State", 2: "Request UPS Cancel", 3: "Subscribe to Receive UPS Event "
           "Reports", 4: "Unsubscribe from Receiving UPS Event Reports",
           5: "Suspend Global Subscription"}
EVENTS = {1: "UPS State Report", 2: "UPS Cancel Requested", 3: "UPS Progress Report",
          4: "SCP Status Change", 5: "UPS Assigned"}

MAX_HISTORY = 32
MAX_SUBSCRIPTIONS = 4096
GLOBAL = ("1.2.840.10008.5.1.4.34.5", "1.2.840.10008.5.1.4.34.5.1")  # (filtered) global


class Workitem:
    __slots__ = ("uid", "state", "tuid", "history", "events", "subscribed", "changes")

    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.state: str | None = None
        self.tuid: str | None = None
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.subscribed: list[str] = []
        self.changes: list[tuple[str, int | None]] = []  # accepted states, request frame

    def record(self) -> dict[str, Any]:
        return {"type": "workitem", "sop_instance": self.uid, "state": self.state,
                "transaction_uid": self.tuid, "history": self.history, "events": self.events,
                "subscribers": self.subscribed}


class UpsTracker:
    def __init__(self, emit: Callable[[Hit, Any], None], max_tracked: int) -> None:
        self.emit = emit
        self.items: Bounded[str, Workitem] = Bounded(max_tracked)
        self.subscribers: list[str] = []  # global subscriptions (bounded)
        # (subscriber AE, global instance or workitem) -> [subscribed at, unsubscribed at]
        self.subs: dict[tuple[str, str], list[int | None]] = {}

    def _item(self, uid: str) -> Workitem:
        w = self.items.get(uid)
        if w is None:
            w = Workitem(uid)
            self.items.put(uid, w)
        return w

    def transaction(self, a: Association, t: Transaction, req: Any, rsp: Any) -> None:
        uid = t.sop_instance
        if not uid:
            return
        sender = a.calling_ae if t.sent_by == "requestor" else a.called_ae
        scp = a.called_ae if t.sent_by == "requestor" else a.calling_ae
        ok = t.status_category in ("Success", "Warning")
        answered = (f"0x{t.status:04X} {t.status_meaning or ''}".strip()
                    if t.status is not None else "no answer")
        if t.command == "N-ACTION" and t.action_type in (3, 4, 5):
            if ok and t.action_type == 3 and len(self.subscribers) < 256:
                self.subscribers.append(f"{sender} ({uid})")
            if ok and sender:
                key = (sender, uid)
                if t.action_type == 3 and len(self.subs) < MAX_SUBSCRIPTIONS:
                    self.subs[key] = [t.request_frame, None]
                elif t.action_type in (4, 5) and key in self.subs:
                    self.subs[key][1] = t.request_frame
            if uid in self.items:
                self._item(uid).subscribed.append(sender or "?")
            return
        if t.command == "N-EVENT-REPORT":
            w = self._item(uid)
            if len(w.events) < MAX_HISTORY:
                w.events.append({"event_type": t.event_type,
                                 "event": EVENTS.get(t.event_type or 0),
                                 "state": text(req, "ProcedureStepState"), "from": sender,
                                 "to": scp, "frame": t.request_frame})
            return
        w = self._item(uid)
        want = text(req, "ProcedureStepState")
        tuid = text(req, "TransactionUID")
        step = {"command": t.command, "action": ACTIONS.get(t.action_type or 0)
                if t.command == "N-ACTION" else None, "requested_state": want,
                "status": t.status, "by": sender, "frame": t.request_frame}
        if len(w.history) < MAX_HISTORY:
            w.history.append(step)
        where = (f"{said(sender)} asked {said(scp)} (frame {t.request_frame}) and {said(scp)} "
                 f"answered {answered}")
        if t.command == "N-CREATE":
            if ok:
                w.state = want or SCHEDULED
                self._changed(w, w.state, t.request_frame)
            elif want and want != SCHEDULED:
                self.emit(Hit(ILLEGAL, f"workitem {uid}: created in state {said(want)}, where "
                                       f"a workitem may only be created SCHEDULED; {where}",
                              t.request_frame, [t.request_frame, *t.response_frames[:1]],
                              uids={"sop_instance": uid}, association=None), None)
            return
        if t.command == "N-ACTION" and t.action_type == 1 and want:
            cur = w.state
            if cur is not None and (cur, want) not in ALLOWED:
                why = ("it is already final" if cur in FINAL else
                       f"table CC.1.1-2 has no {cur} -> {want} transition")
                self.emit(Hit(ILLEGAL,
                              f"workitem {uid}: {cur} -> {said(want)} requested, but {why}; "
                              f"{where}{' - the SCP accepted an illegal transition' if ok else ''}",
                              t.request_frame, [t.request_frame, *t.response_frames[:1]],
                              severity="error" if ok else None,
                              uids={"sop_instance": uid, "transaction_uid": tuid},
                              association=None), None)
            elif cur == IN_PROGRESS and want in FINAL and w.tuid and tuid != w.tuid:
                self._tuid(w, t, tuid, where, ok)
            if ok:
                w.state = want
                self._changed(w, want, t.request_frame)
                if want == IN_PROGRESS:
                    w.tuid = tuid
            return
        if t.command == "N-SET":
            if w.state == IN_PROGRESS and w.tuid and tuid != w.tuid:
                self._tuid(w, t, tuid, where, ok)
            elif w.state in FINAL:
                self.emit(Hit(ILLEGAL, f"workitem {uid}: N-SET after it became {w.state} (a "
                                       f"final workitem may no longer be updated); {where}",
                              t.request_frame, [t.request_frame],
                              severity="error" if ok else None,
                              uids={"sop_instance": uid}, association=None), None)

    def _tuid(self, w: Workitem, t: Transaction, tuid: str | None, where: str,
              ok: bool) -> None:
        self.emit(Hit(TUID,
                      f"workitem {w.uid}: {t.command} with Transaction UID "
                      f"{tuid or '(none)'}, but it was claimed (IN PROGRESS) with {w.tuid}: "
                      f"only its performer may update or finish it; {where}"
                      f"{' - the SCP accepted it' if ok else ''}",
                      t.request_frame, [t.request_frame, *t.response_frames[:1]],
                      severity="error" if ok else None,
                      uids={"sop_instance": w.uid, "transaction_uid": tuid,
                            "claimed_with": w.tuid}, association=None), None)

    def _changed(self, w: Workitem, state: str, frame: int | None) -> None:
        if len(w.changes) < MAX_HISTORY:
            w.changes.append((state, frame))

    def finish(self) -> None:
        """Every subscriber got a State Report for every change after its subscription."""
        for w in self.items.values():
            if len(w.events) >= MAX_HISTORY:
                continue  # reports beyond the cap were not kept: no verdict
            for (ae, target), (since, until) in self.subs.items():
                if target != w.uid and target not in GLOBAL:
                    continue
                missed = [(state, f) for state, f in w.changes
                          if f is not None and since is not None and f > since
                          and (until is None or f < until)
                          and not any(e["event_type"] == 1 and e["state"] == state
                                      and e["to"] == ae and (e["frame"] or 0) > f
                                      for e in w.events)]
                if not missed:
                    continue
                how = "globally" if target in GLOBAL else "to this workitem"
                changes = ", ".join(f"{s} (frame {f})" for s, f in missed)
                self.emit(Hit(REPORT_MISSING,
                              f"workitem {w.uid}: {said(ae)} subscribed {how} (frame {since}) "
                              f"but got no UPS State Report (N-EVENT-REPORT type 1) for "
                              f"{changes}; the SCP owes every subscriber a report of each "
                              f"state change", missed[0][1],
                              [f for f in (since, *(f for _, f in missed)) if f is not None],
                              uids={"sop_instance": w.uid, "subscriber": ae},
                              association=None), None)

    def records(self) -> list[dict[str, Any]]:
        out = []
        for w in self.items.values():
            if not (w.history or w.events):
                continue
            rec = w.record()
            rec["subscriptions"] = [
                {"ae": ae, "scope": "global" if target in GLOBAL else "workitem",
                 "frame": since, "until_frame": until,
                 "reports": sum(1 for e in w.events if e["to"] == ae and e["event_type"] == 1)}
                for (ae, target), (since, until) in self.subs.items()
                if target == w.uid or target in GLOBAL][:256]
            out.append(rec)
        return out
