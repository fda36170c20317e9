"""``python -m dicomsniff ARGS`` in a subprocess, with its exit status, output, wall time and
peak RSS: what the hostile-input tests judge (the child's own peak, from os.wait4)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

WALL_BOUND = 20.0  # seconds per run


@dataclass
class Run:
    code: int | None  # None: killed at the wall bound
    stdout: str
    stderr: str
    seconds: float
    rss_mb: float


def run_cli(*args: str, timeout: float = WALL_BOUND) -> Run:
    """``python -m dicomsniff ARGS`` with its exit status, output, wall time and peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen([sys.executable, "-m", "dicomsniff", *args], stdout=out,
                             stderr=err, stdin=subprocess.DEVNULL)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            p.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(p.pid, 0)  # this child's own rusage
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return Run(None if killed.is_set() else p.returncode,
                   out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                   seconds, usage.ru_maxrss / 1024)
