"""Scenarios for captures/tls/: DICOM over TLS between real peers, with the key logs they wrote.

dcmtk 3.6.7 (storescu/echoscu/storescp with ``+tls``) cannot write a key log (OpenSSL 3.0 has
no SSLKEYLOGFILE), so its captures show what an analyzer sees without keys; pynetdicom with an
``ssl.SSLContext`` whose ``keylog_filename`` is set (captures/tls_peers.py) gives the key logs,
for TLS 1.3, TLS 1.2 (ECDHE and RSA key exchange; AES-GCM, AES-CBC with and without
encrypt-then-MAC, ChaCha20-Poly1305), TLS 1.0, a resumed session and a HelloRetryRequest from
dcmtk's storescp. Failures: an untrusted CA, an expired certificate, a client certificate
demanded and not sent (TLS 1.3 from dcmtk, TLS 1.2 from pynetdicom), plain DICOM to a TLS port
and TLS to a plain port. Certificates are made at record time (captures/tls_certs.py).

Record (root; namespaces dstls-scu/dstls-scp)::

    sudo python3 captures/tls_scenarios.py --out captures/tls          # all
    sudo python3 captures/tls_scenarios.py tls-failures --out /tmp/t   # some

Each ``X.pcap`` with keys has ``X.keys`` beside it (NSS key log). Ground truth in the manifest
is what the peers said: the JSON lines of tls_peers.py clients, dcmtk's exit codes and logs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from captures.record import Recorder, update_readme_table, write_manifest  # noqa: E402
from captures.scenarios import BIN, VERIFICATION, Truth, association, op, scenario  # noqa: E402
from captures.session import PeerError, Session  # noqa: E402
from captures.tls_certs import make_set  # noqa: E402

TLS_PEERS = Path(__file__).with_name("tls_peers.py")
TLS_PORT = 2762  # PS3.15 B.1 / IHE ATNA: DICOM over TLS
EXPIRED_PORT = 2763
PLAIN_PORT = 11112
CT = "1.2.840.10008.5.1.4.1.1.2"
TLS_DIR = Path(__file__).resolve().parent / "tls"
_CHACHA13_CONF = """openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Ciphersuites = TLS_CHACHA20_POLY1305_SHA256
"""


def keys_path(s: Session) -> Path:
    """The key log beside the capture being recorded (X.pcap.part -> X.keys)."""
    name = s.pcap.name.removesuffix(".part")
    return s.pcap.resolve().with_name(name.removesuffix(".pcap") + ".keys")


def certs(s: Session) -> dict[str, tuple[Path, Path]]:
    d = s.work / "certs"
    if not d.exists():
        make_set(d)
    return {n: (d / f"{n}.key", d / f"{n}.crt") for n in (
        "ca", "rogue-ca", "server", "client", "expired", "rogue-server")}


def peer(role: str, *args: str | int | Path, env: dict[str, str] | None = None) -> list[str]:
    pre = ["env", *(f"{k}={v}" for k, v in env.items())] if env else []
    return [*pre, sys.executable, str(TLS_PEERS), role, *map(str, args)]


def pyserver(s: Session, name: str, port: int, c: dict, *extra: str | Path) -> None:
    key, crt = c["server"]
    s.server(name, peer("server", "--port", port, "--cert", crt, "--key", key, *extra), port)


def pyclient(s: Session, name: str, port: int, c: dict, *extra: str | int | Path,
             env: dict[str, str] | None = None, ok=(0,)) -> list[dict[str, Any]]:
    log = s.client(name, peer("client", "--host", s.scp_ip, "--port", port, "--ca",
                              c["ca"][1], "--keylog", keys_path(s), *extra, env=env), ok=ok)
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def tls_truth(line: dict[str, Any], port: int, **extra: Any) -> dict[str, Any]:
    """One TLS connection as the pynetdicom client reported it."""
    versions = {"TLSv1.3": "TLS 1.3", "TLSv1.2": "TLS 1.2", "TLSv1.1": "TLS 1.1",
                "TLSv1": "TLS 1.0"}
    return {"server_port": port, "version": versions.get(line.get("tls_version", ""), None),
            "openssl_cipher": line.get("cipher"), "resumed": line.get("resumed", False),
            "outcome": "decrypted" if line.get("established") else "handshake_failed",
            **extra}


def pnd_association(s: Session, line: dict[str, Any], port: int) -> dict[str, Any]:
    ops = [op("C-ECHO", st) for st in line.get("C-ECHO", [])]
    ops += [op("C-STORE", st, sop_class=CT) for st in line.get("C-STORE", [])]
    return association(s, "TLSSCU", "TLSSCP", port, operations=ops)


def dcmtk_tls(c: dict, who: str, *, ca: str = "ca") -> list[str | Path]:
    key, crt = c[who]
    return ["+tls", key, crt, "+cf", c[ca][1]]


def pnd_truth(s: Session, lines: list[dict[str, Any]], **tls: Any) -> Truth:
    """The truth of a recording of pynetdicom clients (one JSON line each) on the TLS port,
    decrypted with the key log; ``tls`` adds to each connection's record."""
    return {"server_ports": [TLS_PORT], "keylog": keys_path(s).name,
            "tls": [tls_truth(x, TLS_PORT, **tls) for x in lines],
            "associations": [pnd_association(s, x, TLS_PORT) for x in lines]}


