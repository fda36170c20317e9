"""The benchmark: dicomsniff against tshark and a bare pcap walk, on captures of real peers.

``python -m bench [--only bulk,chatty,big] [--pairs 5] [--tshark-timeout 120] [--tiny]``

For each capture: one untimed check run of ``dicomsniff analyze --json`` (its records are
compared with the recorder's ground truth; it also warms the page cache), then ``--pairs``
pairs of ``dicomsniff analyze --json F`` and ``tshark -r F -d tcp.port==P,dicom -Y dicom``,
alternating which goes first, each followed by the floor (:mod:`bench.floor`).  Every command
runs as a child with stdout to /dev/null, timed by :mod:`bench.spawn` (wall clock from spawn to
exit, startup included; peak RSS from ``wait4``).  A tshark run that reaches the timeout is
killed, counted as a lower bound ("> N x") and not repeated on that capture.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from . import corpus
from .timing import Run, Spawner, pair_ratio, summarise

ROOT = corpus.ROOT
RESULTS_DIR = ROOT / "bench" / "results"
FLOOR_PY = Path(__file__).with_name("floor.py")
TOOLS = ("dicomsniff", "all-cores", "tshark", "floor")
# dicomsniff: one process (-j 1); all-cores: the default (no -j: workers where they pay, on
# the cores free at that moment; dicomsniff/parallel/options.py), the processes it took noted
# per run (``all_cores_processes``)
ALL_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
    os.cpu_count() or 1)
RATIO_OF = {"dicomsniff": "ratio_vs_tshark", "all-cores": "ratio_all_cores_vs_tshark"}

# Targets from the issues (ratios are tshark time / dicomsniff time; one process): bulk and
# query-heavy from the speed issue (query's goal is 4x), chatty from the first benchmark.
TARGET_RATIO = {"bulk": 7.0, "query": 2.5, "chatty": 2.0}
TARGET_ALL_CORES = {"bulk": 9.0, "query": 3.5}  # with the default -j, on the 2-core machine
TARGET_BIG_RSS_MB = 150.0
TARGET_RSS_SPREAD = 0.20  # bulk's peak RSS within 20% of big's: memory does not grow with size
TARGET_LINEARITY = 0.80  # big's MB/s at least 80% of bulk's: cost linear in capture size


def dicomsniff_argv() -> list[str]:
    """The installed console script of this interpreter (not a pyenv shim), else ``-m``."""
    script = Path(sys.executable).with_name("dicomsniff")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "dicomsniff"]


def python_env(cache_dir: Path) -> dict[str, str]:
    """Environment of the Python children: bytecode cached (as after ``pip install``), in
    ``bench/cache/pycache`` so nothing is written into the source tree."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache_dir / "pycache")
    return env


def tool_versions(tshark: str | None) -> dict[str, str]:
    from dicomsniff import __version__

    out = {"dicomsniff": __version__, "python": platform.python_version(),
           "kernel": platform.release(), "cpus": str(os.cpu_count()),
           "jobs": f"default ({ALL_CORES} cores)"}  # the all-cores run: no -j
    if tshark:
        res = subprocess.run([tshark, "--version"], capture_output=True, text=True, check=False)
        out["tshark"] = (res.stdout.splitlines() or ["unknown"])[0]
    try:  # which code was timed: commit, and whether the analyzer's files differ from it
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "dicomsniff",
                                "dissectors"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()
        out["git"] = head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        out["git"] = "unknown"
    return out


# -- correctness check ---------------------------------------------------------------------


def check_output(path: Path, truth: dict[str, Any]) -> dict[str, Any]:
    """Compare dicomsniff's JSON Lines with the recorder's totals."""
    ops: Counter[str] = Counter()
    pending = 0
    summary: dict[str, Any] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            kind = rec.get("type")
            if kind == "transaction":
                ops[rec.get("command")] += 1
                pending += rec.get("pending") or 0
            elif kind == "summary":
                summary = rec
    got = {"associations": summary.get("associations"), "operations": dict(ops),
           "pending_responses": pending}
    want = {k: truth.get(k) for k in got if k in truth}
    diffs = {k: {"dicomsniff": got[k], "recorder": v} for k, v in want.items() if got[k] != v}
    return {"ok": not diffs and bool(summary), "dicomsniff": got, "mismatches": diffs}


