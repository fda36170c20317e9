"""Child-process timer: wall clock and peak RSS of one command, run from a small process.

Why a separate process: on Linux a child's ``ru_maxrss`` starts at its parent's RSS (fork and
vfork copy the parent's high-water mark, and exec keeps it), so a child timed from the benchmark
process itself, which holds rich and the results, would report at least the benchmark's own
size.  This module runs as ``python -S -I spawn.py``: a fresh, ~5 MB interpreter that reads one
JSON request per line on stdin, starts the command with ``posix_spawn`` (stdin from /dev/null,
stdout and stderr to files, new session), waits for it with a pidfd (no polling), kills its
process group at the timeout, reaps it with ``os.wait4`` and answers one JSON line::

    {"argv": [...], "stdout": "/dev/null", "stderr": "/tmp/x", "timeout": 120, "env": {...}}
    -> {"wall": 1.23, "rc": 0, "signal": null, "timed_out": false, "maxrss_kb": 51234,
        "utime": 1.1, "stime": 0.1}

Standard library only, no imports beyond the needed ones: its size is the RSS floor of every
measurement (reported as ``rss_baseline_kb`` by the benchmark).
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time


def _wait(pid: int, timeout: float | None) -> tuple[float, bool]:
    """Wait for ``pid`` to exit without reaping it; kill its group at ``timeout``.

    Returns (perf_counter at exit or kill, timed_out).
    """
    ms = -1 if timeout is None else max(0, int(timeout * 1000))
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = -1
    if fd >= 0:
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            ready = p.poll(ms)
        finally:
            os.close(fd)
        if ready:
            return time.perf_counter(), False
    else:  # no pidfd (kernel < 5.3): 1 ms polling without reaping
        deadline = None if timeout is None else time.perf_counter() + timeout
        while True:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None:
                return time.perf_counter(), False
            if deadline is not None and time.perf_counter() >= deadline:
                break
            time.sleep(0.001)
    t = time.perf_counter()
    try:
        os.killpg(pid, signal.SIGKILL)  # still unreaped: the group id cannot have been reused
    except ProcessLookupError:
        pass
    return t, True


def run(req: dict) -> dict:
    """Run one request (see the module docstring) and return its measurement."""
    argv = [str(a) for a in req["argv"]]
    env = req.get("env") or dict(os.environ)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, req.get("stdout") or "/dev/null",
         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, req.get("stderr") or "/dev/null",
         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions, setsid=True)
    t1, timed_out = _wait(pid, req.get("timeout"))
    _, status, ru = os.wait4(pid, 0)
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    rc = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -(sig or 0)
    return {"wall": t1 - t0, "rc": rc, "signal": sig, "timed_out": timed_out,
            "maxrss_kb": ru.ru_maxrss, "utime": ru.ru_utime, "stime": ru.ru_stime}


def main() -> int:
    """Serve requests from stdin until it closes."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            out = run(json.loads(line))
        except Exception as exc:  # report to the parent, keep serving
            out = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