def storescp_tls(s: Session, c: dict, *opts: str | Path, name: str = "storescp",
                 cert: str = "server", port: int = TLS_PORT) -> None:
    """dcmtk storescp (AE TLSSCP) over TLS with ``cert``, storing into work/received."""
    out = s.work / "received"
    out.mkdir(exist_ok=True)
    s.server(name, [BIN / "storescp", "-v", "-aet", "TLSSCP", "-od", out,
                    *dcmtk_tls(c, cert), *opts, port], port)


def storescu_tls(s: Session, c: dict, key: str, *opts: str) -> list[Any]:
    """dcmtk storescu (AE STORESCU) over TLS storing two synthetic CT images, captured."""
    from captures import synth

    images = synth.ct_series(s.work / "src", key=key, count=2, rows=32, cols=32)
    with s.capture():
        s.client("storescu", [BIN / "storescu", "-v", "-aet", "STORESCU", "-aec", "TLSSCP",
                              *dcmtk_tls(c, "client"), *opts, s.scp_ip, TLS_PORT,
                              *[i.path for i in images]])
    return images


# -- with keys: pynetdicom ---------------------------------------------------------------------

@scenario("tls13-store", "tls13-store.pcap",
          "pynetdicom SCU -> pynetdicom SCP over TLS 1.3 (key log from the SCU): C-ECHO and "
          "two 8 KB C-STOREs", sample=False, stores=2)
def tls13_store(s: Session, p: dict[str, Any]) -> Truth:
    c = certs(s)
    pyserver(s, "server", TLS_PORT, c)
    with s.capture():
        lines = pyclient(s, "client", TLS_PORT, c, "--sni", "archive.test", "--store",
                         p["stores"])
    return pnd_truth(s, lines, sni="archive.test")


@scenario("tls12-resume", "tls12-resume.pcap",
          "pynetdicom over TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256 with SNI: two associations, the "
          "second on a resumed TLS session (abbreviated handshake); then two TLS 1.3 "
          "associations, the second resumed with a ticket (PSK)", sample=False)
def tls12_resume(s: Session, p: dict[str, Any]) -> Truth:
    c = certs(s)
    pyserver(s, "server", TLS_PORT, c)
    with s.capture():
        a = pyclient(s, "client12", TLS_PORT, c, "--tls-version", "1.2", "--ciphers",
                     "ECDHE-RSA-AES128-GCM-SHA256", "--sni", "archive.test", "--associations",
                     2, "--resume", "--store", 1)
        b = pyclient(s, "client13", TLS_PORT, c, "--associations", 2, "--resume", "--store", 0,
                     "--instance-base", 1000)
    lines = a + b
    if [x.get("resumed") for x in lines] != [False, True, False, True]:
        raise PeerError(f"resumption did not happen as planned: {lines}")
    return pnd_truth(s, lines)


SUITE_RUNS = [  # (client options, environment) for tls-suites, one association each
    (["--tls-version", "1.2", "--ciphers", "ECDHE-RSA-CHACHA20-POLY1305"], None),
    (["--tls-version", "1.2", "--ciphers", "ECDHE-RSA-AES256-SHA384"], None),
    (["--tls-version", "1.2", "--ciphers", "AES128-SHA256", "--no-etm"], None),
    (["--tls-version", "1.2", "--ciphers", "AES256-GCM-SHA384"], None),
    (["--tls-version", "1.0", "--seclevel0"], None),
    (["--tls-version", "1.3"], "chacha13"),
]


