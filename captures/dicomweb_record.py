"""Record the DICOMweb captures: Orthanc with its DICOMweb plugin (Debian packages ``orthanc``,
``orthanc-dicomweb``) as the origin server, dicomweb-client and curl as user agents, dcmtk's
storescu for the DIMSE half of the mixed capture; between two network namespaces.

``sudo python3 -m captures.dicomweb_record [--out DIR] [--prefix dwrec]`` writes
``captures/dicomweb/*.pcap`` and their ``manifest.json``. Orthanc runs from a config file in a
scratch directory (never as the system service). The ground truth of each capture is what the
user agents logged: every request's method, path and status, and the response's content type.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from . import synth, webrec
from .netns import SCU
from .record import describe_pcap
from .session import Session

OUT = Path(__file__).with_name("dicomweb")
ENTRIES_EXTRA: dict[str, dict[str, Any]] = {}
CLIENT = Path(__file__).with_name("dicomweb_agent.py")
HTTP_PORT = 8042
HTTPS_PORT = 8443  # stunnel in front of Orthanc (Orthanc 1.10's own TLS fails with OpenSSL 3)
DICOM_PORT = 4242
ORTHANC = "/usr/sbin/Orthanc"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def orthanc_config(work: Path) -> Path:
    cfg = {
        "Name": "DICOMSNIFF-ORTHANC",
        "StorageDirectory": str(work / "db"),
        "IndexDirectory": str(work / "db"),
        "Plugins": [PLUGIN],
        "HttpServerEnabled": True, "HttpPort": HTTP_PORT, "RemoteAccessAllowed": True,
        "AuthenticationEnabled": False, "HttpCompressionEnabled": False,
        "KeepAlive": True, "HttpDescribeErrors": True,
        "DicomServerEnabled": True, "DicomAet": "ORTHANC", "DicomPort": DICOM_PORT,
        "DicomCheckCalledAet": False, "OrthancExplorerEnabled": False,
        "WebDavEnabled": False,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True,
                     "WadoRoot": "/wado", "Ssl": False, "StudiesMetadata": "Full",
                     "SeriesMetadata": "Full"},
    }
    path = work / "orthanc.json"
    path.write_text(json.dumps(cfg, indent=1))
    return path


def stunnel_config(work: Path, ip: str) -> Path:
    """TLS termination in front of Orthanc, with a self-signed certificate made here (for the
    SCP's address, so that the user agent verifies it against that one certificate)."""
    import subprocess

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=dicomsniff-pacs", "-addext", f"subjectAltName=IP:{ip}",
                    "-keyout", str(work / "key.pem"),
                    "-out", str(work / "cert.pem")], check=True, capture_output=True)
    cfg = work / "stunnel.conf"
    cfg.write_text(f"foreground = yes\npid =\n[https]\naccept = {HTTPS_PORT}\n"
                   f"connect = 127.0.0.1:{HTTP_PORT}\ncert = {work / 'cert.pem'}\n"
                   f"key = {work / 'key.pem'}\n")
    return cfg


def _client(s: Session, plan: str, files: Path, truth: Path,
            scheme: str = "http") -> list[dict[str, Any]]:
    base = (f"https://{s.scp_ip}:{HTTPS_PORT}" if scheme == "https"
            else f"http://{s.scp_ip}:{HTTP_PORT}")
    s.client(f"dicomweb-{plan}", [sys.executable, CLIENT, plan, base, files, truth])
    return json.loads(truth.read_text())


