"""DICOMweb peers beyond Orthanc (captures/dicomweb_more_record.py): a real 406 from
tiny-pacs-dicomweb, Orthanc's XML Store Instances responses (PS3.19 Native DICOM Model), and
HTTP/2 from curl and Hypercorn, reported, not decoded.

The ground truth is what curl logged (``-w %{json}``, in manifest-more.json); tshark's HTTP/2
dissector is the oracle for where HTTP/2 starts.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.dicomweb_files import analyze_file

DIR = Path(__file__).resolve().parent.parent / "captures" / "dicomweb"
MANIFEST = json.loads((DIR / "manifest-more.json").read_text())
ENTRIES = {e["file"]: e for e in MANIFEST["captures"]}
_CACHE: dict[str, object] = {}


def web(name: str):
    if name not in _CACHE:
        _CACHE[name] = analyze_file(DIR / name)
    return _CACHE[name]


def txns(name: str):
    return sorted(web(name).transactions, key=lambda t: t.request_frame)


def codes(name: str) -> list[str]:
    return [f.code for f in web(name).findings]


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_file_matches_manifest(name: str) -> None:
    assert hashlib.sha256((DIR / name).read_bytes()).hexdigest() == ENTRIES[name]["sha256"]
    assert ENTRIES[name]["tcpdump"]["dropped_by_kernel"] == 0


@pytest.mark.parametrize("name", ["tinypacs.pcap", "stow-xml.pcap"])
def test_every_exchange_curl_logged(name: str) -> None:
    truth = ENTRIES[name]["exchanges"]
    got = txns(name)
    assert len(got) == len(truth)
    for t, e in zip(got, truth, strict=True):
        path = urlsplit(e["url"])._replace(scheme="", netloc="").geturl()
        assert (t.method, t.target, t.status) == (e["method"], path, e["status"])
        assert (t.response_content_type or None) == (e["content_type"] or None)
        assert t.response_bytes == e["bytes"]


def test_a_real_406_for_qido_wado_rs_and_wado_uri() -> None:
    """tiny-pacs-dicomweb answers 406 where Orthanc answers 400/500 (PS3.18 8.7.4)."""
    t = txns("tinypacs.pcap")
    assert [(x.command, x.status) for x in t] == [
        ("STOW-RS", 200), ("QIDO-RS", 406), ("QIDO-RS", 200), ("WADO-RS", 406),
        ("WADO-URI", 406)]
    assert [i["outcome"] for i in t[0].instances] == ["stored", "stored"]
    found = [f for f in web("tinypacs.pcap").findings if f.code == "DICOMWEB-NOT-ACCEPTABLE"]
    assert len(found) == 3 and all(f.section == "PS3.18 8.7.4" for f in found)
    assert "application/dicom+xml" in found[0].message
    assert "JPEG 2000 Image Compression (Lossless Only)" in found[1].message
    assert "Only DICOM JSON responses are supported." in found[0].message  # the server's words
    assert "DICOMWEB-ACCEPT-REFUSED" not in codes("tinypacs.pcap")  # a 406 is the right answer


def test_xml_store_instances_responses_are_read() -> None:
    """Orthanc with Accept: application/dicom+xml: the PS3.19 response is read like the JSON
    one (the same instances stored and failed as stow.pcap's JSON responses say)."""
    first, second = txns("stow-xml.pcap")
    assert first.status == 200 and first.response_content_type == "application/dicom+xml"
    assert [i["outcome"] for i in first.instances] == ["stored", "stored"]
    assert second.status == 409 and second.response_content_type is None
    outcomes = {i["sop_instance"]: i["outcome"] for i in second.instances}
    assert sorted(outcomes.values()) == ["failed", "stored"]
    assert second.failed[0]["failure_reason"] == 0x0110
    assert "Processing failure" in second.failed[0]["reason"]
    c = codes("stow-xml.pcap")
    assert "DICOMWEB-STOW-RESPONSE-UNREAD" not in c and "DICOMWEB-XML-REFUSED" not in c
    assert {"DICOMWEB-STOW-FAILED", "DICOMWEB-STOW-STATUS", "DICOMWEB-NO-CONTENT-TYPE"} <= set(c)


def test_http2_is_decoded_with_h2() -> None:
    """Prior knowledge (RFC 9113 3.3) and h2c upgrade (RFC 7540 3.2), read with the h2
    library: the same exchanges curl logged, HTTP/2 said on the connection; Orthanc ignoring
    the Upgrade stays HTTP/1.1."""
    w = web("h2.pcap")
    conns = sorted(w.connections, key=lambda c: c.first_frame)
    assert [c.http2 for c in conns] == ["prior knowledge", "h2c upgrade", None]
    assert [c.server_software for c in conns][:2] == ["hypercorn-h2", "hypercorn-h2"]
    t = txns("h2.pcap")
    truth = ENTRIES["h2.pcap"]["exchanges"]
    assert [e["http_version"] for e in truth] == ["2", "2", "1.1"]  # curl's own account
    assert [x.http_version for x in t] == ["2", "1.1", "1.1"]  # h2c: the request was 1.1
    for x, e in zip(t, truth, strict=True):
        path = urlsplit(e["url"])._replace(scheme="", netloc="").geturl()
        assert (x.method, x.target, x.status) == (e["method"], path, e["status"])
        assert x.response_content_type == e["content_type"]
        assert x.response_bytes == e["bytes"] and x.response_complete
    assert t[1].informational == [101]  # the upgrade, then the answer on stream 1
    assert [x.results for x in t] == [0, 0, 1]
    assert "DICOMWEB-H2-NOT-DECODED" not in codes("h2.pcap")
    assert not [c for c in codes("h2.pcap") if c.startswith("DICOMWEB-HTTP")]


def test_http2_without_the_reader_is_said_not_silent() -> None:
    """With HTTP/2 decoding off (or the h2 library absent) the connection still says it."""
    from dicomsniff.dicomweb.session import DicomwebAnalyzer

    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    web_ = DicomwebAnalyzer()
    conn = web_.open_connection("192.0.2.1:1", "192.0.2.2:80", 1, 0.0)
    conn.http.decode_h2 = False
    conn.http.directions[0].feed(preface + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", 4, 0.0)
    web_.close_connection(conn, "fin", 9, 1.0)
    [c] = web_.connections
    assert c.http2 == "prior knowledge" and c.outcome == "http2"
    assert [f.code for f in web_.findings] == ["DICOMWEB-H2-NOT-DECODED"]
    assert web_.findings[0].frame == 4


@pytest.mark.tshark
def test_http2_frames_agree_with_tshark() -> None:
    """tshark's HTTP/2 dissector: the HEADERS frames of each stream are where our requests
    and responses begin, and the Magic is where prior knowledge starts."""
    if shutil.which("tshark") is None:
        pytest.fail("tshark is needed (installed by .ci/run)")
    out = subprocess.run(["tshark", "-r", str(DIR / "h2.pcap"), "-d", "tcp.port==8044,http",
                          "-Y", "http2.type == 1", "-T", "fields", "-e", "frame.number",
                          "-e", "http2.headers.method", "-e", "http2.headers.status"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    requests = [int(r[0]) for r in rows if r[1]]
    responses = [int(r[0]) for r in rows if r[2]]
    t = txns("h2.pcap")[:2]
    assert t[0].request_frame == requests[0]  # prior knowledge: the HEADERS of stream 1
    assert len(responses) == 2  # h2c: after the 101 (HTTP/1.1), the answer on stream 1
    for frame, x in zip(sorted(responses), t, strict=True):
        assert frame in x.response_frames


# -- the XML reader on hostile documents (dicomsniff/dicomweb/nativexml.py) --------------------

NS = 'xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM"'


def _doc(inner: str, ns: str = NS) -> bytes:
    return f'<?xml version="1.0"?><NativeDicomModel {ns}>{inner}</NativeDicomModel>'.encode()


def _failed(uid: str, reason: str = "272") -> str:
    return ('<DicomAttribute tag="00081198" vr="SQ"><Item number="1">'
            '<DicomAttribute tag="00081155" vr="UI"><Value number="1">'
            f'{uid}</Value></DicomAttribute><DicomAttribute tag="00081197" vr="US">'
            f'<Value number="1">{reason}</Value></DicomAttribute></Item></DicomAttribute>')


def test_native_xml_reads_like_dicom_json() -> None:
    from dicomsniff.dicomweb.nativexml import parse
    from dicomsniff.dicomweb.payload import store_response

    for ns in (NS, ""):  # with and without the PS3.19 namespace
        r = store_response(parse(_doc(_failed("1.2.3") + '<DicomAttribute tag="00081199" '
                                      'vr="SQ"/>', ns)))
        assert r is not None
        assert r["failed"] == [{"sop_class": None, "sop_instance": "1.2.3",
                                "failure_reason": 272, "warning_reason": None}]
        assert r["referenced"] == [] and r["referenced_present"]


@pytest.mark.parametrize("body, why", [
    # billion laughs: entities are refused at their declaration, never expanded
    (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
     b"<NativeDicomModel>&b;</NativeDicomModel>", "document type declaration"),
    # external entity (XXE): refused, nothing is read from the file system
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
     b"<NativeDicomModel>&e;</NativeDicomModel>", "document type declaration"),
    (b"<NativeDicomModel>&undefined;</NativeDicomModel>", "not well-formed"),
    (b"<NativeDicomModel>" + b"<Item>" * 100 + b"</Item>" * 100 + b"</NativeDicomModel>",
     "nested more than"),
    (b"<NativeDicomModel>" + b"<x/>" * 200_001 + b"</NativeDicomModel>", "more than 200000"),
    (b"<html><body>Bad Request</body></html>", "not NativeDicomModel"),
    (b"not xml at all", "not well-formed"),
    (b"<NativeDicomModel><DicomAttribute", "not well-formed"),
    (b"", "not well-formed"),
    # found by the fuzz target: an encoding Python does not know is a refusal, not a crash
    (b'<?xml version="1.0" encoding="utf48"?><NativeDicomModel/>', "unreadable"),
])
def test_native_xml_refuses_hostile_documents(body: bytes, why: str) -> None:
    from dicomsniff.dicomweb.nativexml import XmlRefused, parse

    with pytest.raises(XmlRefused, match=why):
        parse(body)


def test_native_xml_bounds_values_and_ignores_bad_tags() -> None:
    from dicomsniff.dicomweb.nativexml import MAX_VALUE, parse

    doc = parse(_doc('<DicomAttribute tag="00081190" vr="UR"><Value number="1">'
                     + "x" * (10 * MAX_VALUE) + "</Value></DicomAttribute>"
                     '<DicomAttribute tag="zz" vr="UI"><Value>1</Value></DicomAttribute>'))
    assert len(doc["00081190"]["Value"][0]) == MAX_VALUE
    assert list(doc) == ["00081190"]


def test_xml_refused_is_a_finding_not_a_crash() -> None:
    """A STOW-RS whose XML response carries a DTD: DICOMWEB-XML-REFUSED, the rest goes on."""
    from dicomsniff.dicomweb.session import DicomwebAnalyzer

    body = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><NativeDicomModel>&a;'
            b"</NativeDicomModel>")
    web = DicomwebAnalyzer()
    conn = web.open_connection("192.0.2.1:1", "192.0.2.2:80", 1, 0.0)
    req, resp = conn.http.directions
    req.feed(b"POST /dicom-web/studies HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/related; "
             b'type="application/dicom"; boundary=b\r\nContent-Length: 6\r\n\r\n--b--\r\n'
             b"GET /dicom-web/studies HTTP/1.1\r\nHost: a\r\n\r\n", 1, 0.0)
    resp.feed(b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+xml\r\nContent-Length: "
              + str(len(body)).encode() + b"\r\n\r\n" + body
              + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", 2, 0.1)
    web.close_connection(conn, "fin", 3, 0.2)
    assert [f.code for f in web.findings if f.code == "DICOMWEB-XML-REFUSED"]
    assert "document type declaration" in next(f.message for f in web.findings
                                               if f.code == "DICOMWEB-XML-REFUSED")
    assert len(web.transactions) == 2 and web.transactions[1].results == 0


# -- HTTP/2 detection in the parser (dissectors/http) ------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@pytest.mark.parametrize("step", [1, 3, 14, 24, 100])
def test_prior_knowledge_preface_in_any_segmentation(step: int) -> None:
    from dissectors.http.detect import is_h2_preface, looks_like_request
    from dissectors.http.stream import HttpConnection, HttpHandler

    said: list[tuple[str, int]] = []

    class H(HttpHandler):
        def http2(self, how, frame, decoded=False):
            said.append((how, frame))

        def problem(self, side, code, text, frame):
            said.append((code, frame))

    c = HttpConnection(H(), decode_h2=False)
    data = PREFACE + SETTINGS + b"\x00" * 50
    for i in range(0, len(data), step):
        c.directions[0].feed(data[i:i + step], i // step + 1, 0.0)
    c.directions[1].feed(SETTINGS, 99, 0.0)
    c.close(100, 1.0)
    assert said == [("prior knowledge", (len(PREFACE) - 1) // step + 1)]
    assert looks_like_request(PREFACE) is True and looks_like_request(PREFACE[:5]) is None
    assert is_h2_preface(b"PUT /x HTTP/1.1\r\n") is False


@pytest.mark.parametrize("step", [1, 2, 7])
def test_requests_beginning_with_p_are_still_http1(step: int) -> None:
    from dissectors.http.stream import HttpConnection, HttpHandler

    seen: list[str] = []

    class H(HttpHandler):
        def request(self, msg):
            seen.append(msg.method)

        def http2(self, how, frame, decoded=False):
            seen.append("h2")

    c = HttpConnection(H())
    data = (b"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
            b"POST /y HTTP/1.1\r\nHost: a\r\n\r\n")
    for i in range(0, len(data), step):
        c.directions[0].feed(data[i:i + step], 1, 0.0)
    assert seen == ["PUT", "POST"]


def test_h2c_upgrade_refused_or_accepted() -> None:
    """101 to Upgrade: h2c is HTTP/2 (said once); 101 to websocket is a plain tunnel."""
    from dissectors.http.stream import HttpConnection, HttpHandler

    def run(upgrade: str) -> list:
        said: list = []

        class H(HttpHandler):
            def http2(self, how, frame, decoded=False):
                said.append(how)

            def tunnel(self, frame):
                said.append("tunnel")

        c = HttpConnection(H(), decode_h2=False)
        c.directions[0].feed(f"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings"
                             f"\r\nUpgrade: {upgrade}\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"
                             "\r\n\r\n".encode() + PREFACE, 1, 0.0)
        c.directions[1].feed(f"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                             f"Upgrade: {upgrade}\r\n\r\n".encode() + SETTINGS, 2, 0.0)
        c.close(3, 0.0)
        return said

    assert run("h2c") == ["h2c upgrade", "tunnel"]
    assert run("websocket") == ["tunnel"]
