"""DICOMweb through `dicomsniff analyze`: one story with DIMSE in the report, --json,
--findings-only, --fail-on and the service response time table (real Orthanc recordings)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirun import run_cli

CAPS = Path(__file__).resolve().parent.parent / "captures" / "dicomweb"


def records(name: str, *extra: str) -> list[dict]:
    r = run_cli("analyze", str(CAPS / name), "--json", *extra)
    assert r.code == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_json_mixed_capture_tells_both_protocols() -> None:
    recs = records("mixed-dimse-dicomweb.pcap")
    kinds = [r["type"] for r in recs]
    assert kinds.count("association") == 1 and kinds.count("http_connection") == 1
    dimse = [r for r in recs if r["type"] == "transaction" and "protocol" not in r]
    web = [r for r in recs if r.get("protocol") == "dicomweb" and r["type"] == "transaction"]
    assert [t["command"] for t in dimse] == ["C-STORE", "C-STORE"]
    assert [t["command"] for t in web] == ["QIDO-RS", "WADO-RS", "WADO-RS"]
    # the instance C-STOREd over DIMSE is the one retrieved over DICOMweb
    assert web[2]["sop_instance"] == dimse[0]["sop_instance"]
    ids = [t["id"] for t in dimse + web]
    assert len(set(ids)) == len(ids)  # one transaction id sequence for both protocols
    summary = recs[-1]
    assert summary["type"] == "summary" and summary["http_connections"] == 1
    commands = {(row["ae"].split(" ")[0], row["command"]) for row in summary["services"]}
    assert ("HTTP", "QIDO-RS") in commands and ("ORTHANC", "C-STORE") in commands


def test_json_stow_failure_and_findings_only() -> None:
    recs = records("stow.pcap")
    conn = next(r for r in recs if r["type"] == "http_connection")
    assert conn["user_agent"] == "dicomsniff-recorder (dicomweb-client)"
    stow = [r for r in recs if r.get("command") == "STOW-RS"]
    assert [r["status"] for r in stow] == [200, 200, 409, 400, 415]
    assert stow[2]["status_category"] == "Failure"
    assert stow[2]["failed"][0]["failure_reason"] == 0x0110
    finding = [r for r in recs if r["type"] == "finding"]
    assert all(f["association"] == conn["id"] for f in finding)
    only = records("stow.pcap", "--findings-only")
    assert {r["type"] for r in only} == {"finding", "summary"}
    assert "DICOMWEB-STOW-FAILED" in {r["code"] for r in only if r["type"] == "finding"}


def test_report_and_fail_on() -> None:
    r = run_cli("analyze", str(CAPS / "stow.pcap"))
    assert r.code == 0 and "HTTP 192.0.2.1:" in r.stdout and "STOW-RS" in r.stdout
    assert "0x0110 Processing failure" in r.stdout
    r = run_cli("analyze", str(CAPS / "stow.pcap"), "--findings-only")
    assert "DICOMWEB-STOW-STATUS" in r.stdout and "txn" not in r.stdout
    assert run_cli("analyze", str(CAPS / "stow.pcap"), "--fail-on", "error").code == 1
    assert run_cli("analyze", str(CAPS / "qido.pcap"), "--fail-on", "warning").code == 0


def test_diagram_draws_dicomweb_requests_as_arrows() -> None:
    r = run_cli("diagram", str(CAPS / "mixed-dimse-dicomweb.pcap"), "--format", "plantuml")
    assert r.code == 0, r.stderr
    assert "C-STORE-RQ" in r.stdout and "QIDO-RS Search for Studies" in r.stdout
    assert "WADO-RS Retrieve Instance" in r.stdout and "200 OK" in r.stdout
    assert "/instances/&#123;sop&#125;" in r.stdout  # UIDs named, PlantUML-escaped
    r = run_cli("diagram", str(CAPS / "stow.pcap"), "--format", "mermaid")
    assert "409 Conflict" in r.stdout and "DICOMWEB-STOW-FAILED" in r.stdout
