"""Shards on a Dask distributed cluster (``--dask ADDRESS``, ``--dask local``).

No home-made scheduler, queue or RPC: Dask ships the work to its workers, each reading the
capture files from storage every worker sees under the same paths. Two ways:

* :func:`logs_on_dask` (``--dask`` with the report, ``--json``, ``--csv`` or ``--db``): each
  worker analyses its shard as a ``-j`` worker does (:func:`run_log`, :mod:`.local`) and sends
  back the log of what its engine found; the client replays the logs (:func:`.local.replay`)
  into its own engine and subscribers, in capture order, so the records are one process's,
  DICOMweb and all.
* :func:`run_shard` and :func:`merge_shards` (``--dask`` with ``--parquet`` alone,
  :mod:`.parts`): each shard keeps its associations on its worker; the merge renumbers them as
  one process numbers them and computes what ties associations of different pairs of hosts
  together (C-MOVE links, the rules across associations, the study journey) from every
  shard's records (:mod:`.crosspair`), and each shard writes its own Parquet part.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dissectors._plain import Record

from ..model import Association, Finding

__all__ = ["ShardResult", "connect", "logs_on_dask", "merge_shards", "run_log", "run_shard"]

# capture-level findings every shard raises alike (about the files): kept from shard 0 only
_PER_CAPTURE = ("CAPTURE-",)


class ShardResult(Record):
    _fields = ("index", "associations", "capture_findings", "frames", "bytes", "first_ts",
               "last_ts", "ignored", "evicted", "findings_dropped", "problems", "frame_map",
               "format", "reader_error", "events", "tls_sessions")

    def __init__(self, **kw: Any) -> None:
        for k in self._fields:
            setattr(self, k, kw.get(k))


def run_shard(specs: Sequence[str], index: int, count: int, config: dict[str, Any]) -> ShardResult:
    """Analyse shard ``index`` of ``count`` of the capture ``specs`` (runs on a worker).

    ``config``: ``ports``, ``limits`` (a Limits), ``rules`` (a RuleConfig), ``dedup_window``,
    ``tls_keylog`` (a KeyLog, or None): what the client's options gave, so every worker builds
    the client's Analyzer."""
    from ..analysis.engine import Analyzer, Limits
    from ..analysis.rules import RuleConfig
    from ..analysis.run import analyze_source
    from ..sources.merge import DEFAULT_DEDUP_WINDOW, open_capture
    from .crosspair import Recorder
    from .shard import ShardFilter

    window = config.get("dedup_window", DEFAULT_DEDUP_WINDOW)
    capture = open_capture(list(specs), dedup_window=window,
                           time_shift=config.get("time_shift", ()))
    rules = (config.get("rules") or RuleConfig())._replace(scope="local")
    an = Analyzer(ports=config.get("ports", ()), limits=config.get("limits") or Limits(),
                  rules=rules, keep=True, tls_keylog=config.get("tls_keylog"))
    rec = Recorder(an)  # what spans host pairs is computed after the merge
    res = analyze_source(capture, an,
                         select=lambda frames: rec.frames(ShardFilter(frames, index, count)))
    st = an.stats
    return ShardResult(
        index=index, associations=an.associations,
        capture_findings=[f for f in an.findings if f.association is None],
        frames=st.frames, bytes=st.bytes, first_ts=st.first_ts, last_ts=st.last_ts,
        ignored=st.ignored_connections, evicted=st.evicted, findings_dropped=st.findings_dropped,
        problems=list(capture.problems), frame_map=capture.frame_map() if index == 0 else None,
        format=res.format, reader_error=res.reader_error, events=rec.result(),
        tls_sessions=an.tls_sessions)


class Merged(Record):
    _fields = ("associations", "capture_findings", "frames", "bytes", "first_ts", "last_ts",
               "ignored", "evicted", "findings_dropped", "problems", "frame_map",
               "reader_error", "tls_sessions", "studies")

    def __init__(self, **kw: Any) -> None:
        for k in self._fields:
            setattr(self, k, kw.get(k))


