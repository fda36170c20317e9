"""Write the analysis into DuckDB tables and/or a Parquet dataset, run after run.

A subscriber to the engine's hooks, like the JSON Lines writer: an association's rows (it, its
transactions, its findings) are buffered as it ends and written in batches, so memory is bounded
by the batch, never by the capture. Rows are built from the same ``to_record()`` dictionaries
``--json`` writes (see :mod:`.schema` for the columns), so the store and the JSON agree by
construction; tests check it.

DuckDB: tables are created if missing and appended to (``INSERT ... BY NAME``, so a store
written by an older version with fewer columns gets the new ones added). Parquet: one dataset
per table under ``DIR/<table>/day=YYYY-MM-DD/``, files named after the run, so runs append and
never overwrite each other (what Spark, Trino, ClickHouse and DuckDB read at fleet scale).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

from ..model import Association, Finding
from ..report.framerefs import add_frame_refs
from .schema import EXTRA, RUNS, TABLES, columns, table_of

__all__ = ["StoreError", "StoreWriter", "record_rows"]

_BATCH = 20_000
# the fields each table has a column for ("type" is the table itself)
_KNOWN = {t: frozenset(n for n, _s in cols) | {"type"} for t, cols in TABLES.items()}
_UTC = _dt.timezone.utc


class StoreError(Exception):
    """The store cannot be opened or written (one line for the user)."""


def _arrow_type(sql: str):
    import pyarrow as pa

    return {"VARCHAR": pa.string(), "JSON": pa.string(), "BIGINT": pa.int64(),
            "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(), "DATE": pa.date32(),
            "TIMESTAMP": pa.timestamp("us")}[sql]


def _day(ts: float | None) -> _dt.date | None:
    if ts is None or ts != ts:
        return None
    try:
        return _dt.datetime.fromtimestamp(ts, _UTC).date()
    except (OverflowError, OSError, ValueError):
        return None


def _json(v: Any) -> str | None:
    return None if v is None else json.dumps(v, separators=(",", ":"), ensure_ascii=False,
                                             allow_nan=False, default=str)


def record_rows(rec: dict[str, Any], extra: dict[str, Any]) -> tuple[str, tuple]:
    """(table, row tuple in :func:`~.schema.columns` order) of one ``--json`` record."""
    table = table_of(rec)
    cols = TABLES[table]
    known = _KNOWN[table]
    more = {k: v for k, v in rec.items() if k not in known}
    row = [_json(extra.get(name)) if sql == "JSON" else extra.get(name)
           for name, sql in EXTRA if name != "more"]
    row.append(_json(more) if more else None)
    for name, sql in cols:
        v = rec.get(name)
        row.append(_json(v) if sql == "JSON" else v)
    return table, tuple(row)


class StoreWriter:
    """Buffers rows per table and writes them to ``db`` (DuckDB file) and/or ``parquet``
    (directory). Call :meth:`association` for each finished association (the engine's
    ``on_association`` hook), :meth:`finding` for capture-level findings, then :meth:`close`."""

    def __init__(self, *, db: str | None = None, parquet: str | None = None,
                 capture: str = "", files: list[str] | None = None, sensor: str | None = None,
                 locate: Callable[[int], tuple[str, int] | None] | None = None,
                 run_id: str | None = None, batch: int = _BATCH, part: str = "") -> None:
        """``part``: a prefix for this writer's Parquet file names, so several writers of one
        run (the shards of ``--dask``, dicomsniff/parallel/parts.py) never collide."""
        if not db and not parquet:
            raise ValueError("a DuckDB file or a Parquet directory is needed")
        self.run_id = run_id or (_dt.datetime.now(_UTC).strftime("%Y%m%dT%H%M%SZ-")
                                 + uuid.uuid4().hex[:8])
        self.started = _dt.datetime.now(_UTC).replace(tzinfo=None)
        self.capture = capture
        self.files = files or []
        self.sensor = sensor
        self.locate = locate
        self.batch = batch
        self.parquet = parquet
        self.part = part
        self._rows: dict[str, list[tuple]] = {t: [] for t in TABLES}
        self._pending = 0
        self._parts = 0
        self._capture_findings: list[Finding] = []
        self.rows_written: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._con = None
        if db:
            try:
                import duckdb

                self._con = duckdb.connect(db)
            except Exception as exc:  # duckdb.IOException and friends: one line
                raise StoreError(f"{db}: cannot open the DuckDB store: {exc}") from None
            self._create()
        if parquet:
            try:
                os.makedirs(parquet, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{parquet}: cannot create the Parquet directory: "
                                 f"{exc.strerror}") from None

    # -- DuckDB tables --------------------------------------------------------------------------
    def _create(self) -> None:
        con = self._con
        assert con is not None
        for table, cols in [*((t, columns(t)) for t in TABLES), ("runs", RUNS)]:
            spec = ", ".join(f'"{n}" {t}' for n, t in cols)
            con.execute(f'CREATE TABLE IF NOT EXISTS "{table}" ({spec})')
            for n, t in cols:  # a store from an older version: add the new columns
                con.execute(f'ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS "{n}" {t}')

    # -- hooks ----------------------------------------------------------------------------------
    def _extra(self, rec: dict[str, Any], day: _dt.date | None) -> dict[str, Any]:
        ex = {"run_id": self.run_id, "capture": self.capture, "sensor": self.sensor, "day": day}
        if self.locate is not None:
            add_frame_refs(ex_rec := dict(rec), self.locate)
            ex.update(file=ex_rec["file"], file_frame=ex_rec["file_frame"],
                      frame_refs=ex_rec["frame_refs"])
        return ex

    def _add(self, rec: dict[str, Any], day: _dt.date | None) -> None:
        table, row = record_rows(rec, self._extra(rec, day))
        self._rows[table].append(row)
        self._pending += 1

    def association(self, a: Association) -> None:
        day = _day(a.start)
        self._add(a.to_record(), day)
        for t in a.transactions:
            self._add(t.to_record(), _day(t.request_time) or day)
        for f in a.findings:
            self._add(f.to_record(), day)
        if self._pending >= self.batch:
            self.flush()

    def record(self, rec: dict[str, Any], ts: float | None) -> None:
        """Any other ``--json`` record with a table (a study, a conformance AE or pair);
        ``ts``: a time of it, for its day (the capture's start will do)."""
        self._add(rec, _day(ts) or self.started.date())

    def retire(self, a: Association, t: Any) -> None:
        """``Analyzer.on_retire``: a transaction leaving a long association before it ends:
        its row now (rows are a table: their order does not matter)."""
        self._add(t.to_record(), _day(t.request_time) or _day(a.start))
        if self._pending >= self.batch:
            self.flush()

    def tls(self, session: Any) -> None:
        """A TLS connection (analysis/tls.py TLSSession): its row in the ``tls`` table."""
        self.record(session.to_record(), session.start)

    def http_connection(self, connection: Any, transactions: list[Any],
                        findings: list[Finding]) -> None:
        """A DICOMweb HTTP connection as it ends (the DICOMweb session's ``on_connection``):
        its row, its transactions' and its findings', as ``--json`` writes them."""
        day = _day(connection.start)
        self._add(connection.to_record(), day)
        for t in transactions:
            rec = t.to_record()
            self._add(rec, _day(rec.get("request_time")) or day)
        for f in findings:
            self._add(f.to_record(), day)
        if self._pending >= self.batch:
            self.flush()

    def finding(self, f: Finding) -> None:
        """Capture-level findings (association findings come with their association)."""
        if f.association is None:
            self._capture_findings.append(f)

    # -- writing --------------------------------------------------------------------------------
    def flush(self) -> None:
        import pyarrow as pa

        for table, rows in self._rows.items():
            if not rows:
                continue
            cols = columns(table)
            arrays = [pa.array([r[i] for r in rows], type=_arrow_type(t))
                      for i, (_n, t) in enumerate(cols)]
            batch = pa.Table.from_arrays(arrays, names=[n for n, _t in cols])
            self._write(table, batch)
            self.rows_written[table] += len(rows)
            rows.clear()
        self._pending = 0

    def _write(self, table: str, batch) -> None:
        if self._con is not None:
            self._con.register("_batch", batch)
            try:
                self._con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _batch')
            finally:
                self._con.unregister("_batch")
        if self.parquet:
            import pyarrow.dataset as ds

            self._parts += 1
            ds.write_dataset(batch, os.path.join(self.parquet, table), format="parquet",
                             partitioning=["day"], partitioning_flavor="hive",
                             basename_template=f"{self.run_id}-{self.part}{self._parts}-{{i}}.parquet",
                             existing_data_behavior="overwrite_or_ignore")

    def close(self, summary: dict[str, Any], first_ts: float | None = None,
              last_ts: float | None = None, frames: int = 0, nbytes: int = 0) -> None:
        """Write what is buffered, the capture-level findings and the run's row."""
        day = _day(first_ts) or self.started.date()
        for f in self._capture_findings:
            self._add(f.to_record(), day)
        self._capture_findings.clear()
        self.flush()
        from .. import __version__

        run = (self.run_id, self.started, self.capture, self.sensor, _json(self.files),
               __version__, frames, nbytes, first_ts, last_ts, _json(summary))
        import pyarrow as pa

        batch = pa.Table.from_arrays([pa.array([v], type=_arrow_type(t))
                                      for v, (_n, t) in zip(run, RUNS, strict=True)],
                                     names=[n for n, _t in RUNS])
        if self._con is not None:
            self._con.register("_batch", batch)
            self._con.execute('INSERT INTO "runs" BY NAME SELECT * FROM _batch')
            self._con.unregister("_batch")
            self._con.close()
            self._con = None
        if self.parquet:
            import pyarrow.parquet as pq

            os.makedirs(os.path.join(self.parquet, "runs"), exist_ok=True)
            pq.write_table(batch, os.path.join(self.parquet, "runs", f"{self.run_id}.parquet"))
