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

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .netns import Testbed
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
    argv: list[str] = ["curl"]
    for i, g in enumerate(groups):
        if i:
            argv.append("--next")
        argv += ["-sS", "--http1.1", "-o", "/dev/null", "-w",
                 "~J~%{json}~H~%{header_json}~E~\\n", *g]
    out = s.client(name, argv)
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
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    here = Path(__file__).resolve().parent
    entries: list[dict[str, Any]] = []
    try:
        one, two = work / "w1.json", work / "w2.json"
        one.write_text(json.dumps(workitem("Synthetic CAD run")))
        two.write_text(json.dumps(workitem("Synthetic QA review")))
        bad = work / "bad.json"
        bad.write_text("this is not DICOM JSON")
        with Testbed(prefix=prefix, scu_if=f"{prefix[:8]}0", scp_if=f"{prefix[:8]}1") as bed:
            s = Session(bed, work, out / "unused.pcap")
            try:
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
            finally:
                s.stop_servers()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return entries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--prefix", default="ups")
    ap.add_argument("--venv", type=Path, default=Path("/tmp/dw-venv"))
    args = ap.parse_args(argv)
    entries = record(args.out, args.prefix, args.venv)

    def version(cmd: list[str]) -> str:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()

    import requests

    manifest = {"version": 1, "generated_by": "captures/ups_record.py",
                "tools": {"waitress": version(
                              [str(args.venv / "bin" / "pip"), "show", "waitress"]
                          ).split("Version: ")[-1].splitlines()[0],
                          "curl": version(["curl", "-V"]).splitlines()[0],
                          "requests": requests.__version__,
                          "origin": "captures/ups_origin.py (scripted UPS-RS application)"},
                "captures": entries}
    (args.out / "manifest-ups.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for e in entries:
        print(f"{e['file']}: {e['frames']} frames, {e['size_bytes']} bytes, "
              f"{len(e['exchanges'])} exchanges", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
