"""DICOMweb in the study journey (analysis/journey/web.py: STOW-RS stores are images arriving
at the archive) and in the conformance view (conformance/web.py: the services each origin
server answered and each user agent used), on the real recordings."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from dicomsniff.cli import main

WEB = Path(__file__).resolve().parent.parent / "captures" / "dicomweb"


def run(*argv: str) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(list(argv))
    return rc, buf.getvalue()


def studies(capture: str) -> list[dict]:
    rc, out = run("studies", "--json", "--no-progress", str(WEB / capture))
    assert rc == 0
    return [r for r in map(json.loads, out.splitlines()) if r.get("type") == "study"]


# -- the study journey ---------------------------------------------------------------------------

def test_stow_rs_stores_are_images_arriving_at_the_archive() -> None:
    """stow.pcap: dicomweb-client stores two instances twice, then one more of the same study
    and one of another study (failed, then stored); the header of every part is walked like a
    C-STORE's (patient, accession, series come from it, not from the STOW-RS response)."""
    recs = {r["accession_number"]: r for r in studies("stow.pcap")}
    first, second = recs["ACC000000"], recs["ACC000001"]
    assert first["patient_id"] == second["patient_id"] == "DSN0001"
    assert first["patient_name"] == "SYNTHETIC^ALICE"
    assert first["instances"]["stored"] == 3 and second["instances"]["stored"] == 1
    [series] = first["series"]
    assert series["stored_to"] == ["STOW-RS 192.0.2.2:8042"]
    [step] = first["procedure_steps"]
    assert {e["what"] for e in step["timeline"] if e["stage"] == "stored"} == {"STOW-RS"}


def test_a_failed_stow_rs_instance_is_not_stored() -> None:
    """stow-xml.pcap: the instance of another study, failed in the XML response (0x0110)."""
    failed = [r for r in studies("stow-xml.pcap") if r["instances"]["stored"] == 0]
    [rec] = failed
    [series] = rec["series"]
    assert series["statuses"] == {"Failure": 1}


def test_text_tells_stow_rs_beside_c_store() -> None:
    rc, out = run("studies", "--no-progress", str(WEB / "stow.pcap"))
    assert rc == 0 and "stored: STOW-RS 3 instance(s) (3 Success) 192.0.2.1 ->" in out


@pytest.mark.parametrize("step", [1, 7, 131, 4096])
def test_part10_header_walk_in_any_segmentation(step: int) -> None:
    from bench.dicomweb_stream import _part10_head
    from dicomsniff.analysis.journey.web import Part10Header

    data = _part10_head() + b"\x00" * 300
    h = Part10Header()
    for i in range(0, len(data), step):
        h.write(data[i:i + step])
    h.close(True)
    assert h.values.get("sop_instance") == "1.2.826.0.1.3680043.8.498.99999"
    assert h.values.get("patient_name") == "SYNTHETIC^HUGE"


@pytest.mark.parametrize("data", [
    b"", b"\x00" * 200,  # no DICM
    b"\x00" * 128 + b"DICM" + b"\x02\x00\x01\x00OB\x00\x00",  # no group length first
    b"\x00" * 128 + b"DICM\x02\x00\x00\x00UL\x04\x00\xff\xff\xff\x7f",  # a 2 GB meta group
    b"\x00" * 128 + b"DICM\x02\x00\x00\x00UL\x04\x00\x10\x00\x00\x00\x02\x00\x10\x00UI\xff\xff",
])
def test_part10_header_walk_on_hostile_heads(data: bytes) -> None:
    from dicomsniff.analysis.journey.web import MAX_META, Part10Header

    h = Part10Header()
    h.write(data + b"\x00" * 64)
    h.close(False)
    assert h.values == {} and len(h.buf) <= MAX_META + 200


# -- the conformance view ------------------------------------------------------------------------

def conformance_json(*captures: str) -> list[dict]:
    rc, out = run("conformance", "--json", "--no-progress", *(str(WEB / c) for c in captures))
    assert rc == 0
    return [json.loads(line) for line in out.splitlines()]


