"""``--dask ... --parquet DIR``: each shard writes its own part of the Parquet dataset.

Without this the client gathers every shard's associations and writes them; with it, the
client's memory stays flat whatever the capture holds. The shards are analysed exactly as
``-j`` and ``--dask`` with ``--json`` analyse theirs (:mod:`.local`): one replay, so the
records are one process's, DICOMweb beside DICOM included. Three rounds of Dask tasks, no
home-made transport:

1. :func:`.cluster.run_log` on every shard; the logs stay on their workers (futures).
2. :func:`plan` on one worker: every log replayed (:func:`.local.replay`) into an engine
   equipped as the command equips its own for a store (summary, DICOMweb, studies,
   conformance as observed, TLS connections, capture-level findings); the DICOMweb
   connections are written there, as the replay ends them (their own part); for each shard a
   small patch: the new ids and C-MOVE links of its associations and transactions, and each
   association's findings (the rules and the journey add some). That worker holds every
   shard's associations for the time of the replay (what the client would hold otherwise).
3. :func:`write_part` on each shard's worker (Dask runs a task where its biggest input is):
   its log's associations, patched, written to ``DIR/<table>/day=.../<run>-sN-*.parquet`` by
   the same :class:`~dicomsniff.store.writer.StoreWriter` one process uses.

The client writes the capture-level findings, the studies, conformance, the TLS connections
and the run's row under the same run id, so the dataset holds exactly what one process
writes (``tests/test_parallel.py``).
"""

from __future__ import annotations

import copy
import operator
import os
import pickle
from collections.abc import Callable, Sequence
from typing import Any

from dissectors._plain import Record

__all__ = ["PartsResult", "parquet_on_dask", "plan", "write_part"]


class PartsResult(Record):
    _fields = ("capture_findings", "frames", "bytes", "first_ts", "last_ts", "ignored",
               "evicted", "findings_dropped", "problems", "frame_map", "reader_error",
               "summary", "by_severity", "findings", "rows", "tls_sessions", "studies",
               "conformance")

    def __init__(self, **kw: Any) -> None:
        for k in self._fields:
            setattr(self, k, kw.get(k))


def plan(config: dict[str, Any], files: list[str], store: dict[str, Any], *logs: Any
         ) -> dict[str, Any]:
    """The replay, on a worker (``logs``: every shard's :func:`.cluster.run_log`; ``files``:
    the capture's, as the client names them; ``store``: as :func:`parquet_on_dask` has it).
    The DICOMweb connections, transactions and findings are written here, as the replay ends
    each (their own Parquet part). Returns per shard its patch (by the shard's own
    association ids) and the frame references, and under ``"merged"`` what the client
    writes and prints."""
    from ..analysis.engine import Analyzer
    from ..analysis.http import session
    from ..analysis.summary import Summary
    from ..conformance.facts import ConformanceBuilder, Facts
    from ..conformance.views import ae_records, pair_records
    from .local import replay

    # Shallow copies: the replay resolves and renumbers its copies' events, while each
    # shard's own log (on its worker, perhaps this one) keeps its pickled associations for
    # write_part.
    logs = sorted((copy.copy(log) for log in logs), key=lambda log: log.index)
    first = logs[0]
    fmap = first.extra["frame_map"]
    an = Analyzer(ports=config.get("ports", ()), limits=config.get("limits"), keep=False,
                  rules=config.get("rules"), tls_keylog=config.get("tls_keylog"))
    summary = Summary()  # as the command subscribes its own (cli/analyze.py)
    an.on_association.append(summary.add)
    an.on_retire.append(summary.retire)
    web = session(an)
    web.on_transaction.append(summary.add_web)
    web.on_connection.append(summary.add_http_connection)
    capture: list[Any] = []
    an.on_finding.append(lambda f: capture.append(f) if f.association is None else None)
    studies: list[dict[str, Any]] = []
    an.journey.on_study.append(lambda st: studies.append(st.record()))
    facts = Facts()
    ConformanceBuilder(files, fmap.locate, facts).attach(an)
    writer = _writer(store, fmap, "w-")
    web.on_connection.append(writer.http_connection)
    sessions: list[Any] = []
    an.on_tls.append(sessions.append)
    mine: list[tuple[int, dict[int, Any]]] = []  # per shard: its own id -> association
    for log in logs:
        log.resolve()
        mine.append((log.index, {ev[4][0].id: ev[4][0] for ev in log.events
                                 if ev[3] == "assoc"}))
    replay(logs, an)
    writer.flush()
    patches = {index: {aid: (a.id, a.move_transaction,
                             [(t.id, list(t.sub_associations or ())) for t in a.transactions],
                             list(a.findings), a.tls)
                       for aid, a in assocs.items()}
               for index, assocs in mine}
    st = an.stats
    return {"patches": patches, "frame_map": fmap, "merged": PartsResult(
        capture_findings=capture, frames=st.frames, bytes=st.bytes, first_ts=st.first_ts,
        last_ts=st.last_ts, ignored=st.ignored_connections, evicted=st.evicted,
        findings_dropped=st.findings_dropped, problems=first.extra["problems"],
        frame_map=fmap, reader_error=first.extra["reader_error"], summary=summary,
        by_severity=dict(st.by_severity), findings=st.findings, tls_sessions=sessions,
        rows=dict(writer.rows_written),
        studies=studies, conformance=ae_records(facts) + pair_records(facts))}


