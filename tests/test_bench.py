"""The benchmark (bench/) works: tiny mode end to end, and its parts on synthetic input.

No test asserts a time: timings depend on the machine.  The tiny mode uses committed sample
captures (nothing is recorded) and runs in a few seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import corpus, floor  # noqa: E402
from bench.run import check_output, targets  # noqa: E402
from bench.timing import Run, Spawner, pair_ratio, summarise  # noqa: E402

SAMPLES = ROOT / "captures"
MANIFEST = {e["file"]: e for e in json.loads((SAMPLES / "manifest.json").read_text())["captures"]}


def test_tiny_mode_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "tiny.json"
    res = subprocess.run([sys.executable, "-m", "bench", "--tiny", "--pairs", "2", "--out",
                          str(out), "--cache", str(tmp_path / "cache"), "--tshark-timeout", "20"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "dicomsniff" in res.stdout  # the rich table
    doc = json.loads(out.read_text())
    assert doc["mode"] == "tiny" and doc["settings"]["pairs"] == 2
    assert set(doc["captures"]) == {"bulk", "chatty"}
    assert "bulk runs: " in doc["host"]["build"]  # which path was timed (compiled or not)
    assert f"timed: {doc['host']['build']}" in res.stdout
    with_tshark = shutil.which("tshark") is not None
    for name, cap in doc["captures"].items():
        assert cap["check"]["ok"], (name, cap["check"])
        assert cap["frames"] == MANIFEST[Path(cap["file"]).name]["frames"]
        for tool in ("dicomsniff", "floor") + (("tshark",) if with_tshark else ()):
            s = cap["tools"][tool]
            assert len(s["runs"]) == 2 and s["failed"] == 0, (name, tool, s)
            assert s["median_s"] > 0 and s["peak_rss_mb"] > 0 and s["mb_per_s"] > 0
            assert {r["pair"] for r in s["runs"]} == {0, 1}
        if with_tshark:
            assert cap["ratio_vs_tshark"]["median"] > 0
            assert len(cap["ratio_vs_tshark"]["pairs"]) == 2
        assert cap["times_floor"] > 0
    assert doc["targets"] == []  # tiny captures say nothing about the targets
    assert doc["startup_s"]["dicomsniff"] > 0 and doc["startup_s"]["floor"] > 0
    md = subprocess.run([sys.executable, "-m", "bench", "--markdown", str(out)], cwd=ROOT,
                        capture_output=True, text=True, timeout=60, check=True).stdout
    assert md.count("| dicomsniff |") == 2 and md.count("| floor |") == 2


def test_tiny_tls_decrypts_with_the_same_key_log_in_both_tools(tmp_path: Path) -> None:
    """The TLS capture is timed with its key log: dicomsniff --tls-keylog, tshark
    tls.keylog_file plus the ssl_keys entry that binds the plaintext to DICOM."""
    out = tmp_path / "tiny.json"
    res = subprocess.run([sys.executable, "-m", "bench", "--tiny", "--only", "tls", "--pairs",
                          "1", "--out", str(out), "--cache", str(tmp_path / "cache"),
                          "--tshark-timeout", "20"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    cap = json.loads(out.read_text())["captures"]["tls"]
    assert cap["check"]["ok"] and cap["check"]["dicomsniff"]["operations"] == {
        "C-ECHO": 6, "C-STORE": 6}
    keys = str(SAMPLES / "tls" / "tls-suites.keys")
    assert cap["commands"]["dicomsniff"][-3:-1] == ["--tls-keylog", keys]
    if shutil.which("tshark"):
        assert f"tls.keylog_file:{keys}" in cap["commands"]["tshark"]


def test_floor_walk_counts_every_record() -> None:
    for name in ("echo.pcap", "store-many-associations.pcap", "find-pending.pcap"):
        packets, tcp, payload = floor.walk(str(SAMPLES / name))
        assert packets == MANIFEST[name]["frames"]
        assert 0 < tcp <= packets and payload > 0


def test_floor_rejects_a_non_pcap(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"not a capture at all, not even close")
    with pytest.raises(SystemExit):
        floor.walk(str(bad))


def test_spawner_measures_rss_wall_and_exit_code() -> None:
    with Spawner() as sp:
        small = sp.run("x", [sys.executable, "-S", "-c", "pass"])
        big = sp.run("x", [sys.executable, "-S", "-c", "b = bytearray(80 << 20); b[::4096] = "
                           "b'x' * len(b[::4096])"])
        fail = sp.run("x", [sys.executable, "-S", "-c", "raise SystemExit(3)"])
    assert small.rc == 0 and not small.timed_out and small.wall > 0
    assert big.maxrss_kb - small.maxrss_kb > 70 * 1024  # the child's own peak, not ours
    assert small.maxrss_kb < 40 * 1024  # not inflated by the test process's size
    assert fail.rc == 3


def test_spawner_kills_at_the_timeout(tmp_path: Path) -> None:
    with Spawner() as sp:
        r = sp.run("x", ["sleep", "30"], timeout=0.3, stderr=tmp_path / "err")
    assert r.timed_out and r.rc == -9  # SIGKILL
    assert 0.3 <= r.wall < 5


def test_spawner_reports_a_missing_program() -> None:
    with Spawner() as sp, pytest.raises(RuntimeError, match="cannot run"):
        sp.run("x", ["/nonexistent/program"])


def _run(tool: str, wall: float, pair: int, timed_out: bool = False, rss: int = 1024) -> Run:
    return Run(tool, wall, rss, -9 if timed_out else 0, timed_out, wall, 0.0, pair)


def test_ratio_is_a_median_over_pairs_and_a_lower_bound_after_a_timeout() -> None:
    ours = [_run("dicomsniff", w, i) for i, w in enumerate((1.0, 2.0, 1.0))]
    r = pair_ratio([_run("tshark", w, i) for i, w in enumerate((4.0, 4.0, 10.0))], ours)
    assert r == {"median": 4.0, "lower_bound": False, "pairs": [4.0, 2.0, 10.0],
                 "median_cpu": 4.0}
    r = pair_ratio([_run("tshark", 120.0, 0, timed_out=True)], ours)
    assert r["median"] == 120.0 and r["lower_bound"]
    assert pair_ratio([], ours)["median"] is None


def test_summary_reports_throughput_at_the_median() -> None:
    s = summarise([_run("x", w, i, rss=2048 * (i + 1)) for i, w in enumerate((2.0, 1.0, 4.0))],
                  size=100_000_000, frames=50_000)
    assert s["median_s"] == 2.0 and s["mb_per_s"] == 50.0 and s["packets_per_s"] == 25_000
    assert s["cpu_median_s"] == 2.0
    assert s["peak_rss_mb"] == 6.0 and not s["lower_bound"] and s["failed"] == 0


def test_check_compares_dicomsniff_records_with_the_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    recs = [{"type": "association"}, {"type": "transaction", "command": "C-FIND", "pending": 3},
            {"type": "transaction", "command": "C-ECHO"}, {"type": "summary", "associations": 1}]
    out.write_text("".join(json.dumps(r) + "\n" for r in recs))
    truth = {"associations": 1, "operations": {"C-FIND": 1, "C-ECHO": 1},
             "pending_responses": 3}
    assert check_output(out, truth)["ok"]
    bad = check_output(out, dict(truth, pending_responses=4))
    assert not bad["ok"] and set(bad["mismatches"]) == {"pending_responses"}


def test_targets_follow_the_issue() -> None:
    def cap(ratio: float, rss: float, mbs: float, lower: bool = False) -> dict:
        return {"ratio_vs_tshark": {"median": ratio, "lower_bound": lower},
                "tools": {"dicomsniff": {"peak_rss_mb": rss, "mb_per_s": mbs}}}

    got = {t["target"]: t["ok"] for t in targets({
        "bulk": cap(7.5, 40.0, 400.0), "chatty": cap(1.5, 30.0, 30.0),
        "query": cap(2.4, 30.0, 30.0), "big": cap(100.0, 44.0, 390.0, lower=True)})}
    assert got == {"bulk: faster than tshark": True, "chatty: faster than tshark": False,
                   "query: faster than tshark": False,
                   "big: dicomsniff peak RSS": True, "bulk vs big: peak RSS flat": True,
                   "linear cost: big MB/s / bulk MB/s": True}


def test_linearity_is_judged_without_startup() -> None:
    def cap(size: int, median: float) -> dict:
        return {"size_bytes": size, "ratio_vs_tshark": {"median": None},
                "tools": {"dicomsniff": {"peak_rss_mb": 20.0, "mb_per_s": size / 1e6 / median,
                                         "median_s": median}}}

    # 0.1 s of startup: 1000 MB in 5.1 s looks faster per MB than 100 MB in 0.6 s, but the
    # marginal cost is 5 ms/MB against 5 ms/MB: linear. With 10 ms/MB for big it is not.
    caps = {"bulk": cap(100_000_000, 0.6), "big": cap(1_000_000_000, 5.1)}
    lin = [t for t in targets(caps, {"dicomsniff": 0.1}) if t["target"].startswith("linear")]
    assert lin[0]["ok"] and "without the 0.100 s startup: 200 / 200 = 1.00" in lin[0]["value"]
    caps["big"] = cap(1_000_000_000, 10.1)
    lin = [t for t in targets(caps, {"dicomsniff": 0.1}) if t["target"].startswith("linear")]
    assert not lin[0]["ok"]


def test_netns_prefix_from_the_environment() -> None:
    code = "from bench import corpus; print(corpus.PREFIX)"
    env = dict(os.environ, DICOMSNIFF_BENCH_NETNS="spcx")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()
    assert out == "spcx"
    env.pop("DICOMSNIFF_BENCH_NETNS")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()
    assert out == "dsbench"


def test_query_heavy_capture_is_the_speed_issues_load() -> None:
    from bench.corpus import FULL, scenario_params

    scenario, overrides = FULL["query"]
    p = scenario_params(scenario, overrides)
    # 300 associations x (C-ECHO + 3 C-FINDs x (40 pending + final)), requests and responses
    assert p["associations"] * (2 + p["finds"] * (2 + p["studies"])) == 38_400


def test_cache_is_reused_only_while_it_matches(tmp_path: Path) -> None:
    pcap, meta = tmp_path / "bulk.pcap", tmp_path / "bulk.json"
    shutil.copy(SAMPLES / "echo.pcap", pcap)
    entry = dict(MANIFEST["echo.pcap"], params={"images": 240})
    meta.write_text(json.dumps(entry))
    assert corpus._cached(pcap, meta, {"images": 240}) is not None
    assert corpus._cached(pcap, meta, {"images": 50}) is None  # other parameters
    with open(pcap, "ab") as f:
        f.write(b"\0")
    assert corpus._cached(pcap, meta, {"images": 240}) is None  # file changed


def test_tiny_captures_are_committed_samples() -> None:
    for name in corpus.TINY:
        c = corpus.tiny(name)
        assert c.path.is_file() and c.frames > 0 and c.ports and not c.recorded
        assert os.path.getsize(c.path) == c.size


def test_profiling_helper_runs_on_a_sample() -> None:
    res = subprocess.run([sys.executable, "-m", "bench.profiling", str(SAMPLES / "echo.pcap"),
                          "--top", "3"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "under cProfile" in res.stdout and "function calls" in res.stdout
