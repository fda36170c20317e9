"""What a finished DICOMweb exchange means, and what is wrong with it (``DICOMWEB-*`` findings).

Called by :class:`~.analyzer.DicomwebConnection` when a request body has ended
(:func:`request_done`: the STOW-RS parts) and when a response has ended (:func:`response_done`).
It needs no more of the connection than a place for findings (:class:`~.exchange.FindingSink`),
so it does not import the analyzer that calls it.
Each finding names the PS3.18 section (or RFC 9110) that decides the question.
"""

from __future__ import annotations

from typing import Any

from pydicom.uid import UID

from dissectors.http.message import safe_text

from . import payload
from .exchange import Exchange, FindingSink, accept_words
from .services import QIDO, SECTION, STOW, WADO_RS, WADO_URI
from .status import failure_reason

LISTED = 5  # instances named in one finding; the rest are counted


def _uid_name(uid: str | None) -> str:
    if not uid:
        return "?"
    name = UID(uid).name
    return name if name != uid else uid


def _names(items: list[str]) -> str:
    head = ", ".join(items[:LISTED])
    return head + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def request_done(conn: FindingSink, ex: Exchange) -> None:
    """The request body is over: STOW-RS parts become the instances of the transaction."""
    txn, body = ex.txn, ex.req_body
    if body is None:
        return
    _problems(conn, ex, body, "request", txn.request_end_frame or txn.request_frame)
    if ex.web.service != STOW:
        return
    txn.parts = body.parts
    syntaxes = set()
    bad = []
    for p in body.parts:
        if p.get("not_part10"):
            bad.append(f"part {p['index'] + 1} ({p['bytes']} bytes, "
                       f"{p.get('sniffed') or 'unknown content'})")
            continue
        for inst in p.get("instances", []):  # a DICOM JSON metadata part
            txn.instances.append({**inst, "part": p["index"] + 1, "outcome": None})
        if p.get("sop_instance"):
            txn.instances.append({"sop_class": p.get("sop_class"),
                                  "sop_instance": p["sop_instance"],
                                  "transfer_syntax": p.get("transfer_syntax"),
                                  "study": p.get("study"), "bytes": p["bytes"],
                                  "part": p["index"] + 1, "outcome": None})
            if p.get("transfer_syntax"):
                syntaxes.add(p["transfer_syntax"])
    if len(syntaxes) == 1:
        txn.transfer_syntax = syntaxes.pop()
    frame = txn.request_end_frame or txn.request_frame
    if bad:
        conn.finding(frame, "warning", "DICOMWEB-STOW-PART-NOT-DICOM",
                     f"STOW-RS: {_names(bad)} labelled application/dicom but not a PS3.10 "
                     "file (no 'DICM' after the 128-byte preamble)", "PS3.18 10.5.1; PS3.10 7.1")
    if txn.study:
        other = [i for i in txn.instances if i.get("study") and i["study"] != txn.study]
        for i in other:
            i["other_study"] = True
        if other:
            conn.finding(frame, "warning", "DICOMWEB-STOW-OTHER-STUDY",
                         f"STOW-RS to study {txn.study}: "
                         f"{_names([i['sop_instance'] for i in other])} belong(s) to another "
                         "study; the origin server shall fail such instances", "PS3.18 10.5.1")


def response_done(conn: FindingSink, ex: Exchange) -> None:
    txn, body, resp = ex.txn, ex.resp_body, ex.response
    if resp is None:
        return
    frame = resp.end_frame or resp.head_frame
    status = txn.status or 0
    service = ex.web.service
    where = f"{txn.command} {txn.action}" if service else f"{txn.method} {txn.target[:80]}"
    for w in resp.header_all("warning")[:8]:
        txn.warnings.append(w[:300])
        conn.finding(frame, "warning", "DICOMWEB-WARNING-HEADER",
                     f"{where}: status {status} with Warning: {w[:300]}", "PS3.18 8.4")
    if body is None:
        return
    _problems(conn, ex, body, "response", frame)
    data = bytes(body.copy) if body.copy is not None else None
    if resp.body_bytes and txn.response_content_type is None and service is not None:
        what = payload.sniff(bytes(body.head) if body.head else (data or b"")[:64])
        conn.finding(frame, "warning", "DICOMWEB-NO-CONTENT-TYPE",
                     f"{where}: the {status} response has a {resp.body_bytes}-byte body "
                     "without Content-Type" + (f" (it looks like {what})" if what else ""),
                     "RFC 9110 8.3")
    if status >= 400:
        if not (service == STOW and status == 409):  # its Failed SOP Sequence says it all
            _error(conn, ex, data, frame, where)
        if service == STOW and data is not None:
            _stow(conn, ex, data, frame)
        return
    if service == QIDO:
        _qido(conn, ex, body, data, frame)
    elif service == STOW:
        if data is not None:
            _stow(conn, ex, data, frame)
        elif body.overflow:
            txn.error_text = "the Store Instances response was too large to decode"
    elif service in (WADO_RS, WADO_URI):
        _retrieve(conn, ex, body, data, frame, where)


