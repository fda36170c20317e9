"""The Python ``requests`` side of captures/ups_record.py: a UPS-RS performer and watcher.

``python3 ups_client.py BASE W1 W2 MISSING``: on one keep-alive connection (a
``requests.Session``), searches, updates, subscribes (per workitem, global, filtered),
claims W1 (IN PROGRESS with a Transaction UID), tries an update and state changes the state
table refuses (PS3.4 CC.1.1), completes W1, asks to cancel the completed W1 (refused), the
scheduled W2 (accepted) and W2 again (already canceled), suspends and deletes the
subscriptions. One JSON line per exchange on stdout: what the user agent saw.
"""

from __future__ import annotations

import json
import sys

import requests

GLOBAL = "1.2.840.10008.5.1.4.34.5"
FILTERED = "1.2.840.10008.5.1.4.34.5.1"
TXN = "2.25.314159265358979323846264338327950288"
JSON = "application/dicom+json"


def state(value: str, txn: str | None = TXN) -> list[dict[str, object]]:
    ds: dict[str, object] = {"00741000": {"vr": "CS", "Value": [value]}}
    if txn:
        ds["00081195"] = {"vr": "UI", "Value": [txn]}
    return [ds]


def main(base: str, w1: str, w2: str, missing: str) -> int:
    s = requests.Session()
    s.headers["Accept"] = JSON

    def go(method: str, path: str, body: object | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": JSON} if data is not None else {}
        r = s.request(method, base + path, data=data, headers=headers, timeout=30)
        print(json.dumps({"client": "python-requests", "method": method,
                          "path": r.request.path_url, "status": r.status_code,
                          "content_type": r.headers.get("Content-Type"),
                          "bytes": len(r.content), "warning": r.headers.get("Warning"),
                          "location": r.headers.get("Location")}), flush=True)

    label = [{"00741204": {"vr": "LO", "Value": ["Synthetic CAD run, updated"]}}]
    go("GET", "/workitems?ProcedureStepState=SCHEDULED")
    go("POST", f"/workitems/{w1}", label)  # SCHEDULED: no Transaction UID needed
    go("POST", f"/workitems/{GLOBAL}/subscribers/WATCHER?deletionlock=false")
    go("POST", f"/workitems/{FILTERED}/subscribers/FILTERAE?ProcedureStepState=SCHEDULED")
    go("POST", f"/workitems/{w1}/subscribers/WATCHER?deletionlock=true")
    go("POST", f"/workitems/{missing}/subscribers/WATCHER")  # 404
    go("PUT", f"/workitems/{w1}/state", state("IN PROGRESS"))
    go("POST", f"/workitems/{w1}", label)  # IN PROGRESS without the Transaction UID: 409
    go("POST", f"/workitems/{w1}?{TXN}", label)
    go("PUT", f"/workitems/{w1}/state", state("SCHEDULED"))  # not in the state table: 409
    go("PUT", f"/workitems/{w1}/state", state("COMPLETED", None))  # no Transaction UID: 409
    go("PUT", f"/workitems/{w1}/state", state("COMPLETED"))
    go("PUT", f"/workitems/{w1}/state", state("COMPLETED"))  # 200 with a Warning
    go("PUT", f"/workitems/{missing}/state", state("IN PROGRESS"))  # 404
    go("POST", f"/workitems/{w1}/cancelrequest")  # COMPLETED: refused, 409
    go("POST", f"/workitems/{w2}/cancelrequest",
       [{"00741238": {"vr": "LT", "Value": ["Synthetic: no longer needed"]}}])  # 202
    go("POST", f"/workitems/{w2}/cancelrequest")  # already CANCELED: 200 with a Warning
    go("POST", f"/workitems/{missing}/cancelrequest")  # 404
    go("POST", f"/workitems/{GLOBAL}/subscribers/WATCHER/suspend")
    go("DELETE", f"/workitems/{w1}/subscribers/WATCHER")
    go("DELETE", f"/workitems/{GLOBAL}/subscribers/WATCHER")
    go("DELETE", f"/workitems/{FILTERED}/subscribers/FILTERAE")
    go("DELETE", f"/workitems/{w1}/subscribers/NOBODY")  # 404
    go("GET", "/workitems?ProcedureStepState=IN%20PROGRESS")  # 204
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
