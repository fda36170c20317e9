"""A scripted UPS-RS origin server (PS3.18 11, PS3.4 Annex CC) for captures/ups_record.py.

No UPS-RS server is installable here (Orthanc's DICOMweb plugin has no workitems), so this is
a small WSGI application that keeps workitems in memory and follows the PS3.4 CC.1.1 state
table (SCHEDULED -> IN PROGRESS -> COMPLETED / CANCELED, the Transaction UID of CC.1.1.1)
and answers with the status codes and Warning headers of PS3.18 11.4-11.11. It is served
by waitress (a real HTTP/1.1 server stack), so the bytes on the wire are waitress's.

``python3 ups_origin.py PORT`` with waitress importable (a virtual environment). Standard
library only besides waitress, so it runs from any interpreter that has waitress.
"""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import parse_qsl

GLOBAL = "1.2.840.10008.5.1.4.34.5"
FILTERED = "1.2.840.10008.5.1.4.34.5.1"
STATE, TXN, SOP_INSTANCE = "00741000", "00081195", "00080018"
SERVICE = "ups-origin"
DICOM_JSON = "application/dicom+json"

workitems: dict[str, dict[str, Any]] = {}
subscribers: dict[str, dict[str, str]] = {}  # workitem (or global UID) -> AE -> status


def _value(ds: dict[str, Any], tag: str) -> str | None:
    v = ds.get(tag, {}).get("Value")
    return str(v[0]) if isinstance(v, list) and v else None