def _problems(conn: FindingSink, ex: Exchange, body: Any, which: str,
              frame: int) -> None:
    for code, text in body.problems:
        conn.finding(frame, "warning", "DICOMWEB-" + code,
                     f"{ex.txn.command} {which} body: {text}", "RFC 2046 5.1; PS3.18 8.6")


def _error(conn: FindingSink, ex: Exchange, data: bytes | None, frame: int,
           where: str) -> None:
    txn = ex.txn
    status = txn.status or 0
    if data:
        txn.error_text = payload.error_text(data)
    said = f" (the server says: {txn.error_text})" if txn.error_text else ""
    service = ex.web.service
    section = SECTION.get(service or "", "RFC 9110 15")
    asked = accept_words(txn.accept)
    if status == 404:
        code, sev = "DICOMWEB-NOT-FOUND", "warning"
    elif status == 406:
        code, sev = "DICOMWEB-NOT-ACCEPTABLE", "warning"
        said += f"; Accept asked for: {'; '.join(asked) or 'nothing (no Accept header)'}"
        section = "PS3.18 8.7.4"
    elif status == 415:
        code, sev = "DICOMWEB-UNSUPPORTED-MEDIA-TYPE", "warning"
        said += f"; the request's Content-Type was {txn.request_content_type or 'absent'}"
    elif status >= 500:
        code, sev = "DICOMWEB-SERVER-ERROR", "error"
    else:
        code, sev = "DICOMWEB-CLIENT-ERROR", "warning"
    conn.finding(frame, sev, code, f"{where}: {status} {txn.status_meaning}{said}", section)
    specific = [a for a in asked if a not in ("*/*",)]
    if service in (WADO_RS, WADO_URI) and status in (400, 500, 501) and specific:
        conn.finding(frame, "warning", "DICOMWEB-ACCEPT-REFUSED",
                     f"{where}: the Accept header asked for {'; '.join(specific)} and the "
                     f"server answered {status}; a representation it cannot produce calls for "
                     "406 Not Acceptable", "PS3.18 8.7.4")


def _qido(conn: FindingSink, ex: Exchange, body: Any, data: bytes | None,
          frame: int) -> None:
    txn = ex.txn
    if txn.status == 204:
        txn.results = 0
    elif body.reader is not None:
        txn.results = body.part_count  # multipart/related; type=application/dicom+xml
    elif data is not None:
        doc = payload.load_json(data)
        if isinstance(doc, list):
            txn.results = len(doc)
        elif data.strip():
            conn.finding(frame, "warning", "DICOMWEB-QIDO-NOT-JSON",
                         f"QIDO-RS {txn.action}: the {txn.response_content_type or 'untyped'} "
                         "body is not a DICOM JSON array", "PS3.18 10.6.3; PS3.18 F.2")
        else:
            txn.results = 0
    if txn.results == 0:
        conn.finding(frame, "info", "DICOMWEB-QIDO-EMPTY",
                     f"QIDO-RS {txn.action}: nothing matched "
                     f"({'; '.join(txn.query) if txn.query else 'no matching keys'})",
                     "PS3.18 10.6.3")


