"""docs/json.md names every field of the TLS records --json writes (the tls record and its
nested objects, an association's tls object, the summary's tls counts, a finding's tls)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TLS = ROOT / "captures" / "tls"
RUNS = [("tls-failures.pcap", "tls-failures.keys"), ("tls12-resume.pcap", "tls12-resume.keys"),
        ("tls-dcmtk.pcap", None)]


def _lossy(tmp: Path) -> Path:
    """tls13-store.pcap without the server's record holding the first C-STORE-RSP."""
    from captures import pcapfile

    header, _lt = pcapfile.read_header(TLS / "tls13-store.pcap")
    out = tmp / "lossy.pcap"
    pcapfile.write(out, header, [f for f in pcapfile.frames(TLS / "tls13-store.pcap")
                                 if f.number != 32])
    return out


def _records(tmp: Path) -> list[dict]:
    recs = []
    out = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", "--json",
                          str(_lossy(tmp)), "--tls-keylog", str(TLS / "tls13-store.keys")],
                         capture_output=True, text=True, timeout=120, check=True)
    recs += [json.loads(line) for line in out.stdout.splitlines()]
    for cap, keys in RUNS:
        argv = [sys.executable, "-m", "dicomsniff", "analyze", "--json", str(TLS / cap)]
        if keys:
            argv += ["--tls-keylog", str(TLS / keys)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True)
        recs += [json.loads(line) for line in out.stdout.splitlines()]
    web = ROOT / "captures" / "dicomweb"
    out = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", "--json",
                          str(web / "https.pcap"), "--tls-keylog", str(web / "https.keys")],
                         capture_output=True, text=True, timeout=120, check=True)
    return recs + [json.loads(line) for line in out.stdout.splitlines()]


def test_every_tls_field_is_in_docs_json_md(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "json.md").read_text()
    names: dict[str, set[str]] = {}

    def add(where: str, keys) -> None:
        names.setdefault(where, set()).update(keys)

    for r in _records(tmp_path):
        if r["type"] == "tls":
            add("tls", r)
            for nested in ("certificates", "alerts", "handshake"):
                for item in r[nested]:
                    add(f"tls.{nested}", item)
            for nested in ("bytes", "application_bytes"):
                add(f"tls.{nested}", r[nested])
            if r.get("resync"):
                add("tls.resync", r["resync"])
        elif r["type"] == "association" and r.get("tls"):
            add("association.tls", r["tls"])
        elif r["type"] == "summary":
            add("summary.tls", r["tls"])
        elif r["type"] == "finding" and "tls" in r:
            add("finding", ["tls"])
    # every kind of record and nested object was really seen
    assert {"tls", "tls.certificates", "tls.alerts", "tls.handshake", "association.tls",
            "summary.tls", "finding", "tls.resync"} <= names.keys()
    missing = sorted(f"{w}.{k}" for w, ks in names.items() for k in ks
                     if k != "type" and f"`{k}`" not in doc)
    assert not missing, f"docs/json.md does not name: {missing}"
