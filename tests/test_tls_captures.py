"""DICOM over TLS on real recordings (captures/tls/): what the peers did, with and without keys,
and tshark's TLS and DICOM dissectors as an independent oracle of the decrypted exchanges.

The peers' own account is in captures/tls/manifest.json (pynetdicom's JSON lines: TLS version,
OpenSSL cipher name, resumption, DIMSE statuses; dcmtk's exit codes and logs).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source
from dissectors.tls.keylog import KeyLog
from dissectors.tls.tables import suite_name

TLS = Path(__file__).resolve().parent.parent / "captures" / "tls"
MANIFEST = json.loads((TLS / "manifest.json").read_text())
ENTRIES = {e["file"]: e for e in MANIFEST["captures"]}
DECRYPTED = ["tls13-store.pcap", "tls12-resume.pcap", "tls-suites.pcap", "tls-hrr.pcap"]


def analyze(name: str, keys: str | None = "same", keep: bool = True) -> Analyzer:
    kl = None
    if keys is not None:
        kl = KeyLog()
        kl.add_file(str(TLS / (name.replace(".pcap", ".keys") if keys == "same" else keys)))
    a = Analyzer(tls_keylog=kl, keep=keep)
    analyze_source(str(TLS / name), a)
    return a


def iana(openssl_name: str) -> str:
    """OpenSSL's cipher name as the IANA name, via OpenSSL's own table (ssl.get_ciphers)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    for c in ctx.get_ciphers():
        if c["name"] == openssl_name:
            return suite_name(c["id"] & 0xFFFF)
    return openssl_name  # TLS 1.3 suites: OpenSSL uses the IANA names


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_capture_matches_manifest(name: str) -> None:
    e = ENTRIES[name]
    data = (TLS / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == e["sha256"]
    assert len(data) < 1 << 20
    if e.get("keylog"):
        assert (TLS / e["keylog"]).exists()


@pytest.mark.parametrize("name", DECRYPTED)
def test_decrypted_dicom_is_what_the_peers_did(name: str) -> None:
    e = ENTRIES[name]
    a = analyze(name)
    assert len(a.tls_sessions) == len(e["tls"]) == len(a.associations)
    for s, want in zip(a.tls_sessions, e["tls"], strict=True):
        assert s.outcome == "decrypted" and s.version == want["version"]
        assert s.cipher_suite == iana(want["openssl_cipher"])
        assert s.resumed == want["resumed"]
        assert s.hello_retry_request == want.get("hrr", False)
        if want.get("sni"):
            assert s.sni == want["sni"]
    for assoc, want in zip(a.associations, e["associations"], strict=True):
        assert (assoc.calling_ae, assoc.called_ae) == (want["calling_ae"], want["called_ae"])
        assert assoc.outcome == want["outcome"]
        got = [(t.command, f"0x{t.status:04X}") for t in assoc.transactions]
        assert got == [(o["op"], o["status"]) for o in want["operations"]]
        assert assoc.tls["decrypted"] and assoc.tls["version"] is not None
    bad = [f for f in a.findings if f.code in ("TLS-DECRYPT-FAILED", "TLS-MALFORMED", "TLS-GAP")
           or f.code.startswith("UL-")]
    assert not bad, bad


def test_every_suite_and_version_in_the_suites_capture() -> None:
    a = analyze("tls-suites.pcap")
    assert [(s.version, s.cipher_suite) for s in a.tls_sessions] == [
        ("TLS 1.2", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        ("TLS 1.2", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
        ("TLS 1.2", "TLS_RSA_WITH_AES_128_CBC_SHA256"),
        ("TLS 1.2", "TLS_RSA_WITH_AES_256_GCM_SHA384"),
        ("TLS 1.0", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
        ("TLS 1.3", "TLS_CHACHA20_POLY1305_SHA256"),
    ]
    codes = [[f.code for f in x.findings if f.code.startswith("TLS-")] for x in a.associations]
    # RSA key exchange (no forward secrecy) twice, TLS 1.0 once; ECDHE CBC with
    # encrypt-then-MAC is not flagged.
    assert codes == [[], [], ["TLS-WEAK-CIPHER"], ["TLS-WEAK-CIPHER"], ["TLS-OLD-VERSION"], []]


def test_resumed_sessions_show_no_certificate() -> None:
    a = analyze("tls12-resume.pcap")
    assert [(s.version, s.resumed, bool(s.certificates)) for s in a.tls_sessions] == [
        ("TLS 1.2", False, True), ("TLS 1.2", True, False),
        ("TLS 1.3", False, True), ("TLS 1.3", True, False)]


def test_hello_retry_request_from_dcmtk() -> None:
    """dcmtk's storescp answers pynetdicom's x25519-only key share with a HelloRetryRequest."""
    a = analyze("tls-hrr.pcap")
    (s,) = a.tls_sessions
    assert s.hello_retry_request and s.hello_retry_group == "secp256r1"
    assert [h["message"] for h in s.handshake][:4] == [
        "client_hello", "hello_retry_request", "client_hello", "server_hello"]


def test_without_keys_encrypted_dicom_is_counted_never_dropped() -> None:
    for name in ("tls13-store.pcap", "tls-dcmtk.pcap"):
        a = analyze(name, keys=None)
        assert not a.associations
        (s,) = a.tls_sessions
        assert s.outcome == "encrypted" and s.version == "TLS 1.3"
        assert s.application_bytes["client"] > 8000
        assert [f.code for f in s.findings] == ["TLS-ENCRYPTED-DICOM"]
        assert a.stats.ignored_connections == 0


def test_null_cipher_profile_from_dcmtk_needs_no_key() -> None:
    """dcmtk +pn: PS3.15's retired authenticated-unencrypted profile (TLS_RSA_WITH_NULL_SHA).
    The DICOM travels in clear inside TLS records: analysed without a key log, and named."""
    a = analyze("tls-null.pcap", keys=None)
    (s,) = a.tls_sessions
    assert (s.version, s.cipher_suite, s.outcome) == ("TLS 1.2", "TLS_RSA_WITH_NULL_SHA",
                                                      "decrypted")
    assert s.certificate_requested and s.client_certificate_sent
    (assoc,) = a.associations
    want = ENTRIES["tls-null.pcap"]["associations"][0]
    assert [(t.command, t.sop_instance) for t in assoc.transactions] == [
        (o["op"], o["sop_instance"]) for o in want["operations"]]
    weak = [f for f in assoc.findings if f.code == "TLS-WEAK-CIPHER"]
    assert weak and "NULL" in weak[0].message


def test_orthanc_dicom_tls() -> None:
    """Orthanc 1.10 (DicomTlsEnabled, client certificates required) with pynetdicom: one
    association with a client certificate, decrypted; one without, refused. In TLS 1.3 the
    refusal is encrypted, and the client's key log (handshake secrets) makes it readable."""
    a = analyze("tls-orthanc.pcap")
    ok, refused = a.tls_sessions
    assert ok.outcome == "decrypted" and ok.certificate_requested
    assert ok.client_certificate_sent is True
    (assoc,) = a.associations
    assert assoc.called_ae == "ORTHANC" and assoc.tls["client_certificate_sent"]
    assert [(t.command, t.status) for t in assoc.transactions] == [("C-ECHO", 0),
                                                                   ("C-STORE", 0)]
    assert refused.outcome == "handshake_failed" and refused.client_certificate_sent is False
    assert refused.alerts[-1]["by"] == "server"
    assert refused.alerts[-1]["description"] == "certificate_required"
    assert {"TLS-ALERT-FATAL", "TLS-CLIENT-CERT-MISSING"} <= {f.code for f in refused.findings}


def test_key_log_of_another_capture() -> None:
    a = analyze("tls13-store.pcap", keys="tls-hrr.keys")
    (s,) = a.tls_sessions
    assert s.outcome == "encrypted" and s.keylog == "missing"
    assert {f.code for f in s.findings} == {"TLS-NO-KEY", "TLS-ENCRYPTED-DICOM"}


def test_failures_in_the_words_of_the_job() -> None:
    a = analyze("tls-failures.pcap")
    truth = ENTRIES["tls-failures.pcap"]["tls"]
    s = a.tls_sessions
    assert [x.server.rsplit(":", 1)[1] for x in s] == ["2762", "2763", "2762", "2762", "11112"]
    by = {x.id: [f.code for f in x.findings] for x in s}
    # 1. the client does not trust the server's CA
    assert s[0].alerts[0]["by"] == truth[0]["alert"]["by"] == "client"
    assert s[0].alerts[0]["description"] == truth[0]["alert"]["description"] == "unknown_ca"
    assert by[1] == ["TLS-ALERT-FATAL"] and "trust store" in s[0].findings[0].message
    # 2. the server's certificate expired (TLS 1.3: the certificate itself is encrypted)
    assert s[1].alerts[0]["description"] == "certificate_expired" and by[2] == ["TLS-ALERT-FATAL"]
    # 3. TLS 1.3, no client certificate: only an alert-sized encrypted record and a reset
    assert s[2].outcome == "encrypted" and by[3] == ["TLS-LIKELY-REFUSED"]
    assert s[2].ended_by == "rst"
    # 4. TLS 1.2, no client certificate, key log: requested, not sent, handshake_failure
    assert s[3].certificate_requested and s[3].client_certificate_sent is False
    assert by[4] == ["TLS-ALERT-FATAL", "TLS-CLIENT-CERT-MISSING"]
    assert s[3].alerts == [{"by": "server", "level": "fatal", "description": "handshake_failure",
                            "frame": s[3].alerts[0]["frame"]}]
    # 5. plain DICOM to the TLS port: an association nobody answered, with the reason
    (assoc,) = a.associations
    assert assoc.server.endswith(":2762") and assoc.calling_ae == "ECHOSCU"
    assert "TLS-PLAIN-TO-TLS-PORT" in [f.code for f in assoc.findings]
    # 6. TLS to the plain port: the server reset the connection
    assert by[5] == ["TLS-TO-PLAIN-PORT"] and "reset" in s[4].findings[0].message
    assert all(x.outcome == "handshake_failed" for x in (s[0], s[1], s[3], s[4]))


def test_corrupt_record_is_a_finding_and_the_rest_is_analysed(tmp_path) -> None:
    """A flipped byte inside one encrypted record: that record is a gap for the DICOM parser,
    the association and the other transactions still come out."""
    from captures import pcapfile

    data = bytearray((TLS / "tls13-store.pcap").read_bytes())
    # The largest client segment carries C-STORE data set bytes inside a record.
    segs = [g for g in pcapfile.segments(TLS / "tls13-store.pcap")
            if g.dport == 2762 and len(g.payload) > 1000]
    target = segs[len(segs) // 2]
    frames = list(pcapfile.frames(TLS / "tls13-store.pcap"))
    off = 24
    for fr in frames[:target.frame - 1]:
        off += 16 + len(fr.data)
    off += 16 + len(frames[target.frame - 1].data) - 100  # inside the payload's tail
    data[off] ^= 0xFF
    bad = tmp_path / "corrupt.pcap"
    bad.write_bytes(bytes(data))
    kl = KeyLog()
    kl.add_file(str(TLS / "tls13-store.keys"))
    a = Analyzer(tls_keylog=kl)
    analyze_source(str(bad), a)
    (assoc,) = a.associations
    codes = [f.code for f in assoc.findings]
    assert "TLS-DECRYPT-FAILED" in codes
    assert [t.command for t in assoc.transactions][:1] == ["C-ECHO"]
    assert assoc.outcome == "released"


# -- tshark: the same DICOM inside, decrypted independently ------------------------------------

def _tshark_dicom(name: str, tmp_path: Path) -> list[tuple[str, str]]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    # tshark 4.0 binds decrypted TLS to DICOM only through an ssl_keys entry, which needs a
    # (here unused) RSA key file; -d tcp.port==2762,dicom is ignored under TLS.
    key = tmp_path / "unused.key"
    key.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    keys = TLS / name.replace(".pcap", ".keys")
    out = subprocess.run(
        ["tshark", "-r", str(TLS / name), "-o", f"tls.keylog_file:{keys}",
         "-o", f'uat:ssl_keys:"192.0.2.2","2762","dicom","{key}",""', "-Y", "dicom",
         "-T", "fields", "-e", "_ws.col.Info"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    # The Info column names each message: "P-DATA, C-STORE-RQ ID=1", "... C-ECHO-RSP ID=1".
    cmds = re.findall(r"\b([CN]-[A-Z]+-(?:RQ|RSP))\b", out)
    return cmds


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="needs tshark (the oracle)")
@pytest.mark.parametrize("name", [*DECRYPTED, "tls-orthanc.pcap"])
def test_tshark_sees_the_same_dimse_messages(name: str, tmp_path: Path) -> None:
    theirs = _tshark_dicom(name, tmp_path)
    a = analyze(name)
    ours: list[str] = []
    for assoc in a.associations:
        for t in assoc.transactions:
            ours += [f"{t.command}-RQ", f"{t.command}-RSP"]
    assert theirs and sorted(theirs) == sorted(ours)
    assert theirs.count("C-STORE-RQ") == sum(
        o["op"] == "C-STORE" for e in ENTRIES[name]["associations"] for o in e["operations"])


# -- through the command line ----------------------------------------------------------------

def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run([sys.executable, "-m", "dicomsniff", *argv], capture_output=True,
                          text=True, timeout=120, cwd=TLS.parent.parent)


def test_json_records_of_tls_connections() -> None:
    r = _cli("analyze", "--json", str(TLS / "tls-failures.pcap"), "--tls-keylog",
             str(TLS / "tls-failures.keys"))
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    tls = [x for x in recs if x["type"] == "tls"]
    assert [x["outcome"] for x in tls] == ["handshake_failed", "handshake_failed", "encrypted",
                                          "handshake_failed", "handshake_failed"]
    first = tls[0]
    assert first["alerts"] == [{"by": "client", "level": "fatal", "description": "unknown_ca",
                                "frame": first["alerts"][0]["frame"]}]
    assert {"client", "server", "version", "cipher_suite", "sni", "certificates"} <= set(first)
    # each TLS finding follows its record and names it
    codes = [(x["code"], x.get("tls")) for x in recs if x["type"] == "finding"]
    assert ("TLS-ALERT-FATAL", first["id"]) in codes
    summary = recs[-1]
    assert summary["type"] == "summary" and summary["tls"]["connections"] == 5
    assert summary["findings"] == len(codes)
    r = _cli("analyze", "--json", str(TLS / "tls13-store.pcap"), "--tls-keylog",
             str(TLS / "tls13-store.keys"))
    (assoc,) = [json.loads(x) for x in r.stdout.splitlines() if '"association"' in x[:30]]
    assert assoc["tls"]["decrypted"] and assoc["tls"]["version"] == "TLS 1.3"
    assert assoc["tls"]["sni"] == "archive.test"


def test_cli_errors_and_report() -> None:
    r = _cli("analyze", str(TLS / "tls13-store.pcap"), "--tls-keylog", "/nonexistent/keys")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "key log" in r.stderr
    assert "Traceback" not in r.stderr
    r = _cli("analyze", str(TLS / "tls13-store.pcap"), "--tls-keylog",
             str(TLS / "tls-failures.pcap"))  # not a key log at all
    assert r.returncode == 2 and "no TLS secrets" in r.stderr
    r = _cli("analyze", str(TLS / "tls-dcmtk.pcap"))
    assert r.returncode == 0 and "1 TLS connection(s) (1 encrypted)" in r.stdout
    assert "TLS-ENCRYPTED-DICOM" in r.stdout


def test_diagram_draws_the_handshake() -> None:
    r = _cli("diagram", str(TLS / "tls-hrr.pcap"), "--tls-keylog", str(TLS / "tls-hrr.keys"),
             "-o", "-", "--format", "plantuml")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    i = next(k for k, x in enumerate(lines) if "hello_retry_request" in x)
    j = next(k for k, x in enumerate(lines) if "A-ASSOCIATE-RQ" in x)
    assert i < j and "TLS 1.3 TLS_AES_256_GCM_SHA384, decrypted" in r.stdout


def test_export_objects_from_decrypted_tls(tmp_path: Path) -> None:
    out = tmp_path / "objects"
    r = _cli("export-objects", str(TLS / "tls-hrr.pcap"), str(out), "--tls-keylog",
             str(TLS / "tls-hrr.keys"), "--no-progress")
    assert r.returncode == 0, r.stderr
    files = list(out.glob("*.dcm"))
    assert len(files) == 1
    import pydicom

    ds = pydicom.dcmread(files[0])
    assert ds.PatientName == "SYNTHETIC^TLS"