def _reply(start: Any, status: str, body: bytes = b"", ctype: str | None = None,
           headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    h = list(headers or [])
    if ctype and body:
        h.append(("Content-Type", ctype))
    h.append(("Content-Length", str(len(body))))
    start(status, h)
    return [body]


def _warn(text: str) -> list[tuple[str, str]]:
    return [("Warning", f'299 {SERVICE}: "{text}"')]


def _error(start: Any, status: str, text: str) -> list[bytes]:
    """An error with its reason in the Warning header (PS3.18 8.4) and a text body."""
    return _reply(start, status, text.encode(), "text/plain", _warn(text))


def _read(environ: dict[str, Any]) -> Any:
    n = int(environ.get("CONTENT_LENGTH") or 0)
    data = environ["wsgi.input"].read(n) if n else b""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if isinstance(doc, list) and len(doc) == 1 and isinstance(doc[0], dict):
        return doc[0]
    return doc if isinstance(doc, dict) else None


def _public(ds: dict[str, Any]) -> dict[str, Any]:
    """A workitem as returned: never its Transaction UID (PS3.4 CC.2.1.3.2)."""
    return {k: v for k, v in ds.items() if k != TXN}


def app(environ: dict[str, Any], start: Any) -> list[bytes]:
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    segs = [s for s in path.split("/") if s]
    if not segs or segs[0] != "ups" or len(segs) < 2 or segs[1] != "workitems":
        return _error(start, "404 Not Found", "no such resource")
    res = segs[2:]
    accept = environ.get("HTTP_ACCEPT", DICOM_JSON)
    if not res:
        if method == "POST":
            return _create(environ, start, query)
        if method == "GET":
            return _search(start, query, accept)
        return _error(start, "405 Method Not Allowed", "method not allowed")
    uid, tail = res[0], res[1:]
    if tail[:1] == ["subscribers"] and len(tail) >= 2:
        return _subscription(environ, start, method, uid, tail[1], tail[2:], query)
    if uid not in workitems:
        return _error(start, "404 Not Found", f"no workitem {uid}")
    ds = workitems[uid]
    if not tail and method == "GET":
        if "json" not in accept and "*/*" not in accept:
            return _error(start, "406 Not Acceptable", "only application/dicom+json")
        body = json.dumps([_public(ds)]).encode()
        return _reply(start, "200 OK", body, DICOM_JSON)
    if not tail and method == "POST":
        return _update(environ, start, ds, query)
    if tail == ["state"] and method == "PUT":
        return _change_state(environ, start, ds)
    if tail == ["cancelrequest"] and method == "POST":
        return _cancel(start, ds)
    return _error(start, "405 Method Not Allowed", "method not allowed")


def _create(environ: dict[str, Any], start: Any, query: str) -> list[bytes]:
    """PS3.18 11.4: the workitem UID in the query, else in the data set; 201 + Location."""
    if DICOM_JSON not in environ.get("CONTENT_TYPE", ""):
        return _error(start, "415 Unsupported Media Type", "application/dicom+json only")
    ds = _read(environ)
    if ds is None:
        return _error(start, "400 Bad Request", "the body is not a DICOM JSON data set")
    uid = query.split("&")[0] if query and "=" not in query.split("&")[0] else None
    uid = uid or _value(ds, SOP_INSTANCE)
    if not uid:
        return _error(start, "400 Bad Request", "no workitem UID")
    if _value(ds, STATE) != "SCHEDULED":
        return _error(start, "400 Bad Request",
                      "Procedure Step State shall be SCHEDULED (PS3.4 CC.2.5.1.3.1)")
    if uid in workitems:
        return _error(start, "409 Conflict", f"workitem {uid} already exists")
    ds[SOP_INSTANCE] = {"vr": "UI", "Value": [uid]}
    workitems[uid] = ds
    host = environ.get("HTTP_HOST", "localhost")
    return _reply(start, "201 Created", headers=[
        ("Location", f"http://{host}/ups/workitems/{uid}")])


def _search(start: Any, query: str, accept: str) -> list[bytes]:
    """PS3.18 11.9: match on the attribute keywords given; 204 when nothing matches."""
    keys = {"ProcedureStepState": STATE, "00741000": STATE}
    match = [(keys[k], v) for k, v in parse_qsl(query) if k in keys]
    found = [_public(ds) for ds in workitems.values()
             if all(_value(ds, t) == v for t, v in match)]
    if not found:
        return _reply(start, "204 No Content")
    return _reply(start, "200 OK", json.dumps(found).encode(), DICOM_JSON)


def _update(environ: dict[str, Any], start: Any, ds: dict[str, Any],
            query: str) -> list[bytes]:
    """PS3.18 11.6 / PS3.4 CC.2.6: SCHEDULED needs no Transaction UID, IN PROGRESS the one
    of the performer; a final state refuses the update."""
    state = _value(ds, STATE)
    if state in ("COMPLETED", "CANCELED"):
        return _error(start, "409 Conflict",
                      f"The UPS is in the {state} state and cannot be updated")
    given = query.split("&")[0] if query else None
    if state == "IN PROGRESS" and given != _value(ds, TXN):
        return _error(start, "409 Conflict",
                      "The Transaction UID is missing or does not match")
    change = _read(environ)
    if change is None:
        return _error(start, "400 Bad Request", "the body is not a DICOM JSON data set")
    if STATE in change:
        return _error(start, "400 Bad Request",
                      "Procedure Step State is changed with /state (PS3.18 11.7)")
    ds.update(change)
    return _reply(start, "200 OK")


def _change_state(environ: dict[str, Any], start: Any, ds: dict[str, Any]) -> list[bytes]:
    """PS3.18 11.7 / PS3.4 CC.1.1 (Table CC.1.1-2)."""
    req = _read(environ)
    if req is None or _value(req, STATE) is None:
        return _error(start, "400 Bad Request", "Procedure Step State missing")
    want, txn = _value(req, STATE), _value(req, TXN)
    state = _value(ds, STATE)
    if not txn:
        return _error(start, "409 Conflict", "The Transaction UID is missing")
    if want == state and want in ("COMPLETED", "CANCELED") and txn == _value(ds, TXN):
        return _reply(start, "200 OK", headers=_warn(
            f"The UPS is already in the requested state of {want}"))
    if state == "SCHEDULED" and want == "IN PROGRESS":
        ds[TXN] = {"vr": "UI", "Value": [txn]}
    elif state == "IN PROGRESS" and want in ("COMPLETED", "CANCELED"):
        if txn != _value(ds, TXN):
            return _error(start, "409 Conflict", "The Transaction UID does not match")
    else:
        return _error(start, "409 Conflict",
                      f"The submitted request is inconsistent with the current state "
                      f"({state}) of the UPS Instance")
    ds[STATE] = {"vr": "CS", "Value": [want]}
    return _reply(start, "200 OK")


def _cancel(start: Any, ds: dict[str, Any]) -> list[bytes]:
    """PS3.18 11.8: 202 when the request is accepted (the state has not changed yet)."""
    state = _value(ds, STATE)
    if state == "CANCELED":
        return _reply(start, "200 OK", headers=_warn(
            "The UPS is already in the requested state of CANCELED"))
    if state == "COMPLETED":
        return _error(start, "409 Conflict",
                      "The UPS is already COMPLETED and cannot be canceled")
    if state == "SCHEDULED":
        ds[STATE] = {"vr": "CS", "Value": ["CANCELED"]}
    return _reply(start, "202 Accepted")


def _subscription(environ: dict[str, Any], start: Any, method: str, uid: str, aet: str,
                  rest: list[str], query: str) -> list[bytes]:
    """PS3.18 11.10-11.11: subscribe (201), unsubscribe (200), suspend a global one (200)."""
    if uid not in workitems and uid not in (GLOBAL, FILTERED):
        return _error(start, "404 Not Found", f"no workitem {uid}")
    subs = subscribers.setdefault(uid, {})
    if rest == ["suspend"] and method == "POST":
        if uid not in (GLOBAL, FILTERED):
            return _error(start, "400 Bad Request", "only a global subscription is suspended")
        if aet not in subs:
            return _error(start, "404 Not Found", f"{aet} has no subscription")
        subs[aet] = "suspended"
        return _reply(start, "200 OK")
    if rest:
        return _error(start, "404 Not Found", "no such resource")
    if method == "POST":
        subs[aet] = "deletion lock" if "deletionlock=true" in query else "subscribed"
        return _reply(start, "201 Created")
    if method == "DELETE":
        if subs.pop(aet, None) is None:
            return _error(start, "404 Not Found", f"{aet} has no subscription")
        return _reply(start, "200 OK")
    return _error(start, "405 Method Not Allowed", "method not allowed")


if __name__ == "__main__":
    from waitress import serve

    serve(app, host="0.0.0.0", port=int(sys.argv[1]), ident="waitress")
