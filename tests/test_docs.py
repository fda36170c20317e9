"""The user guide's promises: links resolve, and docs/json.md names every field --json writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_relative_links_resolve():
    broken = []
    for page in _pages():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def _json_keys() -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {}
    for name in ("move.pcap", "associate-reject.pcap", "abort-mid-transfer.pcap", "get.pcap",
                 "find-cancel.pcap", "mpps.pcap", "storage-commitment.pcap"):
        out = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", "--json",
                              str(CAPTURES / name)], capture_output=True, text=True, check=True)
        for line in out.stdout.splitlines():
            rec = json.loads(line)
            keys.setdefault(rec["type"], set()).update(rec)
    return keys


def test_json_contract_names_every_field():
    doc = (ROOT / "docs" / "json.md").read_text()
    keys = _json_keys()
    assert {"association", "transaction", "summary"} <= keys.keys()
    missing = sorted(f"{t}.{k}" for t, ks in keys.items() for k in ks
                     if k != "type" and f"`{k}`" not in doc)
    assert not missing, f"docs/json.md does not name: {missing}"
