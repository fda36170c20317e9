"""Record the DICOMweb captures Orthanc alone cannot give: a real 406, XML Store Instances
responses, HTTP/2.

* ``tinypacs.pcap``: tiny-pacs 0.4 with tiny-pacs-dicomweb 0.1 (PyPI, a pure-Python PACS whose
  DICOMweb front-end negotiates content as PS3.18 8.7.4 says) and curl: STOW-RS, then 406 to a
  QIDO-RS asking for XML, to a WADO-RS asking for a transfer syntax it cannot produce, and to
  a WADO-URI frame request; a 200 QIDO-RS for contrast.
* ``stow-xml.pcap``: curl -> Orthanc with its DICOMweb plugin: STOW-RS with ``Accept:
  application/dicom+xml`` (PS3.19 Native DICOM Model responses): two instances stored, then a
  study-level store with an instance of another study (a Failed SOP Sequence in XML).
* ``h2.pcap``: curl (libcurl with nghttp2) -> Hypercorn 0.18 (PyPI, an ASGI server with h2)
  in clear text: HTTP/2 with prior knowledge, and an HTTP/1.1 request with ``Upgrade: h2c``
  answered 101; then curl -> Orthanc with ``Upgrade: h2c``, which Orthanc ignores (HTTP/1.1
  200).

``sudo python3 -m captures.dicomweb_more_record [--out DIR] [--venv DIR]``: tiny-pacs and
Hypercorn run from a virtual environment (``python3 -m venv DIR && DIR/bin/pip install
tiny-pacs-dicomweb waitress hypercorn``), so that their pinned dependencies stay out of the
system Python. The truth of each exchange is what curl logged (``-w %{json}``); it goes to
``manifest-more.json``.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

from . import synth, webrec
from .dicomweb_record import HTTP_PORT, ORTHANC, orthanc_config
from .record import describe_pcap
from .session import Session

OUT = Path(__file__).with_name("dicomweb")
TINY_PORT = 8043
H2_PORT = 8044
TINY_CONFIG = """\
ae:
  ae_title: [TINY_PACS]
  port: 11112
components:
  Database: {{'on': true, driver: sqlite, mode: memory, uri: true}}
  InMemoryStorage: {{'on': true}}
  HttpServer: {{'on': true, host: 0.0.0.0, port: {port}, allow_remote: true}}
  DICOMWeb: {{'on': true, prefix: /dicomweb, auth: none}}
"""

H2_APP = """\
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/dicom+json")]})
    await send({"type": "http.response.body", "body": b"[]"})