@scenario("tls-suites", "tls-suites.pcap",
          "pynetdicom over TLS with one association per cipher suite: TLS 1.2 ECDHE "
          "ChaCha20-Poly1305, ECDHE AES-256-CBC-SHA384 (encrypt-then-MAC), RSA AES-128-CBC-"
          "SHA256 (MAC-then-encrypt), RSA AES-256-GCM; TLS 1.0 AES-256-CBC-SHA; TLS 1.3 "
          "ChaCha20-Poly1305", sample=False)
def tls_suites(s: Session, p: dict[str, Any]) -> Truth:
    c = certs(s)
    pyserver(s, "server", TLS_PORT, c, "--seclevel0")
    conf = s.work / "chacha13.cnf"
    conf.write_text(_CHACHA13_CONF)
    lines = []
    with s.capture():
        for i, (opts, env) in enumerate(SUITE_RUNS):
            e = {"OPENSSL_CONF": str(conf)} if env else None
            lines += pyclient(s, f"client{i}", TLS_PORT, c, "--store", 1, "--size", 20000,
                              "--instance-base", 1000 * i, *opts, env=e)
    if lines[-1].get("cipher") != "TLS_CHACHA20_POLY1305_SHA256":
        raise PeerError(f"OPENSSL_CONF did not select ChaCha20 for TLS 1.3: {lines[-1]}")
    return pnd_truth(s, lines)


@scenario("tls-hrr", "tls-hrr.pcap",
          "pynetdicom SCU (TLS 1.3, key share x25519 only, key log) -> dcmtk storescp +tls: "
          "storescp answers with a HelloRetryRequest for secp256r1; C-ECHO and a C-STORE",
          sample=False)
def tls_hrr(s: Session, p: dict[str, Any]) -> Truth:
    c = certs(s)
    storescp_tls(s, c, "-ic")
    with s.capture():
        lines = pyclient(s, "client", TLS_PORT, c, "--cert", c["client"][1], "--key",
                         c["client"][0])
    return pnd_truth(s, lines, hrr=True)


# -- without keys: dcmtk -----------------------------------------------------------------------

@scenario("tls-dcmtk", "tls-dcmtk.pcap",
          "dcmtk storescu +tls -> storescp +tls with client and server certificates from one "
          "CA (mutual authentication, BCP 195 non-downgrading profile): two C-STOREs; no key "
          "log (dcmtk cannot write one), so this is what an analyzer sees without keys",
          sample=False)
def tls_dcmtk(s: Session, p: dict[str, Any]) -> Truth:
    c = certs(s)
    storescp_tls(s, c)
    storescu_tls(s, c, "tls")
    return {"server_ports": [TLS_PORT], "keylog": None,
            "tls": [{"server_port": TLS_PORT, "version": "TLS 1.3", "outcome": "encrypted",
                     "client_certificate": True}],
            "associations": []}


@scenario("tls-null", "tls-null.pcap",
          "dcmtk storescu +tls +pn -> storescp +tls +pn: the retired PS3.15 'authenticated "
          "unencrypted' profile (TLS_RSA_WITH_NULL_SHA): certificates and MACs, DICOM in clear "
          "(readable without a key log); two C-STOREs", sample=False)
def tls_null(s: Session, p: dict[str, Any]) -> Truth:
    c = certs(s)
    storescp_tls(s, c, "+pn")
    images = storescu_tls(s, c, "tlsnull", "+pn")
    ops = [op("C-STORE", sop_class=i.sop_class, sop_instance=i.sop_instance) for i in images]
    return {"server_ports": [TLS_PORT], "keylog": None,
            "tls": [{"server_port": TLS_PORT, "version": "TLS 1.2",
                     "cipher_suite": "TLS_RSA_WITH_NULL_SHA", "outcome": "decrypted",
                     "client_certificate": True}],
            "associations": [association(s, "STORESCU", "TLSSCP", TLS_PORT, operations=ops)]}


@scenario("tls-failures", "tls-failures.pcap",
          "failed DICOM-over-TLS connections, in this order: echoscu trusting another CA "
          "(unknown_ca); echoscu to a storescp whose certificate expired (certificate_expired);"
          " echoscu +tla without a certificate to a storescp that requires one (TLS 1.3: the "
          "refusal is encrypted); pynetdicom TLS 1.2 without a certificate to the same "
          "storescp (handshake_failure, key log); plain echoscu to the TLS port; echoscu +tls "
          "to a plain storescp", sample=False)
