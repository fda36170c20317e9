"""HTTPS through the dispatch table: the TLS analyzer picks the inner protocol with the same
detection as clear traffic (dispatch.choose), so DICOMweb over TLS reaches the DICOMweb
analyzer of the engine; one flow table for every protocol, several captures at once.

The capture is real: dicomweb-client (SSLKEYLOGFILE) -> stunnel -> Orthanc's DICOMweb plugin
(captures/dicomweb/README.md); tshark's TLS+HTTP dissectors with the same key log are the
oracle of its HTTP framing in tests/test_dicomweb_captures.py, which reads it through the
engine (tests/dicomweb_files.py).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

from dissectors.tls.keylog import KeyLog
from tests.dicomweb_files import analyze_file

WEB = Path(__file__).resolve().parent.parent / "captures" / "dicomweb"
HTTPS, KEYS = WEB / "https.pcap", WEB / "https.keys"


def _keylog() -> KeyLog:
    kl = KeyLog()
    kl.add_file(str(KEYS))
    return kl


def _json(*argv: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", "--json",
                          "--no-progress", *argv], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_analyze_with_key_log_reports_the_dicomweb_transactions() -> None:
    recs = _json(str(HTTPS), "--tls-keylog", str(KEYS))
    txns = [r for r in recs if r["type"] == "transaction"]
    assert [t["command"] for t in txns] == ["QIDO-RS", "WADO-RS", "WADO-RS", "STOW-RS"]
    (conn,) = [r for r in recs if r["type"] == "http_connection"]
    (tls,) = [r for r in recs if r["type"] == "tls"]
    assert tls["outcome"] == "decrypted" and tls["version"] == "TLS 1.3"
    assert tls["http_connection"] == conn["id"] and tls["association"] is None
    assert conn["server"] == tls["server"] and conn["server"].endswith(":8443")
    assert all(t["connection"] == conn["id"] for t in txns)
    assert recs[-1]["tls"]["outcomes"] == {"decrypted": 1}


def test_without_the_key_log_the_https_connection_is_a_tls_record() -> None:
    recs = _json(str(HTTPS))
    assert not [r for r in recs if r["type"] in ("transaction", "http_connection")]
    (tls,) = [r for r in recs if r["type"] == "tls"]
    assert tls["outcome"] == "encrypted" and tls["http_connection"] is None
    assert tls["sni"] is None and tls["certificates"] == []  # TLS 1.3: certificates encrypted


def test_several_captures_with_https_through_one_engine() -> None:
    """The DICOMweb tests' reader opens several files as one capture (open_capture)."""
    both = analyze_file(WEB / "qido.pcap", HTTPS, keylog=_keylog())
    alone = [analyze_file(WEB / "qido.pcap"), analyze_file(HTTPS, keylog=_keylog())]
    assert [t.command for t in both.transactions] == [
        t.command for w in alone for t in w.transactions]  # qido.pcap was recorded first
    assert {c.server for c in both.connections} == {
        c.server for w in alone for c in w.connections}
    recs = _json(str(WEB / "qido.pcap"), str(HTTPS), "--tls-keylog", str(KEYS))
    files = {r["file"].rsplit("/", 1)[-1] for r in recs if r["type"] in ("transaction", "tls")}
    assert files == {"qido.pcap", "https.pcap"}
    assert all(r["file"] for r in recs if r["type"] == "http_connection")


def test_csv_tls_table_and_report_block() -> None:
    out = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", str(HTTPS),
                          "--tls-keylog", str(KEYS), "--csv", "tls"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    (row,) = csv.DictReader(io.StringIO(out))
    assert (row["outcome"], row["http_connection"], row["keylog"]) == ("decrypted", "1", "found")
    assert row["alerts"] == "server:fatal:decode_error"  # stunnel's answer to a bare FIN
    report = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", str(HTTPS),
                             "--tls-keylog", str(KEYS)], capture_output=True, text=True,
                            timeout=120, check=True).stdout
    assert "carries HTTP connection #1" in report and "STOW-RS" in report


def test_one_flow_table() -> None:
    """DICOMweb has no TCP/TLS connection table of its own any more: the engine's is the one."""
    assert importlib.util.find_spec("dicomsniff.dicomweb.flows") is None
