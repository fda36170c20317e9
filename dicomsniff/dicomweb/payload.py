"""What a DICOMweb body holds, read from a bounded prefix or a bounded copy.

* a Part 10 instance (a STOW-RS part, a WADO-RS part, a WADO-URI answer): the SOP Class,
  SOP Instance and Transfer Syntax UIDs from its first ``HEAD_BYTES`` (pydicom reads the
  file meta information and the first elements; the pixel data is never reached);
* DICOM JSON (PS3.18 Annex F): QIDO-RS matches, metadata, the Store Instances response, only
  when the body is at most ``JSON_CAP`` bytes (a larger one is counted, not decoded);
* the first bytes of anything else, to tell what it really is (a JPEG labelled image/png).
"""

from __future__ import annotations

import io
import json
from typing import Any

import pydicom

from dissectors.http.message import safe_text

HEAD_BYTES = 64 * 1024  # of an instance: enough for file meta and the SOP Common elements
JSON_CAP = 8 << 20  # a DICOM JSON body decoded; larger ones are counted only
TEXT_CAP = 2048  # of an error body: shown in a finding, escaped

SOP_CLASS, SOP_INSTANCE = "00080016", "00080018"
REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_CLASS, REFERENCED_SOP_INSTANCE = "00081150", "00081155"
FAILURE_REASON, WARNING_REASON = "00081197", "00081196"
RETRIEVE_URL = "00081190"
OTHER_FAILURES_SEQUENCE = "0008119A"

_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "image/jp2"),
    (b"\xff\x4f\xff\x51", "image/jp2 (codestream)"),
    (b"%PDF-", "application/pdf"),
)


def sniff(head: bytes) -> str | None:
    """The media type the first bytes show, or None when they show nothing known."""
    for magic, mtype in _MAGIC:
        if head.startswith(magic):
            return mtype
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "application/dicom"
    s = head.lstrip()[:1]
    if s in (b"{", b"["):
        return "application/json"
    if s == b"<":
        return "text/xml"
    return None


def instance_header(head: bytes) -> dict[str, str | None] | None:
    """SOP Class/Instance and Transfer Syntax UIDs of a Part 10 file from its first bytes.

    None when the bytes are not a Part 10 file (no ``DICM`` at offset 128, PS3.10 7.1).
    """
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    def text(v: Any) -> str | None:
        return None if v is None else safe_text(str(v)[:64])

    try:  # values are converted lazily: reading them is inside the guard too
        ds = pydicom.dcmread(io.BytesIO(head), stop_before_pixels=True,
                             specific_tags=["SOPClassUID", "SOPInstanceUID",
                                            "StudyInstanceUID"])
        meta = ds.file_meta
        return {"sop_class": text(ds.get("SOPClassUID")
                                  or meta.get("MediaStorageSOPClassUID")),
                "sop_instance": text(ds.get("SOPInstanceUID")
                                     or meta.get("MediaStorageSOPInstanceUID")),
                "transfer_syntax": text(meta.get("TransferSyntaxUID")),
                "study": text(ds.get("StudyInstanceUID"))}
    except Exception:  # noqa: BLE001 - pydicom raises many types on cut or hostile bytes
        # (InvalidDicomError, BytesLengthException, ValueError, ...): not decodable, reported
        return {"sop_class": None, "sop_instance": None, "transfer_syntax": None,
                "study": None}


def load_json(data: bytes) -> Any:
    """Decoded JSON, or None when it is not JSON (the caller reports that)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def first_value(item: Any, tag: str) -> Any:
    """The first Value of ``tag`` in a DICOM JSON object, or None."""
    if not isinstance(item, dict):
        return None
    el = item.get(tag)
    if not isinstance(el, dict):
        return None
    vals = el.get("Value")
    if not isinstance(vals, list) or not vals:
        return None
    return vals[0]


def sequence(item: Any, tag: str) -> list[dict[str, Any]] | None:
    """Items of a sequence in a DICOM JSON object: None when absent, [] when empty."""
    if not isinstance(item, dict) or tag not in item:
        return None
    el = item[tag]
    vals = el.get("Value") if isinstance(el, dict) else None
    return [v for v in vals if isinstance(v, dict)] if isinstance(vals, list) else []


def _reason(v: Any) -> int | None:
    if isinstance(v, int) and 0 <= v <= 0xFFFF:
        return v
    if isinstance(v, str) and v.strip().isdigit():  # some servers send US as a string
        n = int(v.strip())
        return n if n <= 0xFFFF else None
    return None


def store_response(doc: Any) -> dict[str, Any] | None:
    """The Store Instances response (PS3.18 10.5.3): referenced, failed, warnings."""
    if isinstance(doc, list) and len(doc) == 1:
        doc = doc[0]
    if not isinstance(doc, dict):
        return None
    out: dict[str, Any] = {"retrieve_url": first_value(doc, RETRIEVE_URL)}
    for key, tag in (("referenced", REFERENCED_SOP_SEQUENCE), ("failed", FAILED_SOP_SEQUENCE)):
        items = sequence(doc, tag)
        out[key + "_present"] = items is not None
        out[key] = [{"sop_class": _uid(first_value(i, REFERENCED_SOP_CLASS)),
                     "sop_instance": _uid(first_value(i, REFERENCED_SOP_INSTANCE)),
                     "failure_reason": _reason(first_value(i, FAILURE_REASON)),
                     "warning_reason": _reason(first_value(i, WARNING_REASON))}
                    for i in (items or [])[:10_000]]
    out["other_failures"] = len(sequence(doc, OTHER_FAILURES_SEQUENCE) or [])
    return out


def _uid(v: Any) -> str | None:
    return safe_text(v[:64]) if isinstance(v, str) else None


def dataset_uids(doc: Any) -> tuple[str | None, str | None]:
    """SOP Class and Instance UID of one DICOM JSON data set (a STOW-RS metadata part)."""
    return _uid(first_value(doc, SOP_CLASS)), _uid(first_value(doc, SOP_INSTANCE))


def error_text(data: bytes) -> str | None:
    """An error body in a few words: Orthanc's JSON Details/Message, else the text itself;
    None for JSON without such words (a DICOM JSON body is read elsewhere)."""
    doc = load_json(data)
    if isinstance(doc, dict):
        parts = [str(doc[k]) for k in ("Details", "Message", "message", "error")
                 if isinstance(doc.get(k), (str, int))]
        return safe_text("; ".join(parts)[:300]) if parts else None
    if doc is not None:
        return None
    text = data[:300].decode("utf-8", "replace").strip()
    return safe_text(text) if text else None
