"""What ``dicomsniff analyze --json`` loads for a capture that needs little (docs/performance.md,
start-up): a run imports the subcommand it runs, and an analyzer's heavy parts only when the
capture holds their protocol. Checked by the modules loaded in a fresh interpreter, not by a
time (the benchmark measures time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ECHO = ROOT / "captures" / "echo.pcap"  # dcmtk echoscu -> storescp, clear DICOM
TLS = ROOT / "captures" / "tls" / "tls13-store.pcap"

JOURNEY = tuple(f"dicomsniff.analysis.journey.{m}" for m in (
    "core", "collect", "headers", "decode", "study", "checks", "web"))
# Loaded by none of the runs below on a clear DICOM capture: libraries for other commands or
# protocols, the TLS analyzer and what it brings, the -j machinery, the other subcommands.
NOT_FOR_CLEAR_DICOM = (
    "cryptography", "h11", "duckdb", "pyarrow", "textual", "dask", "rich", "pydicom",
    "openpyxl", "hmac", "hashlib", "datetime", "pickle",
    "dicomsniff.analysis.tls", "dissectors.tls.connection", "dissectors.tls.crypto",
    "dissectors.tls.handshake", "dicomsniff.parallel.local", "dicomsniff.store.writer",
    "dicomsniff.cli.show", "dicomsniff.cli.tui", "dicomsniff.cli.live", "dicomsniff.cli.diagram",
    "dicomsniff.cli.conformance", "dicomsniff.cli.diff", "dicomsniff.cli.studies",
    "dicomsniff.cli.export_objects", "dicomsniff.cli.rules",
    # the signal module's enums (the CLI uses _signal), the journey's Print and UPS trackers
    "signal", "dicomsniff.analysis.journey.printing", "dicomsniff.analysis.journey.ups",
    # the study journey itself (its stand-in wakes it for study traffic only), DICOMweb and
    # the HTTP parser (made at the first HTTP connection), the TLS registries, glob
    *JOURNEY, "dicomsniff.dicomweb", "dissectors.http.stream", "dissectors.http.message",
    "dissectors.tls.tables", "glob",
)


def _modules(*argv: str) -> tuple[int, set[str]]:
    """Run ``dicomsniff ARGV`` in a fresh interpreter; its exit status and sys.modules."""
    code = ("import json, os, sys\n"
            "from dicomsniff.cli import main\n"
            "try:\n"
            f"    rc = main({list(argv)!r})\n"
            "except SystemExit as e:\n"
            "    rc = e.code\n"
            "sys.stderr.write('\\nMODULES ' + json.dumps([rc, sorted(sys.modules)]) + '\\n')\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=env)
    line = [x for x in r.stderr.splitlines() if x.startswith("MODULES ")]
    assert line, r.stderr[-2000:]
    rc, mods = json.loads(line[-1][len("MODULES "):])
    return rc, set(mods)


def _loaded(mods: set[str], name: str) -> bool:
    return name in mods or any(m.startswith(name + ".") for m in mods)


def test_analyze_json_on_clear_dicom_loads_only_what_it_needs():
    rc, mods = _modules("analyze", "--json", "-o", os.devnull, str(ECHO))
    assert rc == 0
    assert "dicomsniff.analysis.engine" in mods and "dicomsniff.cli.analyze" in mods
    loaded = [n for n in NOT_FOR_CLEAR_DICOM if _loaded(mods, n)]
    assert not loaded, f"analyze --json {ECHO.name} imported {loaded}"


def test_the_report_on_clear_dicom_loads_no_tls_either():
    rc, mods = _modules("analyze", "--no-progress", "-o", os.devnull, str(ECHO))
    assert rc == 0
    assert not [n for n in ("dicomsniff.analysis.tls", "dissectors.tls.connection", "hmac",
                            "dicomsniff.parallel.local") if _loaded(mods, n)]


def test_a_tls_capture_loads_the_tls_analyzer_when_it_meets_a_client_hello():
    """The other way round: the lazy import happens, and the TLS record is written."""
    rc, mods = _modules("analyze", "--json", "-o", os.devnull, str(TLS))
    assert rc in (0, 1)
    assert "dicomsniff.analysis.tls" in mods and "dissectors.tls.connection" in mods
    r = subprocess.run([sys.executable, "-m", "dicomsniff", "analyze", "--json", str(TLS)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert any(json.loads(x).get("type") == "tls" for x in r.stdout.splitlines())


def test_help_still_lists_every_command_and_a_typo_is_one_line():
    from dicomsniff.cli import COMMANDS

    r = subprocess.run([sys.executable, "-m", "dicomsniff", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0
    for name in COMMANDS:
        assert name.replace("_", "-") in r.stdout
    assert "analyse a pcap/pcapng capture file" in r.stdout  # the commands' help lines too
    r = subprocess.run([sys.executable, "-m", "dicomsniff", "analyse", str(ECHO)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 2 and "invalid choice: 'analyse'" in r.stderr
    assert "Traceback" not in r.stderr


def test_the_parser_built_for_one_command_reads_its_arguments_as_the_full_one():
    """build_parser(only=COMMAND), what a run uses, parses, helps and refuses exactly as the
    parser of every command does."""
    import contextlib
    import io

    from dicomsniff.cli import COMMANDS, build_parser

    for name in COMMANDS:
        command = name.replace("_", "-")
        for argv in ([command], [command, "--bogus"], [command, "--help"],
                     [command, "a.pcap", "b.pcap", "--json", "--port", "abc"],
                     [command, str(ECHO), "--port", "4100"]):
            seen = []
            for only in (None, command):
                out, err = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    try:
                        ns = build_parser(only).parse_args(argv)
                        got: object = sorted((k, repr(v)) for k, v in vars(ns).items()
                                             if k != "handler")
                    except SystemExit as exc:
                        got = ("exit", exc.code)
                seen.append((got, out.getvalue(), err.getvalue()))
            assert seen[0] == seen[1], argv


def test_study_traffic_and_http_load_the_journey_and_dicomweb_when_they_come():
    """The other way round for the journey and DICOMweb: a store wakes the journey (its
    records are the eager journey's: tests/test_lazy_journey.py), a STOW-RS both."""
    rc, mods = _modules("analyze", "--json", "-o", os.devnull,
                        str(ROOT / "captures" / "store-small-pdu.pcap"))
    assert rc in (0, 1)
    assert all(_loaded(mods, m) for m in JOURNEY)
    assert not _loaded(mods, "dicomsniff.dicomweb")
    rc, mods = _modules("analyze", "--json", "-o", os.devnull,
                        str(ROOT / "captures" / "dicomweb" / "stow.pcap"))
    assert rc in (0, 1)
    assert _loaded(mods, "dicomsniff.dicomweb.session") and _loaded(mods, "dissectors.http.stream")
    assert _loaded(mods, "dicomsniff.analysis.journey.core")


def test_the_collector_is_paused_for_start_up_only(monkeypatch):
    """main() pauses garbage collection while the command loads (docs/performance.md): it is
    back on before the first byte is read, and after the command, as the caller had it."""
    import gc

    from dicomsniff.analysis import run as run_mod
    from dicomsniff.cli import main

    seen = []
    real = run_mod.analyze_source

    def spy(*args, **kw):
        seen.append(gc.isenabled())
        return real(*args, **kw)

    monkeypatch.setattr(run_mod, "analyze_source", spy)
    assert gc.isenabled()
    assert main(["analyze", "--json", "-o", os.devnull, str(ECHO)]) == 0
    assert seen == [True] and gc.isenabled()
    gc.disable()  # a caller that had it off keeps it off
    try:
        assert main(["analyze", "--json", "-o", os.devnull, str(ECHO)]) == 0
        assert seen == [True, False] and not gc.isenabled()
    finally:
        gc.enable()
    with __import__("pytest").raises(SystemExit):
        main(["analyze", "--bogus"])
    assert gc.isenabled()