"""


def multipart(paths: list[Path], boundary: str) -> bytes:
    """A STOW-RS request body (PS3.18 10.5.1.2.1): one application/dicom part per file."""
    out = bytearray()
    for p in paths:
        out += (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").encode()
        out += p.read_bytes() + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def curl(s: Session, name: str, groups: list[list[str]], http: str = "--http1.1",
         ok: tuple[int, ...] = (0,)) -> list[dict[str, Any]]:
    """:func:`webrec.curl_exchanges` with the HTTP version of each exchange."""
    return webrec.curl_exchanges(s, name, groups, http, ok, http_version=True)


def stow_args(body: Path, boundary: str, url: str, accept: str) -> list[str]:
    return ["-X", "POST", "-H", f"Accept: {accept}",
            "-H", f'Content-Type: multipart/related; type="application/dicom"; '
                  f"boundary={boundary}", "--data-binary", f"@{body}", url]


def record(out: Path, prefix: str, venv: Path) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    with webrec.lab(out, prefix) as (bed, s, work):
        files = work / "files"
        images = synth.ct_series(files, key="dicomweb-more", count=2, rows=32, cols=32,
                                 patient=5)
        other = synth.ct_series(files, key="dicomweb-more", count=1, rows=32, cols=32,
                                patient=5, study=1)
        b1, b2 = uuid.uuid4().hex, uuid.uuid4().hex
        body_two = work / "two.mpr"
        body_two.write_bytes(multipart([i.path for i in images], b1))
        body_mixed = work / "mixed.mpr"
        body_mixed.write_bytes(multipart([images[0].path, other[0].path], b2))
        app = work / "h2app.py"
        app.write_text(H2_APP)
        tiny_cfg = work / "tiny.yaml"
        tiny_cfg.write_text(TINY_CONFIG.format(port=TINY_PORT))
        s.server("orthanc", [ORTHANC, orthanc_config(work)], [HTTP_PORT])
        s.server("tinypacs", [venv / "bin" / "tiny-pacs", "run", "-c", tiny_cfg],
                 [TINY_PORT])
        s.server("hypercorn", [venv / "bin" / "hypercorn", "--bind",
                               f"0.0.0.0:{H2_PORT}", "h2app:app"], [H2_PORT],
                 cwd=work)
        ip = s.scp_ip

        def take(name: str, description: str, ports: list[int], run) -> None:
            pcap = out / name
            with s.capture("scu", pcap):
                truth = run()
            entries.append({"file": name, "description": description,
                            "server_ports": ports, **describe_pcap(pcap),
                            "tcpdump": s.tcpdump_stats, "offloads": bed.offloads,
                            "exchanges": truth})

        tiny = f"http://{ip}:{TINY_PORT}/dicomweb"
        img = images[0]
        inst = (f"{tiny}/studies/{img.study_uid}/series/{img.series_uid}"
                f"/instances/{img.sop_instance}")
        take("tinypacs.pcap", "curl -> tiny-pacs-dicomweb: STOW-RS of two instances; "
             "QIDO-RS asking for XML (406), the same as JSON (200); WADO-RS asking "
             "for JPEG 2000 (406); WADO-URI for a frame (406)", [TINY_PORT],
             lambda: curl(s, "curl-tiny", [
                 stow_args(body_two, b1, f"{tiny}/studies", "application/dicom+json"),
                 ["-H", "Accept: application/dicom+xml",
                  f"{tiny}/studies?PatientID={img.patient_id}"],
                 ["-H", "Accept: application/dicom+json",
                  f"{tiny}/studies?PatientID={img.patient_id}"],
                 ["-H", 'Accept: multipart/related; type="application/dicom"; '
                        "transfer-syntax=1.2.840.10008.1.2.4.90", inst],
                 [f"{tiny}/wado?requestType=WADO&studyUID={img.study_uid}"
                  f"&seriesUID={img.series_uid}&objectUID={img.sop_instance}"
                  "&frameNumber=1&contentType=application/dicom"]]))

        orth = f"http://{ip}:{HTTP_PORT}/dicom-web"
        take("stow-xml.pcap", "curl -> Orthanc: STOW-RS with Accept: "
             "application/dicom+xml: two instances stored; a study-level STOW with "
             "an instance of another study (Failed SOP Sequence in XML)", [HTTP_PORT],
             lambda: curl(s, "curl-xml", [
                 stow_args(body_two, b1, f"{orth}/studies", "application/dicom+xml"),
                 stow_args(body_mixed, b2, f"{orth}/studies/{img.study_uid}",
                           "application/dicom+xml")]))

        h2 = f"http://{ip}:{H2_PORT}/dicom-web/studies"
        take("h2.pcap", "curl -> Hypercorn: HTTP/2 with prior knowledge; HTTP/1.1 with "
             "Upgrade: h2c answered 101; curl -> Orthanc with Upgrade: h2c (ignored, "
             "HTTP/1.1 200)", [H2_PORT, HTTP_PORT],
             lambda: curl(s, "curl-h2pk", [[h2]], http="--http2-prior-knowledge")
             + curl(s, "curl-h2c", [[h2]], http="--http2")
             + curl(s, "curl-h2c-orthanc", [["-H", "Accept: application/dicom+json",
                                             f"{orth}/studies"]], http="--http2"))
    return entries


def main(argv: list[str] | None = None) -> int:
    args = webrec.arguments(argv, __doc__, OUT, "dwmore", venv=True)
    entries = record(args.out, args.prefix, args.venv)
    return webrec.write_manifest(args.out / "manifest-more.json", {
        "version": 1, "generated_by": "captures/dicomweb_more_record.py",
        "tools": {"orthanc": webrec.version(["dpkg-query", "-W", "-f", "${Version}",
                                             "orthanc"]),
                  "hypercorn": webrec.pip_version(args.venv, "hypercorn"),
                  "curl": webrec.version(["curl", "-V"]).splitlines()[0],
                  "tiny-pacs-dicomweb": webrec.pip_version(args.venv, "tiny-pacs-dicomweb")},
        "captures": entries})


if __name__ == "__main__":
    sys.exit(main())
