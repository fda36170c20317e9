"""DICOMweb on real recordings (captures/dicomweb/): Orthanc 1.10 with its DICOMweb plugin as
origin server, dicomweb-client and curl as user agents (captures/dicomweb_record.py).

The ground truth is what the user agents logged for every exchange (method, path, status,
Content-Type, body length); tshark's HTTP dissector is the independent oracle for framing.
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
MANIFEST = json.loads((DIR / "manifest.json").read_text())
ENTRIES = {e["file"]: e for e in MANIFEST["captures"]}
_CACHE: dict[str, object] = {}


def keylog(name: str):
    """The key log recorded with a capture (SSLKEYLOGFILE of the user agent), if any."""
    from dissectors.tls.keylog import KeyLog

    if "keylog" not in ENTRIES[name]:
        return None
    k = KeyLog()
    k.add_lines((DIR / ENTRIES[name]["keylog"]).read_bytes().splitlines())
    return k


def web(name: str):
    if name not in _CACHE:
        _CACHE[name] = analyze_file(DIR / name, keylog=keylog(name))
    return _CACHE[name]


def txns(name: str):
    return sorted(web(name).transactions, key=lambda t: t.request_frame)


def codes(name: str) -> list[str]:
    return [f.code for f in web(name).findings]


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_file_matches_manifest(name: str) -> None:
    data = (DIR / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == ENTRIES[name]["sha256"]
    assert ENTRIES[name]["tcpdump"]["dropped_by_kernel"] == 0


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_every_exchange_the_user_agent_logged(name: str) -> None:
    """Method, path, status, Content-Type and body length of each exchange, in order."""
    truth = ENTRIES[name]["exchanges"]
    got = txns(name)
    assert len(got) == len(truth)
    for t, e in zip(got, truth, strict=True):
        path = e.get("path") or urlsplit(e["url"])._replace(scheme="", netloc="").geturl()
        assert (t.method, t.target, t.status) == (e["method"], path, e["status"])
        assert (t.response_content_type or None) == (e["content_type"] or None)
        assert t.response_bytes == e["bytes"]
        assert t.response_complete and t.request_complete


@pytest.mark.tshark
@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_http_framing_agrees_with_tshark(name: str) -> None:
    if shutil.which("tshark") is None:
        pytest.fail("tshark is needed (installed by .ci/run)")
    tls = []
    if "keylog" in ENTRIES[name]:
        tls = ["-o", f"tls.keylog_file:{DIR / ENTRIES[name]['keylog']}",
               "-d", f"tcp.port=={ENTRIES[name]['server_ports'][0]},tls"]
    out = subprocess.run(["tshark", "-r", str(DIR / name), *tls, "-Y", "http", "-T", "fields",
                          "-e", "frame.number", "-e", "http.request.method", "-e",
                          "http.request.uri", "-e", "http.response.code"],
                         capture_output=True, text=True, check=True).stdout
    requests, responses = [], []
    for line in out.splitlines():
        frame, method, uri, code = (line.split("\t") + ["", "", ""])[:4]
        if method:
            requests.append((int(frame), method, uri))
        if code:
            responses.append((int(frame), int(code)))
    ours = txns(name)
    # tshark reports a message at the frame that completes it (head and body reassembled).
    assert requests == [(t.request_end_frame, t.method, t.target) for t in ours]
    assert sorted(responses) == sorted((t.response_frames[-1], t.status) for t in ours)


def test_stow_outcomes_and_orthanc_departures() -> None:
    t = txns("stow.pcap")
    assert [x.command for x in t] == ["STOW-RS"] * 5
    first = t[0]
    assert len(first.parts) == 2 and all(p["media_type"] == "application/dicom"
                                         for p in first.parts)
    assert first.transfer_syntax == "1.2.840.10008.1.2.1"
    assert [i["outcome"] for i in first.instances] == ["stored", "stored"]
    assert all(i["sop_class"] == "1.2.840.10008.5.1.4.1.1.2" for i in first.instances)
    # The duplicate STOW: Orthanc stores the same instances again, 200.
    assert [i["sop_instance"] for i in t[1].instances] == [
        i["sop_instance"] for i in first.instances] and t[1].status == 200
    # Study-level STOW with an instance of another study: Orthanc fails it (0x0110) but
    # answers 409, which PS3.18 10.5.3 reserves for "nothing stored".
    other = t[2]
    assert other.status == 409 and other.action == "Store Instances in a Study"
    assert [i["outcome"] for i in other.instances] == ["stored", "failed"]
    assert other.failed[0]["failure_reason"] == 0x0110
    assert other.instances[1].get("other_study") is True
    # A part that is not DICOM: Orthanc stores the good one and answers 400 with a body that
    # lists it, and does not list the bad part as failed.
    bad = t[3]
    assert bad.status == 400 and bad.parts[1].get("not_part10")
    assert [i["outcome"] for i in bad.instances] == ["stored"]
    assert t[4].status == 415 and t[4].request_content_type == "application/json"
    c = codes("stow.pcap")
    for code in ("DICOMWEB-STOW-OTHER-STUDY", "DICOMWEB-STOW-FAILED", "DICOMWEB-STOW-STATUS",
                 "DICOMWEB-STOW-PART-NOT-DICOM", "DICOMWEB-UNSUPPORTED-MEDIA-TYPE",
                 "DICOMWEB-NO-CONTENT-TYPE"):
        assert code in c, code
    assert c.count("DICOMWEB-STOW-STATUS") == 2  # the 409 and the 400
    failed = next(f for f in web("stow.pcap").findings if f.code == "DICOMWEB-STOW-FAILED")
    assert "0x0110 Processing failure" in failed.message and failed.severity == "error"


def test_qido_levels_parameters_and_empty_results() -> None:
    t = txns("qido.pcap")
    assert [x.action for x in t] == [
        "Search for Studies", "Search for Studies", "Search for Series of a Study",
        "Search for Instances of a Series", "Search for Series", "Search for Studies",
        "Search for Studies"]
    assert [x.results for x in t] == [2, 0, 1, 3, 1, 0, 1]
    assert "PatientName = 'SYNTHETIC^A*' (wildcard)" in t[1].query
    assert "at most 10 results" in t[1].query and "also returning StudyDescription" in t[1].query
    assert t[4].query[0].startswith("StudyInstanceUID = ")  # sent as the tag 0020000D
    assert "StudyDate = '20240101-20241231' (range)" in t[6].query
    empty = [f for f in web("qido.pcap").findings if f.code == "DICOMWEB-QIDO-EMPTY"]
    assert len(empty) == 2 and "NOBODY^HERE" in empty[1].message
    assert web("qido.pcap").connections[0].user_agent == "dicomsniff-recorder (dicomweb-client)"


def test_wado_rs_and_wado_uri() -> None:
    t = txns("wado.pcap")
    inst = t[0]
    assert inst.action == "Retrieve Instance" and inst.status == 200
    assert [i["sop_instance"] for i in inst.instances] == [inst.instance]
    assert inst.transfer_syntax == "1.2.840.10008.1.2.1"
    assert t[1].results == 1 and t[2].results == 3  # instance and series metadata
    assert t[3].status == 400  # dicomweb-client's default frames Accept
    frames = t[4]
    assert frames.frames == [1] and frames.parts[0]["bytes"] == 64 * 64 * 2
    assert frames.transfer_syntax == "1.2.840.10008.1.2.1"
    assert t[5].action == "Retrieve Rendered Instance" and t[5].response_content_type == \
        "image/jpeg"
    study = next(x for x in t if x.action == "Retrieve Study" and x.status == 200)
    assert len(study.instances) == len(study.parts) == 3
    uri = [x for x in t if x.command == "WADO-URI"]
    assert [x.status for x in uri] == [200, 200, 400, 400, 404]
    assert uri[1].instances[0]["sop_instance"] == uri[1].instance
    msgs = {f.code: f.message for f in web("wado.pcap").findings}
    assert "labelled image/png but its bytes are image/jpeg" in \
        msgs["DICOMWEB-MEDIA-TYPE-MISMATCH"]
    refused = [f for f in web("wado.pcap").findings if f.code == "DICOMWEB-ACCEPT-REFUSED"]
    assert len(refused) == 3
    assert any("JPEG 2000" in f.message and "500" in f.message for f in refused)
    assert "DICOMWEB-SERVER-ERROR" in msgs and "DICOMWEB-NOT-FOUND" in msgs


def test_keep_alive_connection_with_head() -> None:
    w = web("curl-keepalive.pcap")
    assert len(w.connections) == 1
    c = w.connections[0]
    assert c.requests == c.responses == 4 and c.user_agent.startswith("curl/")
    head = txns("curl-keepalive.pcap")[1]
    assert head.method == "HEAD" and head.response_bytes == 0 and head.response_complete
    assert txns("curl-keepalive.pcap")[3].command == "HTTP"  # not a PS3.18 resource


def test_https_with_key_log() -> None:
    """stunnel in front of Orthanc; the user agent's SSLKEYLOGFILE decrypts (dissectors/tls)."""
    t = txns("https.pcap")
    assert [x.command for x in t] == ["QIDO-RS", "WADO-RS", "WADO-RS", "STOW-RS"]
    assert [i["outcome"] for i in t[3].instances] == ["stored"]
    assert t[2].instances[0]["sop_instance"] == t[2].instance
    assert web("https.pcap").connections[0].server.endswith(":8443")
    # Without the key log nothing is read: the connection is not taken for HTTP.
    assert analyze_file(DIR / "https.pcap").transactions == []