def record(out: Path, prefix: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    with webrec.lab(out, prefix) as (bed, s, work):
        files = work / "files"
        images = synth.ct_series(files, key="dicomweb", count=4, rows=64, cols=64)
        images += synth.ct_series(files, key="dicomweb", count=1, rows=64, cols=64, study=1)
        mixed = work / "mixed"
        mixed_images = synth.ct_series(mixed, key="dicomweb-mixed", count=2, rows=64, cols=64,
                                       patient=2)
        cfg = orthanc_config(work)
        s.server("orthanc", [ORTHANC, cfg], [HTTP_PORT, DICOM_PORT])
        base = f"http://{s.scp_ip}:{HTTP_PORT}"

        def take(name: str, description: str, run) -> None:
            pcap = out / name
            with s.capture(SCU, pcap):
                truth = run()
            entry = {"file": name, "description": description,
                     "server_ports": [HTTP_PORT], **describe_pcap(pcap),
                     "tcpdump": s.tcpdump_stats, "offloads": bed.offloads,
                     "exchanges": truth}
            entries.append(entry)

        take("stow.pcap", "dicomweb-client -> Orthanc: STOW-RS of two instances, the "
             "same again, a study-level STOW with an instance of another study, a part "
             "that is not DICOM, a 415",
             lambda: _client(s, "stow", files, work / "stow.json"))
        take("qido.pcap", "dicomweb-client -> Orthanc: QIDO-RS studies/series/"
             "instances with matching keys, limit, offset, includefield, fuzzymatching, "
             "and a search that matches nothing",
             lambda: _client(s, "qido", files, work / "qido.json"))
        take("wado.pcap", "dicomweb-client -> Orthanc: WADO-RS instance, metadata, "
             "frames (the library's default Accept, then octet-stream), rendered, "
             "thumbnail, study; 406 for JPEG 2000; 404; WADO-URI default, Part 10, "
             "JPEG and an unknown object",
             lambda: _client(s, "wado", files, work / "wado.json"))
        img = images[0]
        inst = (f"{base}/dicom-web/studies/{img.study_uid}/series/{img.series_uid}"
                f"/instances/{img.sop_instance}")
        take("curl-keepalive.pcap", "curl, one keep-alive connection: QIDO, HEAD of an "
             "instance, WADO-RS metadata, an unknown path (404)",
             lambda: webrec.curl_exchanges(s, "curl", [
                 ["-H", "Accept: application/dicom+json",
                  f"{base}/dicom-web/studies?PatientID=DSN0001"],
                 ["-I", "-H", "Accept: application/dicom+json", f"{inst}/metadata"],
                 ["-H", "Accept: application/dicom+json", f"{inst}/metadata"],
                 [f"{base}/dicom-web/nothing-here"]]))

        def mixed_run() -> list[dict[str, Any]]:
            s.client("storescu", [synth.DCMTK / "storescu", "-aec", "ORTHANC",
                                  s.scp_ip, DICOM_PORT, *[i.path for i in mixed_images]])
            m = mixed_images[0]
            inst = (f"{base}/dicom-web/studies/{m.study_uid}/series/{m.series_uid}"
                    f"/instances/{m.sop_instance}")
            return webrec.curl_exchanges(s, "curl-mixed", [
                ["-H", "Accept: application/dicom+json",
                 f"{base}/dicom-web/studies?PatientID=DSN0003"],
                ["-H", "Accept: application/dicom+json", f"{inst}/metadata"],
                ["-H", 'Accept: multipart/related; type="application/dicom"', inst]])

        take("mixed-dimse-dicomweb.pcap", "storescu C-STOREs two instances to Orthanc "
             "(DIMSE, port 4242), then curl finds and retrieves one of them over "
             "DICOMweb (port 8042): one story, two protocols", mixed_run)

        s.server("stunnel", ["/usr/bin/stunnel4", stunnel_config(work, s.scp_ip)],
                 HTTPS_PORT)
        s.env["REQUESTS_CA_BUNDLE"] = str(work / "cert.pem")
        keys = out / "https.keys"
        keys.unlink(missing_ok=True)
        s.env["SSLKEYLOGFILE"] = str(keys)
        take("https.pcap", "dicomweb-client -> stunnel -> Orthanc over TLS (key log in "
             "https.keys): QIDO-RS, WADO-RS metadata and instance, STOW-RS",
             lambda: _client(s, "https", files, work / "https.json", "https"))
        ENTRIES_EXTRA["https.pcap"] = {"server_ports": [HTTPS_PORT],
                                       "keylog": "https.keys"}
    for e in entries:
        e.update(ENTRIES_EXTRA.get(e["file"], {}))
    return entries


def main(argv: list[str] | None = None) -> int:
    args = webrec.arguments(argv, __doc__, OUT, "dwrec")
    entries = record(args.out, args.prefix)
    import dicomweb_client

    dpkg = ["dpkg-query", "-W", "-f", "${Version}"]
    return webrec.write_manifest(args.out / "manifest.json", {
        "version": 1, "generated_by": "captures/dicomweb_record.py",
        "network": {"scu": {"ipv4": "192.0.2.1"}, "scp": {"ipv4": "192.0.2.2"}},
        "tools": {"orthanc": webrec.version([*dpkg, "orthanc"]),
                  "orthanc-dicomweb": webrec.version([*dpkg, "orthanc-dicomweb"]),
                  "dicomweb-client": dicomweb_client.__version__},
        "captures": entries})


if __name__ == "__main__":
    sys.exit(main())
