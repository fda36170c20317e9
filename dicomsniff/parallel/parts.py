"""``--dask ... --parquet DIR``: each shard writes its own part of the Parquet dataset.

Without this the client gathers every shard's associations and writes them; with it, the
client's memory stays flat whatever the capture holds. Three rounds of Dask tasks, no
home-made transport:

1. :func:`.cluster.run_shard` on every shard; the results stay on their workers (futures).
2. :func:`plan` on one worker: the merge of the shards (:func:`.cluster.merge_shards`: one
   process's ids, then what spans host pairs, :mod:`.crosspair`) and, for each shard, a
   small patch: the new ids and C-MOVE links of its associations and transactions, and each
   association's findings (the checks across host pairs add some). That worker holds every
   shard's associations for the time of the merge (what the client held before).
3. :func:`write_part` on each shard's worker (Dask runs a task where its biggest input is):
   the patch applied, its associations written to ``DIR/<table>/day=.../<run>-sN-*.parquet``
   by the same :class:`~dicomsniff.store.writer.StoreWriter` one process uses; back come
   the summary of its associations (service table rows, counts) and rows written.

The client writes the capture-level findings and the run's row under the same run id, so the
dataset holds exactly what one process writes (``tests/test_parallel.py``).
"""

from __future__ import annotations

import operator
import os
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


def plan(config: dict[str, Any], files: list[str], *results: Any) -> dict[str, Any]:
    """The merge, on a worker: per shard a patch (by position: association, then its
    transactions), the capture-level findings, the studies' records, conformance as observed
    (``files``: the capture's, as the client names them) and the capture's counts."""
    from ..conformance.facts import ConformanceBuilder, Facts
    from ..conformance.views import ae_records, pair_records
    from .cluster import merge_shards

    order = sorted(results, key=lambda r: r.index)
    objects = [list(r.associations) for r in order]
    merged = merge_shards(order, config)
    facts = Facts()
    builder = ConformanceBuilder(files, merged.frame_map.locate, facts)
    for a in sorted(merged.associations, key=lambda a: (a.last_frame or 0, a.id)):
        builder.association(a)
    for f in merged.capture_findings:
        builder.finding(f)
    patches = {}
    for r, assocs in zip(order, objects, strict=True):
        patches[r.index] = [
            (a.id, a.move_transaction, [(t.id, list(t.sub_associations or ()))
                                        for t in a.transactions], list(a.findings), a.tls)
            for a in assocs]
    return {"patches": patches, "merged": PartsResult(
        capture_findings=merged.capture_findings, frames=merged.frames, bytes=merged.bytes,
        first_ts=merged.first_ts, last_ts=merged.last_ts, ignored=merged.ignored,
        evicted=merged.evicted, findings_dropped=merged.findings_dropped,
        problems=merged.problems, frame_map=merged.frame_map,
        reader_error=merged.reader_error, tls_sessions=merged.tls_sessions,
        studies=merged.studies, conformance=ae_records(facts) + pair_records(facts))}


def write_part(result: Any, planned: dict[str, Any], store: dict[str, Any]) -> dict[str, Any]:
    """One shard's associations, patched, written to its Parquet part (on its worker)."""
    from ..analysis.summary import Summary
    from ..store.writer import StoreWriter

    patch = planned["patches"][result.index]
    fmap = planned["merged"].frame_map
    writer = StoreWriter(parquet=store["parquet"], capture=store["capture"],
                         files=store["files"], sensor=store["sensor"], locate=fmap.locate,
                         run_id=store["run_id"], part=f"s{result.index}-")
    summary = Summary()
    by_severity: dict[str, int] = {}
    findings = 0
    for a, (aid, move, txns, fs, tls) in zip(result.associations, patch, strict=True):
        a.id, a.move_transaction, a.findings, a.tls = aid, move, fs, tls
        for t, (tid, subs) in zip(a.transactions, txns, strict=True):
            t.id, t.association, t.sub_associations = tid, aid, subs
        for f in fs:
            f.association = aid
            by_severity[f.severity] = by_severity.get(f.severity, 0) + 1
        findings += len(fs)
    for a in sorted(result.associations, key=lambda a: (a.last_frame or 0, a.id)):
        summary.add(a)
        writer.association(a)
    writer.flush()
    return {"summary": summary, "by_severity": by_severity, "findings": findings,
            "rows": dict(writer.rows_written)}


def _merge_summaries(parts: Sequence[Any]) -> Any:
    from ..analysis.summary import Summary

    total = Summary()
    for s in parts:
        total.associations += s.associations
        for k, v in s.outcomes.items():
            total.outcomes[k] = total.outcomes.get(k, 0) + v
        for key, row in s.rows.items():
            mine = total.rows.get(key)
            if mine is None:
                total.rows[key] = row
                continue
            mine.count += row.count
            mine.failures += row.failures
            mine.warnings += row.warnings
            mine.unanswered += row.unanswered
            mine.bytes += row.bytes
            mine.merge_latencies(row)
    return total


def parquet_on_dask(address: str, specs: Sequence[str], config: dict[str, Any],
                    store: dict[str, Any], *, files: Sequence[str] = (),
                    shards: int | None = None, workers: int = 2,
                    progress: Callable[[int, int], None] | None = None) -> PartsResult:
    """Shards on the cluster at ``address`` (``local``: a LocalCluster of ``workers``), each
    writing its Parquet part (``store``: ``parquet``, ``run_id``, ``capture``, ``files``,
    ``sensor``); returns what the client writes and prints (no association)."""
    from .cluster import connect, run_shard, wait_for

    paths = [s if s == "-" else os.path.abspath(s) for s in specs]
    store = dict(store, parquet=os.path.abspath(store["parquet"]))
    with connect(address, workers) as client:
        n = shards or max(1, sum(client.nthreads().values()))
        futures = client.map(run_shard, [paths] * n, range(n), [n] * n, [config] * n,
                             pure=False)
        wait_for(futures, progress)
        planned = client.submit(plan, config, list(files), *futures, pure=False)
        parts = client.gather(client.map(write_part, futures, [planned] * n, [store] * n,
                                         pure=False))
        merged = client.submit(operator.getitem, planned, "merged", pure=False).result()
        del futures, planned
    by_severity: dict[str, int] = {}
    rows: dict[str, int] = {}
    for p in parts:
        for k, v in p["by_severity"].items():
            by_severity[k] = by_severity.get(k, 0) + v
        for k, v in p["rows"].items():
            rows[k] = rows.get(k, 0) + v
    merged.summary = _merge_summaries([p["summary"] for p in parts])
    merged.by_severity = by_severity
    merged.findings = sum(p["findings"] for p in parts)
    merged.rows = rows
    return merged