# -- one capture ---------------------------------------------------------------------------


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_capture(sp: Spawner, cap: corpus.Capture, args: argparse.Namespace,
                  tshark: str | None, env: dict[str, str]) -> dict[str, Any]:
    """Check run, then the timed pairs; returns the capture's results."""
    path = str(cap.path)
    tmpdir = tempfile.TemporaryDirectory(prefix="dsbench-")
    argvs = {
        "dicomsniff": [*args.dicomsniff, "analyze", "--json", "-j", "1", path],
        "all-cores": [*args.dicomsniff, "analyze", "--json", path],  # the default -j
        "tshark": ([tshark, "-r", path,
                    *[a for p in cap.ports for a in ("-d", f"tcp.port=={p},{cap.dissector}")],
                    "-Y", cap.dissector] if tshark else None),
        "floor": [sys.executable, str(FLOOR_PY), path],
    }
    if cap.keylog is not None:  # TLS: both tools decrypt with the same key log
        for tool in ("dicomsniff", "all-cores"):
            argvs[tool][-1:-1] = ["--tls-keylog", str(cap.keylog)]
        if tshark:
            argvs["tshark"] = [tshark, "-r", path, *tshark_tls_options(cap, Path(tmpdir.name)),
                               "-Y", "dicom"]
    with tmpdir as tmp:
        out = Path(tmp) / "check.jsonl"
        err = Path(tmp) / "stderr"
        first = sp.run("dicomsniff", argvs["dicomsniff"], stdout=out, stderr=err, env=env)
        if first.rc != 0:
            raise RuntimeError(f"dicomsniff failed on {path} (exit {first.rc}): "
                               f"{err.read_text()[-2000:]}")
        check = check_output(out, cap.truth)
        # the all-core run must write the very same records
        both = Path(tmp) / "all-cores.jsonl"
        sp.run("all-cores", argvs["all-cores"], stdout=both, stderr=err, env=env)
        check["all_cores_same"] = both.read_bytes() == out.read_bytes()
        check["ok"] = check["ok"] and check["all_cores_same"]
        rss_file = Path(tmp) / "rss"
        jobs_env = {**env, "DICOMSNIFF_JOBS_RSS": str(rss_file)}
        sp.run("floor", argvs["floor"], env=env)  # warm: its bytecode, the page cache
        runs: dict[str, list[Run]] = {t: [] for t in TOOLS}
        processes: list[int] = []  # what the default took, per all-cores run
        tshark_dead = argvs["tshark"] is None
        load0 = os.getloadavg()
        for pair in range(args.pairs):
            order = (["dicomsniff", "all-cores", "tshark"] if pair % 2 == 0
                     else ["tshark", "all-cores", "dicomsniff"])
            for tool in [*order, "floor"]:
                if tool == "tshark" and tshark_dead:
                    continue
                timeout = args.tshark_timeout if tool == "tshark" else args.timeout
                rss_file.unlink(missing_ok=True)
                r = sp.run(tool, argvs[tool], stderr=err, timeout=timeout,
                           env=None if tool == "tshark" else
                           jobs_env if tool == "all-cores" else env)
                r.pair = pair
                if tool == "all-cores":  # summed over the processes (the file: -j 2 or more)
                    rss = rss_file.read_text().split() if rss_file.exists() else []
                    if rss:
                        r.maxrss_kb = sum(int(k) for k in rss)
                    processes.append(max(1, len(rss)))
                runs[tool].append(r)
                note = " TIMED OUT" if r.timed_out else ("" if r.rc == 0 else f" exit {r.rc}")
                if tool == "all-cores":
                    note += f" ({processes[-1]} process{'es' if processes[-1] > 1 else ''})"
                _say(f"  {cap.name} pair {pair + 1}/{args.pairs} {tool:10} {r.wall:8.3f} s "
                     f"{r.maxrss_kb / 1024:7.1f} MB{note}")
                if tool == "tshark" and r.timed_out:
                    tshark_dead = True  # one lower bound is enough; do not burn more time
                elif r.rc != 0 and tool != "tshark":
                    raise RuntimeError(f"{tool} failed on {path} (exit {r.rc}): "
                                       f"{err.read_text()[-2000:]}")
        load1 = os.getloadavg()
    tools = {t: summarise(runs[t], cap.size, cap.frames) for t in TOOLS}
    ds, fl = tools["dicomsniff"].get("median_s"), tools["floor"].get("median_s")
    return {
        "file": str(cap.path.relative_to(ROOT)) if cap.path.is_relative_to(ROOT) else path,
        "size_bytes": cap.size, "mb": float(f"{cap.mb:.4g}"), "frames": cap.frames,
        "ports": list(cap.ports), "recorded_now": cap.recorded,
        "commands": {t: a for t, a in argvs.items()},
        "check": check,
        "tools": tools,
        "ratio_vs_tshark": pair_ratio(runs["tshark"], runs["dicomsniff"]),
        "ratio_all_cores_vs_tshark": pair_ratio(runs["tshark"], runs["all-cores"]),
        "all_cores_processes": processes,
        "times_floor": round(ds / fl, 2) if ds and fl else None,
        "load": {"before": [round(x, 2) for x in load0], "after": [round(x, 2) for x in load1]},
    }


