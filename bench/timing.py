"""Time commands through :mod:`bench.spawn` (wall clock, peak RSS) and summarise the runs."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SPAWN_PY = Path(__file__).with_name("spawn.py")


@dataclass
class Run:
    """One timed execution of a command."""

    tool: str
    wall: float  # seconds, spawn to exit (or to the kill at the timeout)
    maxrss_kb: int  # the child's peak RSS (ru_maxrss from wait4)
    rc: int
    timed_out: bool
    utime: float
    stime: float
    pair: int = -1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["wall"] = round(self.wall, 4)
        d["utime"] = round(self.utime, 3)
        d["stime"] = round(self.stime, 3)
        return d


class Spawner:
    """A long-lived ``python -S -I spawn.py`` child that runs and measures commands."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-S", "-I", str(SPAWN_PY)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)

    def run(self, tool: str, argv: list[str], *, stdout: str | os.PathLike[str] | None = None,
            stderr: str | os.PathLike[str] | None = None, timeout: float | None = None,
            env: dict[str, str] | None = None) -> Run:
        """Run ``argv`` to completion (or ``timeout``) and return its measurement."""
        req = {"argv": argv, "stdout": os.fspath(stdout) if stdout else None,
               "stderr": os.fspath(stderr) if stderr else None, "timeout": timeout, "env": env}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the timing helper (bench/spawn.py) died")
        out = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"cannot run {argv[0]}: {out['error']}")
        return Run(tool, out["wall"], out["maxrss_kb"], out["rc"], out["timed_out"],
                   out["utime"], out["stime"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)

    def __enter__(self) -> Spawner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sig(x: float, digits: int = 4) -> float:
    """``x`` rounded to ``digits`` significant digits (MB/s of tiny and huge captures alike)."""
    return float(f"{x:.{digits}g}")


def summarise(runs: list[Run], size: int, frames: int) -> dict[str, Any]:
    """Median wall, throughput at the median, worst peak RSS; timed-out runs flagged."""
    if not runs:
        return {"runs": []}
    med = statistics.median(r.wall for r in runs)
    cpu = statistics.median(r.utime + r.stime for r in runs)
    timed_out = sum(r.timed_out for r in runs)
    return {
        "runs": [r.to_dict() for r in runs],
        "median_s": round(med, 4),
        # user + system CPU: less disturbed than wall time by other work on a shared machine
        "cpu_median_s": round(cpu, 4),
        "min_s": round(min(r.wall for r in runs), 4),
        "max_s": round(max(r.wall for r in runs), 4),
        "mb_per_s": _sig(size / 1e6 / med) if med > 0 else None,
        "cpu_mb_per_s": _sig(size / 1e6 / cpu) if cpu > 0 else None,
        "packets_per_s": round(frames / med) if med > 0 else None,
        "peak_rss_mb": round(max(r.maxrss_kb for r in runs) / 1024, 1),
        "timed_out": timed_out,
        "lower_bound": timed_out > 0,  # time and RSS only say "at least"
        "failed": sum(1 for r in runs if r.rc != 0 and not r.timed_out),
    }


def pair_ratio(tshark: list[Run], ours: list[Run]) -> dict[str, Any]:
    """Median over pairs of tshark time / dicomsniff time; a timed-out tshark makes it a
    lower bound ("> N x")."""
    by_pair = {r.pair: r for r in ours}
    both = [(t, by_pair[t.pair]) for t in tshark
            if t.pair in by_pair and by_pair[t.pair].wall > 0]
    if not both:
        return {"median": None, "lower_bound": False, "pairs": [], "median_cpu": None}
    ratios = [t.wall / o.wall for t, o in both]
    cpu = [(t.utime + t.stime) / (o.utime + o.stime) for t, o in both if o.utime + o.stime > 0]
    return {"median": round(statistics.median(ratios), 2),
            "lower_bound": any(t.timed_out for t in tshark),
            "pairs": [round(x, 2) for x in ratios],
            "median_cpu": round(statistics.median(cpu), 2) if cpu else None}