def merge_shards(results: Sequence[ShardResult], config: dict[str, Any] | None = None
                 ) -> Merged:
    """One capture's associations from its shards, numbered as one process numbers them, then
    what spans host pairs computed from every shard's records (:func:`.crosspair.replay`;
    ``config``: the one :func:`run_shard` was given)."""
    from .crosspair import replay

    config = config or {}
    results = sorted(results, key=lambda r: r.index)
    # each shard's associations and transactions by its own ids, before they are renumbered
    local = [({a.id: a for a in r.associations},
              {t.id: t for a in r.associations for t in a.transactions}, r.events)
             for r in results]
    assocs: list[Association] = [a for r in results for a in r.associations]
    assocs.sort(key=lambda a: (a.first_frame or 0, a.id))
    new_id = {id(a): n for n, a in enumerate(assocs, 1)}
    txns = [(t.request_frame or 0, t.id, id(a), t) for a in assocs for t in a.transactions]
    txns.sort(key=lambda x: (x[0], new_id[x[2]], x[1]))
    new_txn = {id(t): n for n, (_f, _i, _a, t) in enumerate(txns, 1)}
    # TLS connections (analysis/tls.py), numbered in the order they started, as one process
    sessions = [s for r in results for s in (r.tls_sessions or ())]
    sessions.sort(key=lambda s: (s.first_frame or 0, s.id))
    new_tls = {id(s): n for n, s in enumerate(sessions, 1)}
    for r in results:
        assoc_of = {a.id: new_id[id(a)] for a in r.associations}
        tls_of = {s.id: new_tls[id(s)] for s in (r.tls_sessions or ())}
        for s in r.tls_sessions or ():
            if s.association is not None:
                s.association = assoc_of.get(s.association)
        for a in r.associations:
            if getattr(a, "tls", None):
                a.tls["id"] = tls_of.get(a.tls.get("id"))
        for f in r.capture_findings:
            if getattr(f, "tls", None) is not None:
                f.tls = tls_of.get(f.tls)
    for s in sessions:
        s.id = new_tls[id(s)]
    for a in assocs:
        a.id = new_id[id(a)]
        for t in a.transactions:
            t.id = new_txn[id(t)]
            t.association = a.id
        for f in a.findings:
            f.association = a.id
    capture: list[Finding] = []
    for r in results:
        capture.extend(f for f in r.capture_findings
                       if r.index == 0 or not f.code.startswith(_PER_CAPTURE))
    studies: list[dict[str, Any]] = []
    if all(r.events is not None for r in results):
        capture.extend(f for f in replay(local, ports=config.get("ports", ()),
                                         rules=config.get("rules"), studies=studies)
                       if f.association is None)
    first = results[0]
    return Merged(
        associations=assocs, capture_findings=capture, frames=first.frames, bytes=first.bytes,
        first_ts=first.first_ts, last_ts=first.last_ts,
        ignored=sum(r.ignored for r in results), evicted=sum(r.evicted for r in results),
        findings_dropped=sum(r.findings_dropped for r in results), problems=first.problems,
        frame_map=first.frame_map, reader_error=first.reader_error, tls_sessions=sessions,
        studies=studies)


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


def run_log(specs: Sequence[str], index: int, count: int, config: dict[str, Any]) -> Any:
    """Shard ``index`` of ``count`` analysed on a Dask worker as the ``-j`` workers analyse
    theirs (:func:`.local.run_worker`): the log of what its engine found, for
    :func:`.local.replay` on the client. Shard 0 also brings the frame references and the
    files' problems."""
    from ..sources.merge import DEFAULT_DEDUP_WINDOW, open_capture
    from .local import run_worker

    capture = open_capture(list(specs),
                           dedup_window=config.get("dedup_window", DEFAULT_DEDUP_WINDOW),
                           time_shift=config.get("time_shift", ()))
    log = run_worker(capture, index, count, config)
    log.filt = None  # the frame source: not for the wire
    if index == 0:
        log.extra["frame_map"] = capture.frame_map()
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
                             pure=False)
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
