"""Time ``dicomsniff conformance`` against ``dicomsniff analyze`` on the same capture.

Building the conformance is the analysis plus a fold of each finished association into
counters, so it must cost about what ``analyze`` costs (the issue allows 10 %). Both run as
fresh processes, alternating (so a noisy neighbour hits both alike), writing JSON Lines to
/dev/null; the medians, their ratio and each one's peak RSS are printed::

    python3 -m bench.conformance captures/store-small-pdu.pcap bench/cache/big.pcap --pairs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def _run(argv: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err[-500:]}")
    return elapsed, usage.ru_maxrss


def measure(capture: str, pairs: int) -> dict[str, float]:
    cmds = {"analyze": [sys.executable, "-m", "dicomsniff", "analyze"],
            "conformance": [sys.executable, "-m", "dicomsniff", "conformance"]}
    runs: dict[str, list[tuple[float, int]]] = {"analyze": [], "conformance": []}
    for _ in range(pairs):
        for name, cmd in cmds.items():
            runs[name].append(_run([*cmd, capture, "--json", "-o", os.devnull,
                                    "--no-progress"]))
    a = statistics.median(t for t, _ in runs["analyze"])
    c = statistics.median(t for t, _ in runs["conformance"])
    return {"analyze_s": a, "conformance_s": c, "ratio": c / a,
            "analyze_rss_mb": max(r for _, r in runs["analyze"]) / 1024,
            "conformance_rss_mb": max(r for _, r in runs["conformance"]) / 1024}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("captures", nargs="+")
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"{'capture':40} {'MB':>8} {'analyze':>9} {'conformance':>12} {'ratio':>6} "
          f"{'RSS MB a/c':>12}")
    for cap in args.captures:
        r = measure(cap, args.pairs)
        print(f"{os.path.basename(cap):40} {os.path.getsize(cap) / 1e6:8.1f} "
              f"{r['analyze_s']:8.3f}s {r['conformance_s']:11.3f}s {r['ratio']:6.3f} "
              f"{r['analyze_rss_mb']:5.0f}/{r['conformance_rss_mb']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