def tls_failures(s: Session, p: dict[str, Any]) -> Truth:
    c = certs(s)
    storescp_tls(s, c)
    storescp_tls(s, c, "-ic", name="expired", cert="expired", port=EXPIRED_PORT)
    s.server("plain", [BIN / "storescp", "-v", "-aet", "PLAINSCP", "-od", s.work / "received",
                       PLAIN_PORT], PLAIN_PORT)
    echo = [BIN / "echoscu", "-v", "-aet", "ECHOSCU", "-aec", "TLSSCP"]
    runs = []
    with s.capture():
        s.client("unknown-ca", [*echo, *dcmtk_tls(c, "client", ca="rogue-ca"), s.scp_ip,
                                TLS_PORT], ok=(1,))
        time.sleep(0.2)
        s.client("expired-cert", [*echo, *dcmtk_tls(c, "client"), s.scp_ip, EXPIRED_PORT],
                 ok=(1,))
        time.sleep(0.2)
        s.client("no-client-cert", [*echo, "+tla", "+cf", c["ca"][1], s.scp_ip, TLS_PORT],
                 ok=(0, 1))
        time.sleep(0.2)
        runs = pyclient(s, "no-client-cert-12", TLS_PORT, c, "--tls-version", "1.2",
                        "--expect-fail", ok=(0, 1))
        time.sleep(0.2)
        s.client("plain-to-tls", [*echo, s.scp_ip, TLS_PORT], ok=(1,))
        time.sleep(0.2)
        s.client("tls-to-plain", [*echo, *dcmtk_tls(c, "client"), s.scp_ip, PLAIN_PORT],
                 ok=(1,))
    for name in ("unknown-ca", "expired-cert", "no-client-cert", "plain-to-tls",
                 "tls-to-plain"):
        shutil.copy(s.log(name), s.work / f"{name}.txt")
    return {"server_ports": [TLS_PORT, EXPIRED_PORT, PLAIN_PORT], "keylog": keys_path(s).name,
            "tls": [
                {"server_port": TLS_PORT, "outcome": "handshake_failed",
                 "alert": {"by": "client", "description": "unknown_ca"}},
                {"server_port": EXPIRED_PORT, "outcome": "handshake_failed",
                 "alert": {"by": "client", "description": "certificate_expired"}},
                {"server_port": TLS_PORT, "outcome": "handshake_failed", "version": "TLS 1.3",
                 "client_certificate": False},
                {"server_port": TLS_PORT, "outcome": "handshake_failed", "version": "TLS 1.2",
                 "client_certificate": False,
                 "alert": {"by": "server", "description": "handshake_failure"},
                 "pynetdicom": runs},
                {"server_port": TLS_PORT, "outcome": "plain_dicom_to_tls_port"},
                {"server_port": PLAIN_PORT, "outcome": "tls_to_plain_port"},
            ],
            "associations": []}


ORTHANC = "/usr/sbin/Orthanc"


def orthanc_tls_config(s: Session, c: dict) -> Path:
    """Orthanc (1.9+) with DICOM TLS on port 2762, client certificates required from the CA."""
    cfg = {
        "Name": "DICOMSNIFF-TLS", "StorageDirectory": str(s.work / "db"),
        "IndexDirectory": str(s.work / "db"), "HttpServerEnabled": False,
        "DicomServerEnabled": True, "DicomAet": "ORTHANC", "DicomPort": TLS_PORT,
        "DicomCheckCalledAet": False, "RemoteAccessAllowed": True,
        "DicomTlsEnabled": True, "DicomTlsCertificate": str(c["server"][1]),
        "DicomTlsPrivateKey": str(c["server"][0]),
        "DicomTlsTrustedCertificates": str(c["ca"][1]),
        "DicomTlsRemoteCertificateRequired": True,
    }
    path = s.work / "orthanc.json"
    path.write_text(json.dumps(cfg, indent=1))
    return path


@scenario("tls-orthanc", "tls-orthanc.pcap",
          "pynetdicom SCU with a client certificate (key log) -> Orthanc 1.10 with DICOM TLS "
          "(DicomTlsEnabled, client certificate required): C-ECHO and a C-STORE; then "
          "pynetdicom without a client certificate, refused (TLS 1.3: certificate_required, "
          "readable with the key log)", sample=False)
