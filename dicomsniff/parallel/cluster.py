"""Shards on a Dask distributed cluster (``--dask ADDRESS``, ``--dask local``).

No home-made scheduler, queue or RPC: Dask ships the work to its workers, each reading the
capture files from storage every worker sees under the same paths. Each worker analyses its
shard as a ``-j`` worker does (:func:`run_log`, :mod:`.local`): the log of what its engine
found is replayed (:func:`.local.replay`), in capture order, into an engine whose rules,
links, journey and subscribers run as in one process, so the records are one process's,
DICOMweb and all. Where it is replayed:

* :func:`logs_on_dask` (``--dask`` with the report, ``--json``, ``--csv`` or ``--db``): the
  logs are gathered and replayed on the client, into the command's own engine.
* ``--dask`` with ``--parquet`` alone (:mod:`.parts`): on one worker, and each shard then
  writes its own associations to its Parquet part.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["connect", "logs_on_dask", "run_log", "wait_for"]


@contextmanager
def connect(address: str, workers: int = 2) -> Iterator[Any]:
    """A Dask client of the cluster at ``address``, or of a LocalCluster of ``workers``
    processes (``local``). Dask's own log lines (connections closing as a LocalCluster stops)
    are kept off the terminal: errors reach the user as exceptions, one line each."""
    import logging

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.CRITICAL)
    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.CRITICAL)
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_log(specs: Sequence[str], index: int, count: int, config: dict[str, Any],
            names: Sequence[str] = ()) -> Any:
    """Shard ``index`` of ``count`` analysed on a Dask worker as the ``-j`` workers analyse
    theirs (:func:`.local.run_worker`): the log of what its engine found, for
    :func:`.local.replay`. Shard 0 also brings the frame references (naming the files as
    the client named them, ``names``, when given: ``specs`` are their absolute paths) and
    the files' problems."""
    from ..sources.merge import DEFAULT_DEDUP_WINDOW, open_capture
    from .local import run_worker

    capture = open_capture(list(specs),
                           dedup_window=config.get("dedup_window", DEFAULT_DEDUP_WINDOW),
                           time_shift=config.get("time_shift", ()))
    log = run_worker(capture, index, count, config)
    log.filt = None  # the frame source: not for the wire
    if index == 0:
        fmap = capture.frame_map()
        back = {os.path.abspath(n): n for n in names}
        fmap.paths = {i: back.get(p, p) for i, p in fmap.paths.items()}
        log.extra["frame_map"] = fmap
        log.extra["problems"] = list(capture.problems)
    return log


def logs_on_dask(address: str, specs: Sequence[str], config: dict[str, Any], *,
                 shards: int | None = None, workers: int = 2,
                 progress: Callable[[int, int], None] | None = None) -> list[Any]:
    """Every shard's log (:func:`run_log`) from the Dask cluster at ``address`` (``local``: a
    LocalCluster of ``workers`` processes), in shard order. ``progress(done, shards)`` is
    called as shards finish."""
    paths = [s if s == "-" else os.path.abspath(s) for s in specs]  # same paths on workers
    with connect(address, workers) as client:
        n = shards or max(1, sum(client.nthreads().values()))
        futures = client.map(run_log, [paths] * n, range(n), [n] * n, [config] * n,
                             [list(specs)] * n, pure=False)
        wait_for(futures, progress)
        return client.gather(futures)


def wait_for(futures: Sequence[Any], progress: Callable[[int, int], None] | None) -> None:
    """Call ``progress(done, total)`` as the futures finish (nothing without a callback)."""
    if progress is None:
        return
    from distributed import as_completed

    progress(0, len(futures))
    for done, _f in enumerate(as_completed(futures), 1):
        progress(done, len(futures))
