"""The command line as a user meets it: messages, exit codes, outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dicomsniff.cli import main

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
MOVE = CAPTURES / "move.pcap"


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dicomsniff", *args], input=stdin,
                          capture_output=True, timeout=120)


def test_help_teaches_with_examples():
    r = run_cli("analyze", "--help")
    assert r.returncode == 0
    out = r.stdout.decode()
    assert "examples:" in out and "--findings-only" in out and "exit status" in out


def test_missing_file_is_one_line_and_exit_2(tmp_path):
    r = run_cli("analyze", str(tmp_path / "nope.pcap"))
    assert r.returncode == 2
    err = r.stderr.decode()
    assert err.count("\n") == 1 and "no such file" in err and "Traceback" not in err


def test_not_a_capture_is_exit_2(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello\n")
    r = run_cli("analyze", str(p))
    assert r.returncode == 2 and "not a pcap" in r.stderr.decode()


def test_directory_and_usage_errors_exit_2(tmp_path):
    assert run_cli("analyze", str(tmp_path)).returncode == 2
    assert run_cli("analyze").returncode == 2
    assert run_cli("analyze", str(MOVE), "--port", "70000").returncode == 2
    assert run_cli().returncode == 2


def test_truncated_capture_reports_what_came_before_and_exits_3(tmp_path):
    data = MOVE.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) * 2 // 3])
    r = run_cli("analyze", str(cut), "--json")
    assert r.returncode == 3
    recs = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert any(x["type"] == "association" for x in recs)
    assert any(x["type"] == "finding" and x["code"] == "CAPTURE-DAMAGED" for x in recs)
    assert recs[-1]["type"] == "summary" and recs[-1]["capture_error"]
    assert "capture damaged" in r.stderr.decode() and "Traceback" not in r.stderr.decode()


def test_stdin_and_output_file(tmp_path):
    out = tmp_path / "o.jsonl"
    r = run_cli("analyze", "-", "--json", "-o", str(out), stdin=MOVE.read_bytes())
    assert r.returncode == 0
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert sum(x["type"] == "association" for x in recs) == 2


def test_fail_on(capsys):
    rejected = str(CAPTURES / "associate-reject.pcap")
    assert main(["analyze", rejected, "--fail-on", "error"]) == 1
    assert main(["analyze", str(CAPTURES / "echo.pcap"), "--fail-on", "error"]) == 0
    capsys.readouterr()


def test_findings_only_json_has_only_findings(capsys):
    assert main(["analyze", str(CAPTURES / "associate-reject.pcap"), "--json",
                 "--findings-only"]) == 0
    recs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {r["type"] for r in recs} == {"finding", "summary"}


@pytest.mark.parametrize("name", ["move.pcap", "associate-reject.pcap"])
def test_text_report_names_the_story(name, capsys):
    assert main(["analyze", str(CAPTURES / name)]) == 0
    out = capsys.readouterr().out
    if name == "move.pcap":
        assert "C-MOVE" in out and "C-STORE" in out and "MOVESCU" in out
        assert "Service response time" in out
    else:
        assert "REJECTED" in out and "called-AE-title-not-recognized" in out


def test_json_records_follow_the_contract(capsys):
    assert main(["analyze", str(MOVE), "--json"]) == 0
    recs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assoc = [r for r in recs if r["type"] == "association"]
    txn = [r for r in recs if r["type"] == "transaction"]
    for r in assoc:
        for k in ("id", "client", "server", "calling_ae", "called_ae", "start", "end",
                  "outcome", "source", "reason", "max_pdu", "contexts"):
            assert k in r
        for c in r["contexts"]:
            assert {"id", "abstract_syntax", "transfer_syntaxes", "result",
                    "transfer_syntax"} <= set(c)
    for r in txn:
        for k in ("association", "command", "message_id", "sop_class", "sop_instance",
                  "status", "status_category", "pending", "request_time", "response_time",
                  "dataset_bytes"):
            assert k in r
    move = [r for r in txn if r["command"] == "C-MOVE"][0]
    assert move["move_destination"] == "MOVESCU"
    assert set(move["suboperations"]) == {"remaining", "completed", "failed", "warning"}


def test_every_cli_module_is_a_registered_subcommand():
    """One registry: each module of dicomsniff/cli (but the shared ones) is in COMMANDS and
    registers the command its name says."""
    import dicomsniff.cli as cli_pkg

    here = Path(cli_pkg.__file__).parent
    modules = {p.stem for p in here.glob("*.py")} - {"__init__", "args"}
    assert modules == set(cli_pkg.COMMANDS)
    parser = cli_pkg.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert list(sub.choices) == [n.replace("_", "-") for n in cli_pkg.COMMANDS]


def test_a_subcommand_that_cannot_import_is_an_error_not_invalid_choice(monkeypatch, capsys):
    import dicomsniff.cli as cli_pkg

    monkeypatch.setattr(cli_pkg, "COMMANDS", (*cli_pkg.COMMANDS, "no_such_module"))
    assert main(["no-such-module", "x", "--y"]) == 2
    err = capsys.readouterr().err
    assert "'no-such-module' command cannot run here" in err and "invalid choice" not in err
    assert err.count("\n") == 1
    # the other commands still work, and --help lists the broken one as unavailable
    assert main(["analyze", str(MOVE), "--json", "-o", os.devnull]) == 0
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "unavailable" in capsys.readouterr().out