def _stow(conn: FindingSink, ex: Exchange, data: bytes, frame: int) -> None:
    txn = ex.txn
    doc = payload.load_json(data)
    if doc is None and _is_xml(txn.response_content_type, data):
        from .nativexml import XmlRefused, parse

        try:
            doc = parse(data)
        except XmlRefused as exc:
            conn.finding(frame, "warning", "DICOMWEB-XML-REFUSED",
                         "STOW-RS: the XML Store Instances response is not read: "
                         + safe_text(str(exc)[:200]),
                         "PS3.18 10.5.3; PS3.19 A.1")
            return
    resp = payload.store_response(doc) if doc is not None else None
    if resp is None:
        if (txn.status or 0) < 400 and data.strip():
            labelled = txn.response_content_type or "no Content-Type"
            conn.finding(frame, "info", "DICOMWEB-STOW-RESPONSE-UNREAD",
                         "STOW-RS: the Store Instances response is neither DICOM JSON nor "
                         f"Native DICOM Model XML ({labelled}); its referenced and failed "
                         "instances are not read", "PS3.18 10.5.3")
        return
    status = txn.status or 0
    sent = {i["sop_instance"]: i for i in txn.instances}
    referenced = resp["referenced"]
    failed = resp["failed"]
    for r in referenced:
        i = sent.get(r["sop_instance"]) if r["sop_instance"] else None
        outcome = "stored with warning" if r["warning_reason"] is not None else "stored"
        if i is None:
            i = {"sop_class": r["sop_class"], "sop_instance": r["sop_instance"], "part": None}
            txn.instances.append(i)
            sent[r["sop_instance"] or ""] = i
        i["outcome"] = outcome
        if r["warning_reason"] is not None:
            i["warning_reason"] = failure_reason(r["warning_reason"])
            txn.warnings.append(f"{r['sop_instance']}: {i['warning_reason']}")
    for f in failed:
        reason = failure_reason(f["failure_reason"])
        txn.failed.append({"sop_class": f["sop_class"], "sop_instance": f["sop_instance"],
                           "failure_reason": f["failure_reason"], "reason": reason})
        i = sent.get(f["sop_instance"]) if f["sop_instance"] else None
        if i is None:
            i = {"sop_class": f["sop_class"], "sop_instance": f["sop_instance"], "part": None}
            txn.instances.append(i)
        i["outcome"] = "failed"
        i["failure_reason"] = reason
    n = len(txn.instances)
    not_instances = [p for p in txn.parts if p.get("not_part10")]
    if failed:
        listed = [f"{f['sop_instance'] or '?'} ({_uid_name(f['sop_class'])}): "
                  f"{failure_reason(f['failure_reason'])}" for f in failed]
        conn.finding(frame, "error", "DICOMWEB-STOW-FAILED",
                     f"STOW-RS: {len(failed)} of {max(n, len(failed))} instance(s) failed: "
                     f"{_names(listed)}", "PS3.18 10.5.3")
    warned = [r for r in referenced if r["warning_reason"] is not None]
    if warned:
        conn.finding(frame, "warning", "DICOMWEB-STOW-WARNING",
                     f"STOW-RS: {len(warned)} instance(s) stored with a warning: "
                     + _names([f"{r['sop_instance']}: {failure_reason(r['warning_reason'])}"
                               for r in warned]), "PS3.18 10.5.3")
    stored_other = [i for i in txn.instances if i.get("other_study")
                    and i.get("outcome", "").startswith("stored")]
    if stored_other:
        conn.finding(frame, "error", "DICOMWEB-STOW-OTHER-STUDY-STORED",
                     f"STOW-RS to study {txn.study}: the server stored "
                     f"{_names([i['sop_instance'] for i in stored_other])} of another study "
                     "instead of failing it", "PS3.18 10.5.1")
    # The status must agree with the body (PS3.18 10.5.3): 200 all stored, 202 some failed
    # or warned, 409 none stored.
    expected = None
    unstored = len(failed) + (len(not_instances) if not failed else 0)
    if unstored and referenced:
        expected = 202
    elif unstored and not referenced:
        expected = 409
    elif warned:
        expected = 202
    elif referenced:
        expected = 200
    if expected is not None and status != expected and not (status >= 400 and expected == 409):
        conn.finding(frame, "warning", "DICOMWEB-STOW-STATUS",
                     f"STOW-RS answered {status} but its body lists {len(referenced)} stored "
                     f"and {len(failed)} failed instance(s){' with warnings' if warned else ''}"
                     + (f", and the request had {len(not_instances)} part(s) that were not "
                        "instances" if not_instances and not failed else "")
                     + f": PS3.18 10.5.3 calls for {expected}", "PS3.18 10.5.3")
    missing = [i for i in txn.instances if i.get("outcome") is None]
    if missing:
        conn.finding(frame, "warning", "DICOMWEB-STOW-UNACCOUNTED",
                     f"STOW-RS: {_names([i['sop_instance'] for i in missing])} sent but "
                     "neither in the Referenced SOP Sequence nor in the Failed SOP Sequence of "
                     "the response", "PS3.18 10.5.3")
        for i in missing:
            i["outcome"] = "not in response"
    if resp["other_failures"]:
        conn.finding(frame, "warning", "DICOMWEB-STOW-OTHER-FAILURES",
                     f"STOW-RS: {resp['other_failures']} item(s) in the Other Failures "
                     "Sequence", "PS3.18 10.5.3")