def test_conformance_lists_the_dicomweb_services_of_each_server_and_agent() -> None:
    recs = conformance_json("mixed-dimse-dicomweb.pcap", "tinypacs.pcap")
    servers = {r["server"]: r for r in recs if r["type"] == "dicomweb_server"}
    assert set(servers) == {"192.0.2.2:8042", "192.0.2.2:8043"}
    tiny = servers["192.0.2.2:8043"]
    assert tiny["software"] == ["tiny_pacs"] and tiny["user_agents"] == ["curl/7.88.1"]
    svc = {(s["service"], s["transaction"]): s for s in tiny["services"]}
    assert svc[("QIDO-RS", "Search for Studies")]["statuses"] == {"200": 1, "406": 1}
    assert svc[("STOW-RS", "Store Instances")]["requests"] == 1
    assert svc[("WADO-URI", "Retrieve object (WADO-URI)")]["statuses"] == {"406": 1}
    orthanc = {(s["service"], s["transaction"]) for s in servers["192.0.2.2:8042"]["services"]}
    assert orthanc == {("QIDO-RS", "Search for Studies"), ("WADO-RS", "Retrieve Instance"),
                       ("WADO-RS", "Retrieve Instance Metadata")}
    [agent] = [r for r in recs if r["type"] == "user_agent"]
    assert agent["user_agent"] == "curl/7.88.1"
    assert agent["servers"] == ["192.0.2.2:8042", "192.0.2.2:8043"]
    assert sum(s["requests"] for s in agent["services"]) == 8
    summary = recs[-1]
    assert summary["type"] == "summary" and summary["dicomweb_requests"] == 8
    assert summary["dicomweb_servers"] == 2
    # the DIMSE half of the mixed capture is still there
    assert {r["ae_title"] for r in recs if r["type"] == "ae"} == {"STORESCU", "ORTHANC"}


def test_conformance_text_and_markdown_show_dicomweb() -> None:
    rc, out = run("conformance", "--no-progress", str(WEB / "tinypacs.pcap"))
    assert rc == 0
    assert "1 AE titles" not in out and "5 DICOMweb requests to 1 origin server(s)" in out
    assert "origin server 192.0.2.2:8043" in out and "WADO-URI" in out
    rc, out = run("conformance", "--format", "markdown", "--no-progress",
                  str(WEB / "tinypacs.pcap"))
    assert rc == 0 and "## DICOMweb (origin servers and the services they answered)" in out
    assert "| 192.0.2.2:8043 |" in out


def test_a_dimse_only_capture_has_no_dicomweb_section() -> None:
    root = WEB.parent
    rc, out = run("conformance", "--format", "markdown", "--no-progress",
                  str(root / "echo.pcap"))
    assert rc == 0 and "DICOMweb" not in out


# -- over HTTPS (the engine's TLS analyzer, --tls-keylog) ---------------------------------------

def test_studies_and_conformance_read_dicomweb_inside_tls() -> None:
    """https.pcap: dicomweb-client through stunnel to Orthanc, with the user agent's key log:
    its STOW-RS is a store in the journey and its services are the origin server's."""
    keys = str(WEB / "https.keys")
    rc, out = run("studies", "--json", "--no-progress", "--tls-keylog", keys,
                  str(WEB / "https.pcap"))
    assert rc == 0
    [st] = [r for r in map(json.loads, out.splitlines()) if r.get("type") == "study"]
    assert st["instances"]["stored"] == 1 and st["patient_id"] == "DSN0001"
    assert st["series"][0]["stored_to"] == ["STOW-RS 192.0.2.2:8443"]
    rc, out = run("conformance", "--json", "--no-progress", "--tls-keylog", keys,
                  str(WEB / "https.pcap"))
    assert rc == 0
    [srv] = [r for r in map(json.loads, out.splitlines()) if r["type"] == "dicomweb_server"]
    assert srv["server"] == "192.0.2.2:8443"
    assert {s["service"] for s in srv["services"]} == {"QIDO-RS", "WADO-RS", "STOW-RS"}
    # without the key log nothing is read, and nothing is invented
    rc, out = run("studies", "--json", "--no-progress", str(WEB / "https.pcap"))
    assert rc == 0 and not [r for r in map(json.loads, out.splitlines())
                            if r.get("type") == "study"]
