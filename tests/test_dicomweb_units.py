"""DICOMweb interpretation on hand-built exchanges: what Orthanc 1.10 cannot send (406, a 202
with a Failed SOP Sequence and warnings, UPS-RS, XML results, 204 for no match).

Each case pins the PS3.18 reading in the test name or an assertion's comment.
"""

from __future__ import annotations

import io
import json

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from dicomsniff.dicomweb.services import classify
from dicomsniff.dicomweb.session import DicomwebAnalyzer
from dicomsniff.dicomweb.status import category, failure_reason, meaning


def exchange(client: bytes, server: bytes) -> DicomwebAnalyzer:
    web = DicomwebAnalyzer()
    conn = web.open_connection("192.0.2.1:40000", "192.0.2.2:8080", 1, 0.0)
    conn.http.directions[0].feed(client, 1, 0.0)
    conn.http.directions[1].feed(server, 2, 0.5)
    web.close_connection(conn, "fin", 3, 1.0)
    return web


def http(start: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    h = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if body or start.startswith("HTTP"):
        h += f"Content-Length: {len(body)}\r\n"
    return f"{start}\r\n{h}\r\n".encode() + body


def part10(sop: str, study: str = "1.2.3", ts: str = ExplicitVRLittleEndian) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ts
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID = CTImageStorage, sop, study
    ds.PatientName = "SYNTHETIC^UNIT"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def multipart(parts: list[tuple[str, bytes]], boundary: str = "XyZ") -> bytes:
    out = b""
    for ctype, data in parts:
        out += f"--{boundary}\r\nContent-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--".encode()


def seq_item(sop: str, **extra: int) -> dict:
    item = {"00081150": {"vr": "UI", "Value": [CTImageStorage]},
            "00081155": {"vr": "UI", "Value": [sop]}}
    for tag, v in extra.items():
        item[tag[1:]] = {"vr": "US", "Value": [v]}
    return item


@pytest.mark.parametrize("method,target,service,action", [
    ("GET", "/rs/studies?PatientID=1", "QIDO-RS", "Search for Studies"),
    ("GET", "/rs/studies/1.2/series/3.4/instances", "QIDO-RS",
     "Search for Instances of a Series"),
    ("GET", "/rs/studies/1.2/series/3.4/instances/5.6/frames/1,3", "WADO-RS", "Retrieve Frames"),
    ("GET", "/rs/studies/1.2/series/3.4/instances/5.6/bulkdata/7fe00010", "WADO-RS",
     "Retrieve Bulkdata"),
    ("GET", "/rs/studies/1.2/series/3.4/rendered", "WADO-RS", "Retrieve Rendered Series"),
    ("GET", "/rs/studies/1.2/thumbnail", "WADO-RS", "Retrieve Thumbnail Study"),
    ("POST", "/rs/studies/1.2", "STOW-RS", "Store Instances in a Study"),
    ("GET", "/wado.php?REQUESTTYPE=WADO&studyUID=1&seriesUID=2&objectUID=3", "WADO-URI",
     "Retrieve object (WADO-URI)"),
    # PS3.18 11: the Worklist (UPS-RS) resources
    ("POST", "/rs/workitems?1.2.3.4", "UPS-RS", "Create Workitem"),
    ("GET", "/rs/workitems?ProcedureStepState=SCHEDULED", "UPS-RS", "Search for Workitems"),
    ("GET", "/rs/workitems/1.2.3.4", "UPS-RS", "Retrieve Workitem"),
    ("POST", "/rs/workitems/1.2.3.4", "UPS-RS", "Update Workitem"),
    ("PUT", "/rs/workitems/1.2.3.4/state", "UPS-RS", "Change Workitem State"),
    ("POST", "/rs/workitems/1.2.3.4/cancelrequest", "UPS-RS", "Request Cancellation"),
    ("POST", "/rs/workitems/1.2.3.4/subscribers/VIEWER", "UPS-RS", "Create Subscription"),
    ("DELETE", "/rs/workitems/1.2.840.10008.5.1.4.34.5/subscribers/VIEWER", "UPS-RS",
     "Delete Global Subscription"),
    ("POST", "/rs/workitems/1.2.840.10008.5.1.4.34.5.1/subscribers/VIEWER/suspend", "UPS-RS",
     "Suspend Filtered Global Subscription"),
    ("GET", "/app/index.html", None, "GET (not a PS3.18 resource)"),
])
def test_classify(method: str, target: str, service: str | None, action: str) -> None:
    w = classify(method, target)
    assert (w.service, w.action) == (service, action)


def test_frames_and_uids_from_the_path() -> None:
    w = classify("GET", "/rs/studies/1.2/series/3.4/instances/5.6/frames/1,3")
    assert (w.study, w.series, w.instance, w.frames) == ("1.2", "3.4", "5.6", [1, 3])


def test_status_words() -> None:
    assert category(202) == "Warning" and category(409) == "Failure" and category(200) == \
        "Success"
    assert "some instances were stored" in meaning(202, "STOW-RS")
    assert "Not Acceptable" in meaning(406, "WADO-RS")
    assert failure_reason(0xC122) == "0xC122 Referenced Transfer Syntax not supported"
    assert failure_reason(0xA700) == "0xA700 Refused: Out of resources"


def test_406_explained_with_the_accept_header() -> None:
    client = http("GET /rs/studies/1.2/series/3.4/instances/5.6 HTTP/1.1", {
        "Host": "pacs", "Accept": 'multipart/related; type="application/dicom"; '
                                  "transfer-syntax=1.2.840.10008.1.2.4.90"})
    web = exchange(client, http("HTTP/1.1 406 Not Acceptable", {"Content-Type": "text/plain"},
                                b"no JPEG 2000 codec"))
    t = web.transactions[0]
    assert (t.command, t.status, t.status_category) == ("WADO-RS", 406, "Failure")
    f = next(f for f in web.findings if f.code == "DICOMWEB-NOT-ACCEPTABLE")
    assert "JPEG 2000 Image Compression (Lossless Only)" in f.message
    assert "no JPEG 2000 codec" in f.message and f.section == "PS3.18 8.7.4"
    assert "DICOMWEB-ACCEPT-REFUSED" not in [f.code for f in web.findings]  # 406 is right


def _stow(status: str, response: dict) -> DicomwebAnalyzer:
    body = multipart([("application/dicom", part10("1.2.3.100")),
                      ("application/dicom", part10("1.2.3.101", ts="1.2.840.10008.1.2.4.90")),
                      ("application/dicom", part10("1.2.3.102"))])
    client = http("POST /rs/studies HTTP/1.1", {
        "Host": "pacs", "Content-Type": 'multipart/related; type="application/dicom"; '
                                        "boundary=XyZ"}, body)
    return exchange(client, http(f"HTTP/1.1 {status}", {
        "Content-Type": "application/dicom+json"}, json.dumps(response).encode()))


def test_stow_202_failed_and_warned_instances_in_words() -> None:
    """PS3.18 10.5.3: 202 when some instances failed or were stored with warnings."""
    web = _stow("202 Accepted", {
        "00081199": {"vr": "SQ", "Value": [seq_item("1.2.3.100"),
                                           seq_item("1.2.3.102", x00081196=0xB000)]},
        "00081198": {"vr": "SQ", "Value": [seq_item("1.2.3.101", x00081197=0xC122)]}})
    t = web.transactions[0]
    assert t.status_category == "Warning"
    assert [(i["sop_instance"], i["outcome"]) for i in t.instances] == [
        ("1.2.3.100", "stored"), ("1.2.3.101", "failed"), ("1.2.3.102", "stored with warning")]
    assert t.instances[1]["transfer_syntax"] == "1.2.840.10008.1.2.4.90"
    assert t.failed[0]["reason"] == "0xC122 Referenced Transfer Syntax not supported"
    codes = [f.code for f in web.findings]
    assert "DICOMWEB-STOW-FAILED" in codes and "DICOMWEB-STOW-WARNING" in codes
    assert "DICOMWEB-STOW-STATUS" not in codes and "DICOMWEB-STOW-UNACCOUNTED" not in codes
    warn = next(f for f in web.findings if f.code == "DICOMWEB-STOW-WARNING")
    assert "0xB000 Coercion of data elements" in warn.message


def test_stow_200_with_a_failure_and_an_unaccounted_instance() -> None:
    web = _stow("200 OK", {
        "00081199": {"vr": "SQ", "Value": [seq_item("1.2.3.100")]},
        "00081198": {"vr": "SQ", "Value": [seq_item("1.2.3.101", x00081197=0xA700)]}})
    msgs = {f.code: f.message for f in web.findings}
    assert "calls for 202" in msgs["DICOMWEB-STOW-STATUS"]
    assert "1.2.3.102" in msgs["DICOMWEB-STOW-UNACCOUNTED"]
    assert web.transactions[0].instances[2]["outcome"] == "not in response"


def test_stow_json_metadata_part_names_its_instance() -> None:
    meta = [{"00080016": {"vr": "UI", "Value": [CTImageStorage]},
             "00080018": {"vr": "UI", "Value": ["1.2.3.200"]}}]
    body = multipart([("application/dicom+json", json.dumps(meta).encode()),
                      ("application/octet-stream", b"\x00" * 100)])
    client = http("POST /rs/studies HTTP/1.1", {
        "Host": "pacs", "Content-Type": 'multipart/related; type="application/dicom+json"; '
                                        "boundary=XyZ"}, body)
    web = exchange(client, http("HTTP/1.1 200 OK", {"Content-Type": "application/dicom+json"},
                                json.dumps({"00081199": {"vr": "SQ", "Value": [
                                    seq_item("1.2.3.200")]}}).encode()))
    t = web.transactions[0]
    assert [(i["sop_instance"], i["outcome"]) for i in t.instances] == [("1.2.3.200", "stored")]
    assert not [f for f in web.findings if f.severity != "info"]


def test_qido_204_and_xml_multipart_results() -> None:
    web = exchange(http("GET /rs/studies?PatientName=NONE HTTP/1.1", {"Host": "p"}),
                   http("HTTP/1.1 204 No Content", {}))
    assert web.transactions[0].results == 0
    assert web.findings[0].code == "DICOMWEB-QIDO-EMPTY"
    xml = multipart([("application/dicom+xml", b"<NativeDicomModel/>")] * 3)
    web = exchange(http("GET /rs/series HTTP/1.1", {"Host": "p"}), http(
        "HTTP/1.1 200 OK", {"Content-Type": 'multipart/related; type="application/dicom+xml";'
                                            " boundary=XyZ"}, xml))
    assert web.transactions[0].results == 3 and not web.findings


def test_ups_rs_conflict_with_warning_header() -> None:
    web = exchange(http("PUT /rs/workitems/1.2.3/state HTTP/1.1", {
        "Host": "p", "Content-Type": "application/dicom+json"}, b"[{}]"),
        http("HTTP/1.1 409 Conflict", {
            "Warning": '299 pacs: "The UPS is already in the requested state of COMPLETED"',
            "Content-Type": "text/plain"}, b"conflict"))
    t = web.transactions[0]
    assert (t.command, t.action, t.workitem) == ("UPS-RS", "Change Workitem State", "1.2.3")
    assert "state" in t.status_meaning
    msgs = {f.code: f.message for f in web.findings}
    assert "already in the requested state" in msgs["DICOMWEB-WARNING-HEADER"]
    assert t.warnings and "COMPLETED" in t.warnings[0]


def test_request_after_connection_close_and_unanswered() -> None:
    client = (http("GET /rs/studies HTTP/1.1", {"Host": "p", "Connection": "close"})
              + http("GET /rs/series HTTP/1.1", {"Host": "p"}))
    web = exchange(client, http("HTTP/1.1 200 OK", {"Content-Type": "application/dicom+json"},
                                b"[]"))
    codes = [f.code for f in web.findings]
    assert "DICOMWEB-HTTP-AFTER-CLOSE" in codes and "DICOMWEB-UNANSWERED" in codes
    assert [t.status for t in web.transactions] == [200, None]


def test_wado_rs_part10_parts_give_uids_and_transfer_syntax() -> None:
    body = multipart([("application/dicom; transfer-syntax=1.2.840.10008.1.2.4.90",
                       part10("1.2.3.300", ts="1.2.840.10008.1.2.4.90"))])
    web = exchange(http("GET /rs/studies/1.2.3/series/4/instances/1.2.3.300 HTTP/1.1",
                        {"Host": "p"}),
                   http("HTTP/1.1 200 OK", {"Content-Type": 'multipart/related; '
                                            'type="application/dicom"; boundary=XyZ'}, body))
    t = web.transactions[0]
    assert t.instances[0]["sop_instance"] == "1.2.3.300"
    assert t.transfer_syntax == "1.2.840.10008.1.2.4.90"
    assert pydicom.uid.UID(t.transfer_syntax).is_compressed


def test_hostile_strings_are_escaped_in_records() -> None:
    web = exchange(http("GET /rs/studies/%1b%5b31m/metadata?PatientName=%07%e9 HTTP/1.1",
                        {"Host": "p", "User-Agent": "evil\x7f"}),
                   http("HTTP/1.1 404 Not Found", {"Content-Type": "text/plain"},
                        "\x1b[2Jgone \u00e9".encode()))
    t = web.transactions[0]
    assert t.study == "\\x1b[31m" and t.user_agent == "evil\\x7f"
    assert "\\x1b[2Jgone \\xc3\\xa9" == t.error_text
    assert t.query == ["PatientName=\\x07\\xef\\xbf\\xbd"]  # %e9 alone: U+FFFD


def test_gzip_content_encoding_is_read_and_a_bomb_is_stopped() -> None:
    """RFC 9110 8.4: dicomweb-client asks for gzip; Orthanc's default config compresses."""
    import gzip
    import zlib

    doc = json.dumps([{"0020000D": {"vr": "UI", "Value": [f"1.2.{i}"]}} for i in range(40)])
    web = exchange(http("GET /rs/studies HTTP/1.1", {"Host": "p"}),
                   http("HTTP/1.1 200 OK", {"Content-Type": "application/dicom+json",
                                            "Content-Encoding": "gzip"},
                        gzip.compress(doc.encode())))
    assert web.transactions[0].results == 40 and not web.findings
    # 32 MiB of blanks in ~32 kB, compressed piece by piece: never 32 MiB in this process
    # (other tests read the peak RSS of children forked from it).
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    blanks = b" " * (1 << 20)
    bomb = b"".join([z.compress(b"["), *(z.compress(blanks) for _ in range(32)),
                     z.compress(b"]"), z.flush()])
    web = exchange(http("GET /rs/studies HTTP/1.1", {"Host": "p"}),
                   http("HTTP/1.1 200 OK", {"Content-Type": "application/dicom+json",
                                            "Content-Encoding": "gzip"}, bomb))
    msgs = [f.message for f in web.findings if f.code == "DICOMWEB-CONTENT-ENCODING"]
    assert msgs and "inflates more than 64 times" in msgs[0]
    assert web.transactions[0].results is None


def test_create_workitem_uid_from_the_query() -> None:
    """PS3.18 11.4.1 POST /workitems{?workitem}: the query is the bare workitem UID."""
    assert classify("POST", "/rs/workitems?1.2.840.99.1").workitem == "1.2.840.99.1"
    assert classify("POST", "/rs/workitems?foo=1.2").workitem is None
    assert classify("POST", "/rs/workitems?not-a-uid").workitem is None
    assert classify("POST", "/rs/workitems?" + "1." * 40).workitem is None  # over 64


def test_instance_header_of_a_cut_part10_meta_is_unknown_not_raised() -> None:
    """A WADO part cut by a capture gap: the group length (0002,0000) UL holds one byte.
    pydicom raises BytesLengthException (not a ValueError); the header is unknown (found by
    the http fuzz target, seed 0)."""
    from dicomsniff.dicomweb.payload import instance_header

    head = b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x01\x00\xce" + b"\x02\x00\x01\x00OB"
    assert instance_header(head) == {"sop_class": None, "sop_instance": None,
                                     "transfer_syntax": None, "study": None}