def tls_cost(results: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """What decryption costs: each tool's median on the TLS capture (``tls``, decrypting with
    the key log) over its median on the same peers' clear twin (``tls-clear``), per MB; and
    the ratio against tshark on each. None unless both were run."""
    tls, clear = results.get("tls"), results.get("tls-clear")
    if not tls or not clear:
        return None
    out: dict[str, Any] = {"ratio_vs_tshark": {"tls": tls.get("ratio_vs_tshark"),
                                               "clear": clear.get("ratio_vs_tshark")}}
    for tool in ("dicomsniff", "tshark"):
        a = tls["tools"].get(tool, {}).get("median_s")
        b = clear["tools"].get(tool, {}).get("median_s")
        if a and b:
            out[tool] = {"tls_s": a, "clear_s": b,
                         "tls_over_clear": round((a / tls["mb"]) / (b / clear["mb"]), 2)}
    return out


def tshark_tls_options(cap: corpus.Capture, tmp: Path) -> list[str]:
    """tshark 4.0 decrypts with ``tls.keylog_file`` but hands the plaintext to its DICOM
    dissector only through an ``ssl_keys`` entry (server, port, protocol), whose RSA key file
    must exist although it is not used: a throwaway key is made for it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from captures.netns import Testbed

    key = tmp / "unused-rsa.key"
    key.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    server = Testbed.scp_ip4  # the recorder's acceptor address
    out = ["-o", f"tls.keylog_file:{cap.keylog}"]
    for p in cap.ports:
        out += ["-o", f'uat:ssl_keys:"{server}","{p}","dicom","{key}",""']
    return out


def timed_build(args: argparse.Namespace, env: dict[str, str]) -> str:
    """What the timed command says it is (``--version``: the bulk-run path, compiled walker
    or pure Python, dicomsniff/analysis/accel.py)."""
    try:
        res = subprocess.run([*args.dicomsniff, "--version"], capture_output=True, text=True,
                             env=env, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return res.stdout.strip() or "unknown (no --version output)"


def measure_startup(sp: Spawner, args: argparse.Namespace, tshark: str | None,
                    env: dict[str, str], runs: int = 5) -> dict[str, float]:
    """Median wall time of each tool on a 23-packet capture: what a run costs before any
    real work (interpreter start and imports; tshark's dissector registration)."""
    tiny = str(corpus.SAMPLES_DIR / "echo.pcap")
    argvs = {"dicomsniff": [*args.dicomsniff, "analyze", "--json", tiny],
             "floor": [sys.executable, str(FLOOR_PY), tiny]}
    if tshark:
        argvs["tshark"] = [tshark, "-r", tiny, "-d", "tcp.port==104,dicom", "-Y", "dicom"]
    out = {}
    for tool, argv in argvs.items():
        py = None if tool == "tshark" else env
        sp.run(tool, argv, env=py)
        out[tool] = round(statistics.median(sp.run(tool, argv, env=py).wall
                                            for _ in range(runs)), 4)
    _say("startup (median wall on echo.pcap): " + ", ".join(f"{t} {v:.3f} s"
                                                            for t, v in out.items()))
    return out


# -- targets -------------------------------------------------------------------------------


def targets(caps: dict[str, dict[str, Any]],
            startup: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The issue's targets, for the captures that were run.

    Linearity is judged on the marginal cost (``startup``, the time on a tiny capture,
    taken off), else a big capture would look faster per MB merely by amortising startup.
    """
    out = []

    def add(name: str, want: str, value: Any, ok: bool | None) -> None:
        out.append({"target": name, "want": want, "value": value, "ok": ok})

    for key, label, wanted in (("ratio_vs_tshark", "", TARGET_RATIO),
                               ("ratio_all_cores_vs_tshark", " on all cores", TARGET_ALL_CORES)):
        for name, want in wanted.items():
            r = caps.get(name, {}).get(key, {})
            if r.get("median") is not None:
                add(f"{name}: faster than tshark{label}", f">= {want:g} x",
                    f"{'> ' if r['lower_bound'] else ''}{r['median']:g} x", r["median"] >= want)
    rss = {n: c["tools"]["dicomsniff"]["peak_rss_mb"] for n, c in caps.items()}
    if "big" in rss:
        add("big: dicomsniff peak RSS", f"<= {TARGET_BIG_RSS_MB:g} MB", f"{rss['big']:g} MB",
            rss["big"] <= TARGET_BIG_RSS_MB)
        if "bulk" in rss:
            spread = abs(rss["bulk"] - rss["big"]) / rss["big"]
            add("bulk vs big: peak RSS flat", f"within {TARGET_RSS_SPREAD:.0%}",
                f"{rss['bulk']:g} vs {rss['big']:g} MB ({spread:.0%})",
                spread <= TARGET_RSS_SPREAD)
    mbs = {n: c["tools"]["dicomsniff"]["mb_per_s"] for n, c in caps.items()}
    if "big" in mbs and "bulk" in mbs and mbs["bulk"]:
        lin = mbs["big"] / mbs["bulk"]
        text = f"{mbs['big']:g} / {mbs['bulk']:g} = {lin:.2f}"
        start = (startup or {}).get("dicomsniff")
        if start is not None:
            net = {n: caps[n]["size_bytes"] / 1e6 / max(
                caps[n]["tools"]["dicomsniff"]["median_s"] - start, 1e-3) for n in ("big", "bulk")}
            lin = net["big"] / net["bulk"]
            text += (f"; without the {start:.3f} s startup: {net['big']:.0f} / "
                     f"{net['bulk']:.0f} = {lin:.2f}")
        add("linear cost: big MB/s / bulk MB/s", f">= {TARGET_LINEARITY:g}", text,
            lin >= TARGET_LINEARITY)
    return out


# -- report --------------------------------------------------------------------------------


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def render(doc: dict[str, Any]) -> None:
    """The rich tables: one row per capture and tool, then the targets."""
    from rich.console import Console
    from rich.table import Table

    con = Console(width=None if sys.stdout.isatty() else 140)
    t = Table(title=f"dicomsniff benchmark ({doc['mode']}, {doc['settings']['pairs']} pairs, "
                    f"medians; startup included; git {doc['host'].get('git', '?')})",
              caption="vs tshark: median over pairs of tshark wall / dicomsniff wall (in "
                      "brackets: the same with CPU time); x floor: dicomsniff / bare pcap walk")
    for col in ("capture", "tool", "median s", "min-max s", "cpu s", "MB/s", "kpkt/s",
                "peak RSS MB", "vs tshark (cpu)", "x floor"):
        t.add_column(col, justify="left" if col in ("capture", "tool") else "right")
    for name, c in doc["captures"].items():
        label = f"{name}\n{c['mb']:g} MB, {c['frames']} pkts"
        if not c["check"]["ok"]:
            label += "\n[red]check failed[/]"
        for i, tool in enumerate(TOOLS):
            s = c["tools"][tool]
            if not s.get("runs"):
                continue
            lb = "> " if s["lower_bound"] else ""
            vs = ""
            if tool in RATIO_OF:
                r = c.get(RATIO_OF[tool]) or {"median": None}
                if r["median"] is not None:
                    vs = f"{'> ' if r['lower_bound'] else ''}{r['median']:.2f} x faster"
                    if r.get("median_cpu") is not None:
                        vs += f" ({r['median_cpu']:.2f})"
            elif tool == "tshark" and s["lower_bound"]:
                vs = "[yellow]timed out[/]"
            floor = _fmt(c["times_floor"], ".1f") if tool == "dicomsniff" else ""
            pps = s["packets_per_s"]
            t.add_row(label if i == 0 else "", tool, f"{lb}{s['median_s']:.3f}",
                      f"{s['min_s']:.3f}-{s['max_s']:.3f}", f"{lb}{s['cpu_median_s']:.3f}",
                      ("< " if lb else "") + _fmt(s["mb_per_s"], ".1f"),
                      ("< " if lb else "") + _fmt(pps / 1000 if pps else None, ".0f"),
                      f"{lb}{s['peak_rss_mb']:.1f}", vs, floor)
        t.add_section()
    con.print(t)
    if doc["targets"]:
        tt = Table(title="targets")
        for col in ("target", "want", "measured", ""):
            tt.add_column(col)
        for x in doc["targets"]:
            mark = "[green]ok[/]" if x["ok"] else "[red]MISSED[/]"
            tt.add_row(x["target"], x["want"], str(x["value"]), mark)
        con.print(tt)
    if doc.get("startup_s"):
        con.print("startup (median wall on the 23-packet echo.pcap): " + ", ".join(
            f"{t} {v:.3f} s" for t, v in doc["startup_s"].items()))
    if doc["host"].get("build"):
        con.print(f"timed: {doc['host']['build']}")
    con.print(f"RSS floor of the measurement (an empty child): {doc['rss_baseline_kb']} KB; "
              f"load average before/after: {doc['load']['before']} / {doc['load']['after']}")


def markdown(doc: dict[str, Any]) -> str:
    """The figures as Markdown tables (for bench/README.md)."""
    h = doc["host"]
    lines = [f"{doc['created']}, git {h.get('git', '?')}, {h.get('tshark', 'no tshark')}, "
             f"Python {h['python']}, {h['cpus']} CPUs, {doc['settings']['pairs']} pairs, "
             f"load average before/after {doc['load']['before'][0]} / "
             f"{doc['load']['after'][0]}. Timed: {h.get('build', '?')}. "
             "Startup (median wall on the 23-packet echo.pcap): "
             + ", ".join(f"{t} {v:.3f} s" for t, v in (doc.get("startup_s") or {}).items())
             + ".", "",
             "| capture | tool | median s (min-max) | CPU s | MB/s | packets/s | peak RSS MB "
             "| vs tshark (CPU) | x floor |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, c in doc["captures"].items():
        for i, tool in enumerate(TOOLS):
            s = c["tools"][tool]
            if not s.get("runs"):
                continue
            lb = "> " if s["lower_bound"] else ""
            vs = floor = ""
            if tool in RATIO_OF:
                r = c.get(RATIO_OF[tool]) or {"median": None}
                if r["median"] is not None:
                    vs = f"**{'> ' if r['lower_bound'] else ''}{r['median']:.2f} x**"
                    if r.get("median_cpu") is not None:
                        vs += f" ({r['median_cpu']:.2f} x)"
                if tool == "dicomsniff":
                    floor = _fmt(c["times_floor"], ".1f")
            elif tool == "tshark" and s["lower_bound"]:
                vs = "timed out"
            label = f"{name} ({c['mb']:g} MB, {c['frames']} packets)" if i == 0 else ""
            lines.append(f"| {label} | {tool} | {lb}{s['median_s']:.3f} ({s['min_s']:.3f}-"
                         f"{s['max_s']:.3f}) | {s['cpu_median_s']:.3f} | "
                         f"{'< ' if lb else ''}{s['mb_per_s']:g} | "
                         f"{'< ' if lb else ''}{s['packets_per_s']} | {lb}{s['peak_rss_mb']} | "
                         f"{vs} | {floor} |")
    if doc["targets"]:
        lines += ["", "| target | want | measured | |", "|---|---|---|---|"]
        lines += [f"| {t['target']} | {t['want']} | {t['value']} | "
                  f"{'ok' if t['ok'] else 'MISSED'} |" for t in doc["targets"]]
    return "\n".join(lines)


# -- command line --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See bench/README.md.")
    ap.add_argument("--only", default="", metavar="NAMES",
                    help="comma-separated captures (default: bulk,query,big,dicomweb; tiny: "
                         "bulk,chatty)")
    ap.add_argument("--pairs", type=int, default=None,
                    help="timed pairs per capture (default 5; tiny 1)")
    ap.add_argument("--tshark-timeout", type=float, default=None, metavar="S",
                    help="kill tshark after S seconds and report a lower bound (default 120)")
    ap.add_argument("--timeout", type=float, default=600, metavar="S",
                    help="limit for dicomsniff and the floor (default 600)")
    ap.add_argument("--tiny", action="store_true",
                    help="committed sample captures, nothing recorded (seconds; for tests)")
    ap.add_argument("--cache", type=Path, default=corpus.CACHE_DIR,
                    help="where recorded captures are kept (default bench/cache)")
    ap.add_argument("--rerecord", action="store_true", help="record the captures again")
    ap.add_argument("--out", type=Path, default=None,
                    help="results JSON (default bench/results/latest.json; tiny: tiny.json)")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                    help="wait up to S seconds for the 1-minute load average to drop below "
                         "--quiet-load before each capture (shared machines)")
    ap.add_argument("--quiet-load", type=float, default=0.5, metavar="L")
    ap.add_argument("--dicomsniff", default=None, metavar="CMD",
                    help="command that runs dicomsniff (shell words; default: the console "
                         "script of this Python), e.g. 'python /tmp/proto/ds.py' to time a copy")
    ap.add_argument("--no-accel", action="store_true",
                    help="time dicomsniff without its compiled walker of bulk runs "
                         "(DICOMSNIFF_NO_ACCEL=1): the pure-Python path")
    ap.add_argument("--no-table", action="store_true", help="print the JSON, not the tables")
    ap.add_argument("--markdown", type=Path, metavar="RESULTS",
                    help="print a results file as Markdown tables and exit (no run)")
    args = ap.parse_args(argv)
    args.dicomsniff = shlex.split(args.dicomsniff) if args.dicomsniff else dicomsniff_argv()
    args.pairs = args.pairs or (1 if args.tiny else 5)
    if args.pairs < 1:
        ap.error("--pairs must be at least 1")
    if args.tshark_timeout is None:
        args.tshark_timeout = 60.0 if args.tiny else 120.0
    default = "bulk,chatty" if args.tiny else "bulk,query,big,dicomweb"
    args.names = [n.strip() for n in (args.only or default).split(",") if n.strip()]
    known = corpus.TINY if args.tiny else corpus.FULL
    bad = [n for n in args.names if n not in known]
    if bad:
        ap.error(f"unknown capture(s) {bad}; known: {', '.join(known)}")
    if args.out is None:
        args.out = RESULTS_DIR / ("tiny.json" if args.tiny else "latest.json")
    return args


def wait_quiet(limit: float, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while os.getloadavg()[0] > limit and time.monotonic() < deadline:
        time.sleep(5)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    tshark = shutil.which("tshark")
    if tshark is None:
        _say("tshark not found: timing dicomsniff and the floor only (apt-get install tshark)")
    caps: dict[str, corpus.Capture] = {}
    for name in args.names:  # record everything first: recording loads the machine
        caps[name] = corpus.tiny(name) if args.tiny else corpus.ensure(
            name, args.cache, rerecord=args.rerecord, say=_say)
    env = python_env(args.cache)
    if args.no_accel:
        env["DICOMSNIFF_NO_ACCEL"] = "1"
    build = timed_build(args, env)
    _say(f"timing {build}")
    load0 = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    with Spawner() as sp:
        baseline = sp.run("baseline", ["true"]).maxrss_kb
        if tshark:  # its libraries and profile files into the page cache
            sp.run("tshark", [tshark, "-r", str(corpus.SAMPLES_DIR / "echo.pcap")])
        startup = measure_startup(sp, args, tshark, env)
        for name, cap in caps.items():
            if args.wait_quiet:
                wait_quiet(args.quiet_load, args.wait_quiet)
            _say(f"{name}: {cap.path} ({cap.mb:.1f} MB, {cap.frames} packets)")
            results[name] = bench_capture(sp, cap, args, tshark, env)
    doc = {
        "version": 1,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "mode": "tiny" if args.tiny else "full",
        "settings": {"pairs": args.pairs, "tshark_timeout_s": args.tshark_timeout,
                     "python_children_env": {"PYTHONPYCACHEPREFIX": env["PYTHONPYCACHEPREFIX"],
                                             "PYTHONDONTWRITEBYTECODE": None}},
        "host": {**tool_versions(tshark), "build": build},
        "load": {"before": [round(x, 2) for x in load0],
                 "after": [round(x, 2) for x in os.getloadavg()]},
        "rss_baseline_kb": baseline,
        "captures": results,
        "startup_s": startup,
        "targets": [] if args.tiny else targets(results, startup),
        "tls_cost": tls_cost(results),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    if args.no_table:
        print(json.dumps(doc, indent=1))
    else:
        render(doc)
        _say(f"results: {args.out}")
    return 0 if all(c["check"]["ok"] for c in results.values()) else 1
