"""``--dask ADDRESS`` and ``--workers N`` for ``analyze`` (argparse only at start-up)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_cluster_options", "add_jobs_option"]


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
             "process for smaller ones, for standard input, and when a process's held "
             "records pass 256 MiB (docs/performance.md)")
