"""analyze's selection, CSV tables, local time and the rules catalogue."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dicomsniff.report.selection import parse_time

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
         "COLUMNS": "100", **(env or {})}
    return subprocess.run([sys.executable, "-m", "dicomsniff", *args], capture_output=True,
                          text=True, cwd=ROOT, env=e)


def records(*args: str) -> list[dict]:
    res = run("analyze", "--json", *args)
    assert res.returncode == 0, res.stderr
    return [json.loads(x) for x in res.stdout.splitlines()]


def test_parse_time_forms():
    assert parse_time("+90s") == ("rel", 90.0)
    assert parse_time("+10m") == ("rel", 600.0)
    assert parse_time("07:50:12") == ("tod", 7 * 3600 + 50 * 60 + 12)
    kind, v = parse_time("2026-11-25T07:50:12Z")
    assert kind == "abs" and v == parse_time("2026-11-25T07:50:12")[1]
    for bad in ("yesterday", "25:00", "+x"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_selection_by_ae_id_command_status():
    night = CAPTURES / "findings" / "store-status.pcap"
    every = records(str(night))
    txns = [r for r in every if r["type"] == "transaction"]
    failed = [r for r in txns if r["status_category"] == "Failure"]
    assert failed and len(failed) < len(txns)
    got = records(str(night), "--status", "failure")
    assert [r["id"] for r in got if r["type"] == "transaction"] == [r["id"] for r in failed]
    assert [r for r in got if r["type"] == "association"]
    moves = records(str(CAPTURES / "move.pcap"), "--command", "c-move")
    assert {r["command"] for r in moves if r["type"] == "transaction"} == {"C-MOVE"}
    assert [r["id"] for r in moves if r["type"] == "association"] == [1]
    by_ae = records(str(CAPTURES / "store-many-associations.pcap"), "--ae", "storescu03")
    assert [r["calling_ae"] for r in by_ae if r["type"] == "association"] == ["STORESCU03"]
    by_id = records(str(CAPTURES / "move.pcap"), "--association", "2")
    assert [r["id"] for r in by_id if r["type"] == "association"] == [2]


def test_time_window_relative_to_the_capture():
    cap = str(CAPTURES / "store-many-associations.pcap")
    every = [r for r in records(cap) if r["type"] == "association"]
    starts = sorted(r["start"] for r in every)
    t0 = min(starts)
    first = records(cap, "--until", f"+{starts[1] - t0 - 0.001:.3f}s")
    # The window ends before the second association starts (but the first is still in it).
    kept = [r["id"] for r in first if r["type"] == "association"]
    assert len(kept) == 1
    later = records(cap, "--since", f"+{starts[-1] - t0 - 0.001:.3f}s")
    assert len([r for r in later if r["type"] == "association"]) == 1


def test_text_report_says_what_was_selected():
    out = run("analyze", str(CAPTURES / "move.pcap"), "--command", "C-STORE").stdout
    assert "selected 1 of 2: C-STORE" in out
    assert "#2 ARCHIVE" in out and "#1 MOVESCU" not in out


def test_bad_selection_words_are_one_line_errors():
    res = run("analyze", str(CAPTURES / "move.pcap"), "--since", "yesterday")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "argument --since: not a time: 'yesterday'" in res.stderr.strip().splitlines()[-1]


def test_csv_tables_read_back():
    cap = str(CAPTURES / "move.pcap")
    js = records(cap)
    t_csv = list(csv.DictReader(io.StringIO(run("analyze", cap, "--csv", "transactions")
                                            .stdout)))
    jt = [r for r in js if r["type"] == "transaction"]
    assert [int(r["id"]) for r in t_csv] == [r["id"] for r in jt]
    assert [r["sop_instance"] for r in t_csv] == [r["sop_instance"] or "" for r in jt]
    move = next(r for r in t_csv if r["command"] == "C-MOVE")
    assert move["status"] == "0x0000" and move["sub_completed"] == "4"
    assert move["sub_associations"] == "2" and move["request_time"].endswith("+00:00")
    f_csv = list(csv.DictReader(io.StringIO(run("analyze", cap, "--csv", "findings").stdout)))
    assert [r["code"] for r in f_csv] == [r["code"] for r in js if r["type"] == "finding"]
    a_csv = list(csv.DictReader(io.StringIO(run("analyze", cap, "--csv", "associations")
                                            .stdout)))
    a_csv.sort(key=lambda r: int(r["id"]))  # written as associations end, as --json is
    assert [r["calling_ae"] for r in a_csv] == ["MOVESCU", "ARCHIVE"]
    assert a_csv[1]["move_transaction"] == "1"


def test_csv_defuses_formulas():
    from dicomsniff.report.csvout import _cell

    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and _cell("CT01") == "CT01"


def test_localtime_shows_the_offset():
    cap = str(CAPTURES / "echo.pcap")
    utc = run("analyze", cap).stdout
    local = run("analyze", cap, "--localtime", env={"TZ": "Asia/Kolkata"}).stdout
    assert "Z " in utc or utc.count("Z") >= 1
    start_utc = next(ln for ln in utc.splitlines() if "start 20" in ln)
    start_local = next(ln for ln in local.splitlines() if "start 20" in ln)
    assert "+0530" in start_local and "+0530" not in start_utc


def test_rules_command_lists_every_code_whole():
    from dicomsniff.analysis.engine import Analyzer
    from dicomsniff.analysis.rules import catalogue

    Analyzer()  # every analyzer the engine attaches has registered its codes
    res = run("rules")
    assert res.returncode == 0
    words = set(res.stdout.split())
    codes = [c.code for c in catalogue()]
    assert codes and all(c in words for c in codes)
    md = run("rules", "--markdown").stdout
    assert md.startswith("| code | severity |") and md.count("\n") >= len(codes) + 2
    assert "STUDY-NOT-COMMITTED" in md  # the study journey's codes load with an Analyzer
    one = run("rules", "DELAYED").stdout
    assert "PERF-DELAYED-ACK" in one and "ASSOC-REJECTED" not in one


def test_slow_over_option():
    cap = str(CAPTURES / "findings" / "all-slow.pcap")
    assert not [r for r in records(cap, "--slow-factor", "2", "--slow-min", "0.5")
                if r["type"] == "finding" and r["code"] == "DIMSE-SLOW-RESPONSE"]
    assert [r for r in records(cap, "--slow-over", "1")
            if r["type"] == "finding" and r["code"] == "DIMSE-SLOW-RESPONSE"]


def test_live_localtime():
    cap = str(CAPTURES / "echo.pcap")
    utc = run("live", "-r", cap, env={"TZ": "Asia/Kolkata"}).stdout.splitlines()[0]
    local = run("live", "-r", cap, "--localtime", env={"TZ": "Asia/Kolkata"}
                ).stdout.splitlines()[0]
    assert utc.startswith("07:50:03.207") and local.startswith("13:20:03.207")