def tls_orthanc(s: Session, p: dict[str, Any]) -> Truth:
    c = certs(s)
    (s.work / "db").mkdir(exist_ok=True)
    s.server("orthanc", [ORTHANC, orthanc_tls_config(s, c)], TLS_PORT)
    with s.capture():
        ok = pyclient(s, "client", TLS_PORT, c, "--cert", c["client"][1], "--key",
                      c["client"][0], "--called", "ORTHANC", "--instance-base", 500)
        time.sleep(0.3)
        refused = pyclient(s, "no-cert", TLS_PORT, c, "--called", "ORTHANC", "--expect-fail",
                           ok=(0, 1))
    return {"server_ports": [TLS_PORT], "keylog": keys_path(s).name,
            "tls": [tls_truth(x, TLS_PORT, client_certificate=True) for x in ok]
            + [{"server_port": TLS_PORT, "outcome": "handshake_failed",
                "client_certificate": False, "pynetdicom": refused}],
            "associations": [association(s, "TLSSCU", "ORTHANC", TLS_PORT, operations=[
                op("C-ECHO", st) for st in x.get("C-ECHO", [])] + [
                op("C-STORE", st, sop_class=CT) for st in x.get("C-STORE", [])])
                for x in ok]}


@scenario("tls-bulk", "tls-bulk.pcap",
          "benchmark load (not committed): pynetdicom over TLS 1.3 (key log) storing many "
          "512 KB CT images on a few associations", sample=False, images=60, size=524288,
          associations=3, tls_version="1.3")
def tls_bulk(s: Session, p: dict[str, Any]) -> Truth:
    c = certs(s)
    pyserver(s, "server", TLS_PORT, c)
    per = max(1, p["images"] // p["associations"])
    with s.capture():
        lines = pyclient(s, "client", TLS_PORT, c, "--tls-version", p["tls_version"],
                         "--associations", p["associations"], "--store", per, "--echo", 0,
                         "--size", p["size"])
    return pnd_truth(s, lines)


@scenario("tls-bulk-clear", "tls-bulk-clear.pcap",
          "benchmark load (not committed): tls-bulk's peers and images without TLS, the "
          "clear twin that prices decryption", sample=False, images=60, size=524288,
          associations=3)
def tls_bulk_clear(s: Session, p: dict[str, Any]) -> Truth:
    c = certs(s)
    pyserver(s, "server", TLS_PORT, c, "--plain")
    per = max(1, p["images"] // p["associations"])
    with s.capture():
        lines = pyclient(s, "client", TLS_PORT, c, "--plain", "--associations",
                         p["associations"], "--store", per, "--echo", 0, "--size", p["size"])
    return {"server_ports": [TLS_PORT],
            "associations": [pnd_association(s, x, TLS_PORT) for x in lines]}


TLS_SCENARIOS = ["tls13-store", "tls12-resume", "tls-suites", "tls-hrr", "tls-dcmtk",
                 "tls-null", "tls-failures", "tls-orthanc"]
_ = VERIFICATION


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Record the DICOM-over-TLS captures (root).")
    ap.add_argument("scenarios", nargs="*", help=f"default: all of {', '.join(TLS_SCENARIOS)}")
    ap.add_argument("--out", type=Path, default=TLS_DIR)
    ap.add_argument("--prefix", default="dstls")
    ap.add_argument("--keep-work", action="store_true")
    args = ap.parse_args(argv)
    chosen = args.scenarios or TLS_SCENARIOS
    args.out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".recording-", dir=args.out))
    try:
        rec = Recorder(stage, args.prefix, keep_work=args.keep_work)
        entries = [rec.record(n) for n in chosen]
        st = args.out.stat()
        for e in entries:
            names = [e["file"]] + ([e["keylog"]] if e.get("keylog") else [])
            for n in names:
                (stage / n).replace(args.out / n)
                os.chown(args.out / n, st.st_uid, st.st_gid)
        write_manifest(args.out / "manifest.json", entries)
        if (args.out / "README.md").exists():
            update_readme_table(args.out / "README.md", args.out / "manifest.json")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    for e in entries:
        print(f"{e['file']:24} {e['size_bytes']:>9} bytes {e['frames']:>5} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
