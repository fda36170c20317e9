"""Record ``ups.pcap``: every UPS-RS transaction of PS3.18 11 between real user agents and a
scripted UPS-RS origin server on a real HTTP stack.

No UPS-RS origin server is installable here (Orthanc's DICOMweb plugin has none; the PyPI
and npm candidates are not servers or do not run), so the origin is
:mod:`captures.ups_origin`, a small WSGI application with the PS3.4 Annex CC state table and
the PS3.18 11 status codes, served by waitress 3 (PyPI). The user agents are real: curl
(create with the workitem UID in the query, retrieve, a retrieve asking for XML (406), an
unknown workitem (404), a body that is not JSON (400), a second create) on one connection,
then Python ``requests`` (:mod:`captures.ups_client`: search, update, change state,
request cancellation, subscribe, suspend, unsubscribe, with the failures the state table
calls for) on another.

``sudo python3 -m captures.ups_record [--out DIR] [--venv DIR]``: waitress runs from a
virtual environment (``python3 -m venv DIR && DIR/bin/pip install waitress``). The truth of
each exchange is what the clients logged (curl ``-w %{json}``, requests' response); it goes to
``manifest-ups.json``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import webrec
from .record import describe_pcap
from .session import Session

OUT = Path(__file__).with_name("dicomweb")
PORT = 8045
W1 = "2.25.140061130912409337170811427391839545301"
W2 = "2.25.140061130912409337170811427391839545302"
MISSING = "2.25.999"
JSON = "application/dicom+json"


def curl(s: Session, name: str, groups: list[list[str]]) -> list[dict[str, Any]]:
    """One curl run, several URLs on one connection; the truth from ``-w %{json}`` and the
    response headers from ``%{header_json}`` (both multi-line: split on markers)."""
    out = s.client(name, webrec.curl_argv(groups, "~J~%{json}~H~%{header_json}~E~\\n"))
    done = []
    for m in re.finditer(r"~J~(.*?)~H~(.*?)~E~", out, re.S):
        d, h = json.loads(m.group(1)), json.loads(m.group(2))
        done.append({"client": "curl", "method": d["method"],
                     "path": urlsplit(d["url_effective"])._replace(scheme="", netloc="")
                     .geturl(), "status": d["response_code"],
                     "content_type": d["content_type"], "bytes": d["size_download"],
                     "warning": (h.get("warning") or [None])[0],
                     "location": (h.get("location") or [None])[0]})
    return done


def workitem(label: str) -> list[dict[str, Any]]:
    """A minimal scheduled workitem (PS3.4 CC.2.5.1.3.1), synthetic patient."""
    return [{"00741000": {"vr": "CS", "Value": ["SCHEDULED"]},
             "00741204": {"vr": "LO", "Value": [label]},
             "00741200": {"vr": "CS", "Value": ["MEDIUM"]},
             "00404005": {"vr": "DT", "Value": ["20261205143000"]},
             "00100010": {"vr": "PN", "Value": [{"Alphabetic": "SYNTHETIC^UPS"}]},
             "00100020": {"vr": "LO", "Value": ["SYN-UPS-1"]}}]


def record(out: Path, prefix: str, venv: Path) -> list[dict[str, Any]]:
    here = Path(__file__).resolve().parent
    entries: list[dict[str, Any]] = []
    with webrec.lab(out, prefix) as (bed, s, work):
        one, two = work / "w1.json", work / "w2.json"
        one.write_text(json.dumps(workitem("Synthetic CAD run")))
        two.write_text(json.dumps(workitem("Synthetic QA review")))
        bad = work / "bad.json"
        bad.write_text("this is not DICOM JSON")
        s.server("waitress", [venv / "bin" / "python", here / "ups_origin.py", PORT],
                 [PORT])
        base = f"http://{s.scp_ip}:{PORT}/ups"
        create = ["-X", "POST", "-H", f"Content-Type: {JSON}", "-H", f"Accept: {JSON}"]
        pcap = out / "ups.pcap"
        with s.capture("scu", pcap):
            truth = curl(s, "curl-ups", [
                [*create, "--data-binary", f"@{one}", f"{base}/workitems?{W1}"],
                ["-H", f"Accept: {JSON}", f"{base}/workitems/{W1}"],
                ["-H", "Accept: application/dicom+xml", f"{base}/workitems/{W1}"],
                ["-H", f"Accept: {JSON}", f"{base}/workitems/{MISSING}"],
                [*create, "--data-binary", f"@{bad}", f"{base}/workitems?{W2}"],
                [*create, "--data-binary", f"@{two}", f"{base}/workitems?{W2}"]])
            log = s.client("requests-ups", [sys.executable, here / "ups_client.py",
                                            base, W1, W2, MISSING])
            truth += [json.loads(line) for line in log.splitlines()
                      if line.startswith("{")]
        entries.append({"file": "ups.pcap", "description":
                        "curl and Python requests -> a scripted UPS-RS origin "
                        "server (captures/ups_origin.py) on waitress: every "
                        "PS3.18 11 transaction, with 400, 404, 406 and 409 failures",
                        "server_ports": [PORT], **describe_pcap(pcap),
                        "tcpdump": s.tcpdump_stats, "offloads": bed.offloads,
                        "workitems": [W1, W2], "missing": MISSING,
                        "exchanges": truth})
    return entries


def main(argv: list[str] | None = None) -> int:
    args = webrec.arguments(argv, __doc__, OUT, "ups", venv=True)
    entries = record(args.out, args.prefix, args.venv)
    import requests

    return webrec.write_manifest(args.out / "manifest-ups.json", {
        "version": 1, "generated_by": "captures/ups_record.py",
        "tools": {"waitress": webrec.pip_version(args.venv, "waitress"),
                  "curl": webrec.version(["curl", "-V"]).splitlines()[0],
                  "requests": requests.__version__,
                  "origin": "captures/ups_origin.py (scripted UPS-RS application)"},
        "captures": entries})


if __name__ == "__main__":
    sys.exit(main())
