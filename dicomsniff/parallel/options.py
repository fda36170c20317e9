"""``-j N``, ``--dask ADDRESS`` and ``--workers N`` for ``analyze``, and how many processes a
run takes (argparse and os only: a one-process run never loads :mod:`.local`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["MIN_BYTES", "add_cluster_options", "add_jobs_option", "default_jobs", "jobs_for"]

# Below this many bytes of capture, one process: forking, every worker reading the whole
# file and the merge cost more than the analysis they share (docs/performance.md).
MIN_BYTES = 8 << 20


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return v


def add_cluster_options(parser: Any) -> None:
    g = parser.add_argument_group("cluster (docs/many-captures.md)")
    g.add_argument("--dask", metavar="ADDRESS",
                   help="analyse shards of the connections on a Dask distributed cluster "
                        "(tcp://HOST:8786, its workers reading the same files under the same "
                        "paths), or 'local' for a LocalCluster on this machine")
    g.add_argument("--workers", type=_positive, default=2, metavar="N",
                   help="worker processes of --dask local (default 2)")


def add_jobs_option(parser: Any) -> None:
    parser.add_argument(
        "-j", "--jobs", type=_positive, default=None, metavar="N",
        help="analyse with N processes, each taking its share of the connections; the "
             "records are those of -j 1, in the same order. Default: the cores that are "
             "not busy (cores less the load average; $DICOMSNIFF_JOBS to fix it), for "
             "captures of 8 MB or more; one "
             "process for smaller ones, for standard input, for one pcap or pcapng file "
             "when the compiled walker of bulk runs is built (one process walking is "
             "faster than workers), and when a process's held "
             "records pass 256 MiB (docs/performance.md)")


def default_jobs() -> int:
    """The cores this process may run on that are not busy: the cores of its affinity less
    the 1-minute load average, rounded, at least one. On a machine already loaded, workers
    only take turns on the same cores, and the merge is extra work (docs/performance.md).
    ``$DICOMSNIFF_JOBS`` (a whole number) says it instead."""
    env = os.environ.get("DICOMSNIFF_JOBS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return max(1, min(cores, int(cores - load + 0.5)))


def jobs_for(requested: int | None, specs: Sequence[Any], size: int,
             walks: bool = False) -> int:
    """How many processes analyse the capture given as ``specs`` (``size`` bytes):
    ``requested`` (``-j``), else the cores not busy when the capture is at least
    :data:`MIN_BYTES` and one process would not walk it; one for standard input or any stream
    (it cannot be read twice) and where processes cannot be forked.

    ``walks``: the compiled walker of bulk runs is built and the capture is one pcap or pcapng
    file, compressed or not (``CaptureSet.walks``; several files are merged, not walked). One
    process then hands its bulk runs to the walker reading each record once, where each
    worker reads every record of the file and walks only runs of its own connections: it was
    measured faster on bulk traffic by a wide margin and no slower on query-heavy traffic
    (docs/performance.md, "Which the default takes"), so the default never takes workers
    there; ``-j N`` still does."""
    if not hasattr(os, "fork") or not specs or any(
            not isinstance(s, (str, os.PathLike)) or os.fspath(s) == "-" for s in specs):
        return 1
    if requested is not None:
        return requested
    if size < MIN_BYTES or walks:
        return 1
    return default_jobs()