def _writer(store: dict[str, Any], fmap: Any, part: str) -> Any:
    """A writer of one part of the run's dataset (``part``: its files' prefix)."""
    from ..store.writer import StoreWriter

    return StoreWriter(parquet=store["parquet"], capture=store["capture"],
                       files=store["files"], sensor=store["sensor"], locate=fmap.locate,
                       run_id=store["run_id"], part=part)


def _part_of(planned: dict[str, Any], index: int) -> tuple[dict[int, Any], Any]:
    """Shard ``index``'s patch and the frame references (each shard is sent its own only)."""
    return planned["patches"][index], planned["frame_map"]


def write_part(log: Any, part: tuple[dict[int, Any], Any], store: dict[str, Any]
               ) -> dict[str, int]:
    """One shard's associations, patched, written to its Parquet part (on its worker);
    returns the rows written per table."""
    patch, fmap = part
    writer = _writer(store, fmap, f"s{log.index}-")
    for aid, blob in log.blobs.items():  # every association the shard saw end
        a = pickle.loads(blob)
        new, move, txns, found, tls = patch[aid]
        a.id, a.move_transaction, a.findings, a.tls = new, move, found, tls
        for t, (tid, subs) in zip(a.transactions, txns, strict=True):
            t.id, t.association, t.sub_associations = tid, new, subs
        writer.association(a)
    writer.flush()
    return dict(writer.rows_written)


def parquet_on_dask(address: str, specs: Sequence[str], config: dict[str, Any],
                    store: dict[str, Any], *, files: Sequence[str] = (),
                    shards: int | None = None, workers: int = 2,
                    progress: Callable[[int, int], None] | None = None) -> PartsResult:
    """Shards on the cluster at ``address`` (``local``: a LocalCluster of ``workers``), each
    writing its Parquet part (``store``: ``parquet``, ``run_id``, ``capture``, ``files``,
    ``sensor``); returns what the client writes and prints (no association)."""
    from .cluster import connect, run_log, wait_for

    paths = [s if s == "-" else os.path.abspath(s) for s in specs]
    store = dict(store, parquet=os.path.abspath(store["parquet"]))
    with connect(address, workers) as client:
        n = shards or max(1, sum(client.nthreads().values()))
        futures = client.map(run_log, [paths] * n, range(n), [n] * n, [config] * n,
                             [list(specs)] * n, pure=False)
        wait_for(futures, progress)
        planned = client.submit(plan, config, list(files), store, *futures, pure=False)
        mine = [client.submit(_part_of, planned, i, pure=False) for i in range(n)]
        parts = client.gather(client.map(write_part, futures, mine, [store] * n,
                                         pure=False))
        merged = client.submit(operator.getitem, planned, "merged", pure=False).result()
        del futures, planned, mine
    rows: dict[str, int] = dict(merged.rows)  # the DICOMweb tables, written by plan
    for p in parts:
        for k, v in p.items():
            rows[k] = rows.get(k, 0) + v
    merged.rows = rows
    return merged
