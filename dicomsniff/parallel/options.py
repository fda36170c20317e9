"""``-j N``, ``--dask ADDRESS`` and ``--workers N`` for ``analyze``, and how many processes a
run takes: decided from a look at the start of the capture (:func:`sample_shape`, loading
the reader and :mod:`.shard` then) and the cores free now. A one-process run never loads
:mod:`.local` (the workers, pickle, the merge)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

__all__ = ["MAX_MEAN_RECORD", "MIN_BYTES", "MIN_RECORDS", "SAMPLE_BYTES", "Shape",
           "add_cluster_options", "add_jobs_option", "decide", "default_jobs", "jobs_for",
           "sample_shape"]

# Where -j workers pay, measured on this project's benchmark captures (docs/performance.md,
# "Which the default takes"): CPU seconds on the longest path (the slowest worker, the
# parent's merge and its own work) against one process, on prefixes of the query-heavy
# capture, with the one-core small-message walker: about even at 10,900 records (2 MB: 0.033
# s against 0.035 s), 13% less at 22,900 (4 MB: 0.052 against 0.060 s), 19% less at 45,800
# (8 MB: 0.092 against 0.113 s), a quarter less on the whole 18.6 MB (0.187 against 0.248 s).
# Bulk C-STORE traffic (1,277 bytes a record) gains nothing at any size (135 MB: 0.095
# against 0.095 s): one process walks its runs in C and each worker reads every byte.
MIN_BYTES = 1 << 20  # below this, one process without a look (the break-even is above)
MIN_RECORDS = 20_000  # records (estimated from the sample) below which one process
MAX_MEAN_RECORD = 512  # captured bytes a record above which one process: bulk traffic
SAMPLE_BYTES = 1 << 18  # how much of the start of the capture the default looks at


class Shape(NamedTuple):
    """What the start of a capture looks like (:func:`sample_shape`)."""

    records: int  # records read
    captured: int  # their captured bytes
    connections: int  # TCP connections among them (both directions one)

    def estimate(self, size: int) -> int:
        """Records in ``size`` bytes of file shaped like the sample (16 bytes of record
        header each, as in pcap; a compressed file's size is its compressed size, so its
        records are underestimated: fewer workers, never more)."""
        return size * self.records // max(1, self.captured + 16 * self.records)

    def why_one(self, size: int) -> str | None:
        """Why one process analyses a capture of ``size`` bytes shaped like this, or None
        when workers pay (the rule of :func:`jobs_for`)."""
        if self.connections < 2:
            return "one TCP connection at its start"
        if self.captured > MAX_MEAN_RECORD * self.records:
            return f"records of {self.captured // max(1, self.records)} bytes on average: bulk"
        if self.estimate(size) < MIN_RECORDS:
            return f"about {self.estimate(size)} records"
        return None


def sample_shape(path: str) -> Shape | None:
    """The first :data:`SAMPLE_BYTES` of captured bytes of the capture file ``path`` (pcap,
    pcapng, compressed or not): records, bytes, connections; None if it cannot be read. Reads
    about 1,500 records of query-heavy traffic (1 ms), 260 of bulk (0.4 ms)."""
    from ..sources.merge import open_capture
    from .shard import ConnectionFilter

    filt = ConnectionFilter(0, 1)
    records = captured = 0
    try:
        capture = open_capture([path])
        try:
            for pkt in capture:
                filt.wanted(pkt)
                records += 1
                captured += len(pkt[2])
                if captured >= SAMPLE_BYTES:
                    break
        finally:
            capture.close()
    except Exception:  # noqa: BLE001 - damage is the analysis's to report; one process
        return None
    return Shape(records, captured, filt.connections) if records else None


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
             "records are those of -j 1, in the same order. Default: from a look at the "
             "first 256 KiB of the capture, the cores not busy now ($DICOMSNIFF_JOBS to fix "
             "it) where workers pay: many small records (mean under 512 bytes, about 20,000 "
             "or more: query-heavy traffic) on two or more connections; one process for "
             "bulk C-STORE traffic, captures under 1 MiB or with one connection, standard "
             "input, and when a process's held records pass 256 MiB "
             "(docs/performance.md, 'Which the default takes')")


def default_jobs() -> int:
    """The cores this process may run on that are not busy now: the cores of its affinity less
    the other tasks running on the machine at this moment (``/proc/loadavg``'s running count,
    this process not counted, the fewest of three looks over a millisecond; where there is
    none, the 1-minute load average), at least one.
    On a loaded machine workers only take turns on the same cores and the merge is extra
    work (docs/performance.md). The moment, not the minute's average: a benchmark or a
    script that runs one analysis after another keeps the average near one on a machine
    whose second core is idle. ``$DICOMSNIFF_JOBS`` (a whole number) says it instead."""
    env = os.environ.get("DICOMSNIFF_JOBS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, int(cores - _busy() + 0.5)))


def _busy(loadavg: str = "/proc/loadavg", looks: int = 3) -> float:
    """Other tasks running now (see :func:`default_jobs`): the fewest of ``looks`` reads half
    a millisecond apart, so a short-lived process (a shell's ``ps``, a compiler's pass)
    seen at one instant does not count as a busy core; a busy one runs through them all."""
    import time

    try:
        fewest = None
        for i in range(looks):
            if i:
                time.sleep(0.0005)
            with open(loadavg, "rb") as f:
                n = int(f.read().split()[3].split(b"/")[0]) - 1
            fewest = n if fewest is None else min(fewest, n)
        return max(0, fewest or 0)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0]
    except OSError:
        return 0.0


def jobs_for(requested: int | None, specs: Sequence[Any], size: int,
             sample: Callable[[], Shape | None] | None = None) -> int:
    """How many processes analyse the capture given as ``specs`` (``size`` bytes):
    ``requested`` (``-j``); else the cores not busy (:func:`default_jobs`) when workers pay,
    one process otherwise. One for standard input or any stream (it cannot be read twice)
    and where processes cannot be forked, whatever was asked.

    Workers pay on many small records of several connections (query-heavy traffic: each
    record is Python's work, shared by connection); not below :data:`MIN_RECORDS`, not on
    bulk C-STORE traffic (mean record above :data:`MAX_MEAN_RECORD`: one process walks it,
    and every worker would read every byte), not on one connection. What the capture is
    comes from ``sample()`` (:func:`sample_shape` of its first file: its first
    :data:`SAMPLE_BYTES`), asked only for captures of :data:`MIN_BYTES` or more; no sample,
    one process. The figures are in docs/performance.md ("Which the default takes")."""
    return decide(requested, specs, size, sample)[0]


def decide(requested: int | None, specs: Sequence[Any], size: int,
           sample: Callable[[], Shape | None] | None = None) -> tuple[int, str]:
    """:func:`jobs_for` and why, in words."""
    if not hasattr(os, "fork"):
        return 1, "no fork here"
    if not specs or any(
            not isinstance(s, (str, os.PathLike)) or os.fspath(s) == "-" for s in specs):
        return 1, "a stream is read once"
    if requested is not None:
        return requested, "-j"
    if size < MIN_BYTES:
        return 1, f"under {MIN_BYTES >> 20} MiB"
    shape = sample() if sample is not None else None
    if shape is None:
        return 1, "its start could not be sampled"
    why = shape.why_one(size)
    if why is not None:
        return 1, why
    n = default_jobs()
    return n, f"about {shape.estimate(size)} records of {shape.captured // shape.records} " \
              f"bytes on {shape.connections}+ connections; {n} core(s) free"
