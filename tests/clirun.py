"""``python -m dicomsniff ARGS`` in a subprocess, with its exit status, output, wall time and
peak RSS: what the hostile-input tests judge (the child's own peak, from os.wait4).

The command runs as the grandchild of a small wrapper (:data:`_WRAPPER`), which reports its
rusage. Linux counts the memory a process had before exec in its ``ru_maxrss``, and a child
forked from the test process starts with the test process's pages: measured directly, every
run "peaked" at least at the size of pytest itself (308 MB late in a full run, over the bound
for a 21-byte file). Forked from the small wrapper instead, the figure is the command's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

WALL_BOUND = 20.0  # seconds per run

# argv: RSS_FILE PROGRAM ARGS...: fork, exec PROGRAM, write its ru_maxrss (KiB) to RSS_FILE,
# exit as it did (a signal is raised again, so the caller sees the same negative returncode).
_WRAPPER = """\
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
os._exit(os.WEXITSTATUS(status))
"""


@dataclass
class Run:
    code: int | None  # None: killed at the wall bound
    stdout: str
    stderr: str
    seconds: float
    rss_mb: float


def run_cli(*args: str, timeout: float = WALL_BOUND) -> Run:
    """``python -m dicomsniff ARGS`` with its exit status, output, wall time and peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        t0 = time.monotonic()
        p = subprocess.Popen([sys.executable, "-c", _WRAPPER, rss.name, sys.executable, "-m",
                              "dicomsniff", *args], stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            try:
                os.killpg(p.pid, 9)  # the wrapper and the command
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, _usage = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        peak_kib = int(rss.read() or 0)  # the command's own peak (0 if killed first)
        seconds = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return Run(None if killed.is_set() else p.returncode,
                   out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"),
                   seconds, peak_kib / 1024)
