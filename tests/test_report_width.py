"""The text report in an ordinary terminal: 80 and 120 columns, through a real pty.

rich sizes its output from the terminal, so these tests run ``dicomsniff analyze`` on a pty
whose window size is set, as a user's terminal would be. What must hold at every width: no line
wider than the terminal, every finding code and SOP instance UID printed whole (codes are pasted
into --disable-rule, UIDs into a PACS query), every transaction id shown (show --transaction
takes it), and no Python ``None`` leaking into the words.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")

SAMPLES = ["move.pcap", "get.pcap", "associate-reject.pcap", "abort-mid-transfer.pcap",
           "find-cancel.pcap", "mpps.pcap", "storage-commitment-separate.pcap",
           "ipv6-store.pcap", "findings/negotiation.pcap", "findings/move-failures.pcap",
           "findings/store-status.pcap", "findings/no-answer.pcap"]


def run_in_pty(args: list[str], columns: int, rows: int = 50) -> tuple[int, str]:
    """Run dicomsniff with stdout and stderr on a pty of the given size; the text it showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "dicomsniff", *args], stdout=slave,
                            stderr=slave, stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    rc = proc.wait(timeout=60)
    text = _ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    return rc, text.replace("\r\n", "\n")


def json_records(name: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", "--json",
                          str(CAPTURES / name)], capture_output=True, text=True, cwd=ROOT)
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("name", SAMPLES)
def test_report_fits_and_keeps_codes_and_uids_whole(name: str, columns: int) -> None:
    rc, text = run_in_pty(["analyze", str(CAPTURES / name)], columns)
    assert rc == 0, text[-2000:]
    lines = text.splitlines()
    too_wide = [ln for ln in lines if len(ln.rstrip()) > columns]
    assert not too_wide, too_wide[:5]
    assert not re.search(r"\bNone\b(?! of)", text)
    words = set(re.findall(r"[\w.\-]+", text))
    records = json_records(name)
    for rec in records:
        if rec["type"] == "finding":
            assert rec["code"] in words, rec["code"]
        if rec["type"] == "transaction":
            assert f"txn {rec['id']}" in text
            if rec["sop_instance"]:
                assert rec["sop_instance"] in words, rec["sop_instance"]
    assert "…" not in "".join(w for w in words if "-" in w and w.isupper())


@pytest.mark.parametrize("columns", [80, 120])
def test_digest_keeps_every_column(columns: int) -> None:
    """The 'What went wrong' digest: severity, code, count, where and frame all survive."""
    _, text = run_in_pty(["analyze", str(CAPTURES / "findings/negotiation.pcap")], columns)
    head = text.split("What went wrong", 1)[1].split("\n#1 ", 1)[0]
    for rec in json_records("findings/negotiation.pcap"):
        if rec["type"] == "finding":
            assert re.search(rf"(ERROR|WARNING|INFO)\s+{re.escape(rec['code'])}\s", head), \
                rec["code"]
    assert re.search(r"#\d+", head) and re.search(r"\b\d+\b", head)


def test_cmove_status_is_short_at_80() -> None:
    _, text = run_in_pty(["analyze", str(CAPTURES / "move.pcap")], 80)
    block = text.split("txn 1 ", 1)[1].split("\n#", 1)[0]
    status_lines = block.split("\n      ", 1)[0]  # before the next transaction row
    assert "Sub-operations complete" in block
    assert len(status_lines.splitlines()) <= 4


def test_rejected_association_summarises_unanswered_contexts() -> None:
    _, text = run_in_pty(["analyze", str(CAPTURES / "associate-reject.pcap")], 80)
    assert "no answer" not in text
    assert "128 presentation context(s) proposed (" in text
    assert len(text.splitlines()) < 60


def test_cget_roles_are_summarised() -> None:
    """A C-GET SCU proposes SCP role for every storage SOP class: one line, not a page."""
    _, text = run_in_pty(["analyze", str(CAPTURES / "get.pcap")], 80)
    assert text.count("role ") <= 4, text[:3000]
    assert "role selection" in text
    _, verbose = run_in_pty(["analyze", str(CAPTURES / "get.pcap"), "--all-contexts"], 200)
    assert verbose.count("role ") > 20


def test_findings_only_names_the_association() -> None:
    _, text = run_in_pty(["analyze", str(CAPTURES / "findings/negotiation.pcap"),
                          "--findings-only"], 80)
    detail = text.split("What went wrong", 1)[1]
    lines = [ln for ln in detail.splitlines() if re.match(r"(ERROR|WARNING|INFO)\s", ln)]
    named = [ln for ln in lines if re.match(r"\w+\s+(#\d+|capture) [A-Z]", ln)]
    assert named, detail[:2000]


def test_suboperations_without_remaining_print_no_none() -> None:
    from dicomsniff.report.text import suboperations_text

    assert suboperations_text({"completed": 20, "failed": 0, "warning": 0,
                               "remaining": None}) == "sub-ops: 20 ok, 0 failed, 0 warn"
    assert suboperations_text({"completed": 1, "failed": 0, "warning": 0,
                               "remaining": 3}).endswith("3 left")


@pytest.mark.parametrize("name", ["findings/negotiation.pcap", "findings/killed-scu.pcap",
                                  "associate-reject.pcap"])
def test_report_in_a_file_keeps_codes_whole(name: str, tmp_path) -> None:
    """Written to a file (no terminal, no $COLUMNS): codes stay pasteable into
    --disable-rule."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = tmp_path / "report.txt"
    subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", str(CAPTURES / name),
                    "-o", str(out)], check=True, env=env, cwd=ROOT)
    words = set(re.findall(r"[\w.\-]+", out.read_text()))
    codes = {r["code"] for r in json_records(name) if r["type"] == "finding"}
    assert codes and codes <= words, codes - words