def _is_xml(content_type: str | None, data: bytes) -> bool:
    """A body to read as PS3.19 XML: labelled so, or unlabelled and starting with '<'."""
    if content_type is not None:
        return "xml" in content_type.lower()
    return data.lstrip()[:1] == b"<"


def _retrieve(conn: FindingSink, ex: Exchange, body: Any, data: bytes | None,
              frame: int, where: str) -> None:
    txn = ex.txn
    if body.reader is not None:
        txn.parts = body.parts
        syntaxes = set()
        for p in body.parts:
            if p.get("sop_instance"):
                txn.instances.append({"sop_class": p.get("sop_class"),
                                      "sop_instance": p["sop_instance"],
                                      "transfer_syntax": p.get("transfer_syntax"),
                                      "bytes": p["bytes"], "part": p["index"] + 1,
                                      "outcome": "retrieved"})
            if p.get("transfer_syntax"):
                syntaxes.add(p["transfer_syntax"])
        outer_ts = body.params.get("transfer-syntax") or payload_ts(body.params.get("type"))
        if outer_ts:
            syntaxes.add(outer_ts)
        if len(syntaxes) == 1:
            txn.transfer_syntax = syntaxes.pop()
        bad = [p for p in body.parts if p.get("not_part10")]
        if bad:
            conn.finding(frame, "warning", "DICOMWEB-WADO-PART-NOT-DICOM",
                         f"{where}: {len(bad)} part(s) labelled application/dicom are not "
                         "PS3.10 files", "PS3.18 8.7.3; PS3.10 7.1")
        if txn.status == 200 and body.part_count == 0:
            conn.finding(frame, "warning", "DICOMWEB-WADO-EMPTY",
                         f"{where}: 200 OK with a multipart body of no parts", "PS3.18 10.4.3")
        return
    if data is not None and txn.action.endswith("Metadata"):
        doc = payload.load_json(data)
        if isinstance(doc, list):
            txn.results = len(doc)
            for d in doc[:1000]:
                c, i = payload.dataset_uids(d)
                if i:
                    txn.instances.append({"sop_class": c, "sop_instance": i,
                                          "outcome": "metadata"})
        return
    head = bytes(body.head)
    declared = body.media_type
    actual = payload.sniff(head)
    if actual == "application/dicom":
        hdr = payload.instance_header(head)
        if hdr and hdr.get("sop_instance"):
            txn.instances.append({**hdr, "bytes": txn.response_bytes, "outcome": "retrieved"})
            txn.transfer_syntax = hdr.get("transfer_syntax")
    comparable = declared.startswith("image/") or declared == "application/dicom"
    if actual and declared and comparable and not actual.startswith(declared) and \
            not (actual == "image/jp2 (codestream)" and declared.startswith("image/jp")):
        conn.finding(frame, "warning", "DICOMWEB-MEDIA-TYPE-MISMATCH",
                     f"{where}: the body is labelled {declared} but its bytes are {actual}",
                     "RFC 9110 8.3; " + SECTION.get(ex.web.service or "", "PS3.18"))


def payload_ts(inner: str | None) -> str | None:
    """A transfer-syntax parameter inside a multipart's ``type`` parameter (Orthanc puts
    ``type="application/octet-stream; transfer-syntax=..."``)."""
    if not inner or "transfer-syntax" not in inner:
        return None
    from dissectors.http.mediatype import parse_media_type

    return parse_media_type(inner)[1].get("transfer-syntax")
