"""The store (dicomsniff/store): DuckDB tables and a Parquet dataset hold exactly the --json
records, with where each row came from; runs append."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dicomsniff.analysis.engine import Analyzer
from dicomsniff.analysis.run import analyze_source
from dicomsniff.report.jsonl import JsonLinesWriter
from dicomsniff.sources.merge import open_capture
from dicomsniff.store.schema import EXTRA, RECORD_TABLE, TABLES
from dicomsniff.store.writer import StoreWriter


def connect(path: Path):
    """DuckDB loads when a test here runs, not when pytest collects: imported at collection it
    would sit in the pytest process under every child whose peak memory the hostile-input
    tests judge."""
    duckdb = pytest.importorskip("duckdb")
    pytest.importorskip("pyarrow")
    return duckdb.connect(str(path))

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
EXTRA_NAMES = {n for n, _t in EXTRA}


def run(specs, db: Path | None, parquet: Path | None, sensor: str | None = None,
        ) -> tuple[list[dict], StoreWriter]:
    """Analyse once, writing --json lines and the store from the same hooks."""
    cs = open_capture(specs)
    an = Analyzer(keep=False)
    lines: list[str] = []

    class Out:
        def write(self, s: str) -> None:
            lines.append(s)

        def flush(self) -> None:
            pass

    locate = None if cs.single else cs.locate
    jw = JsonLinesWriter(Out(), locate=locate)  # type: ignore[arg-type]
    sw = StoreWriter(db=str(db) if db else None, parquet=str(parquet) if parquet else None,
                     capture="test", files=cs.paths, sensor=sensor, locate=cs.locate,
                     batch=7)  # tiny batches: several flushes per run
    for w in (jw, sw):
        an.on_association.append(w.association)
        an.on_finding.append(w.finding)
    analyze_source(cs, an)
    sw.close({"frames": an.stats.frames}, an.stats.first_ts, an.stats.last_ts,
             an.stats.frames, an.stats.bytes)
    recs = [json.loads(x) for x in "".join(lines).splitlines()]
    return recs, sw


def _decode(row: dict, table: str) -> dict:
    """A stored row back into a --json record (JSON columns parsed, store columns dropped)."""
    types = dict(TABLES[table])
    rec = {"type": "transaction" if table == "web_transactions" else
           next(k for k, v in RECORD_TABLE.items() if v == table)}
    for k, v in row.items():
        if k == "more" and v is not None:
            rec.update(json.loads(v))
        if k in EXTRA_NAMES:
            continue
        if types[k] == "JSON" and v is not None:
            v = json.loads(v)
        rec[k] = v
    return rec


def _norm(rec: dict) -> str:
    """A record without its null fields (the store has a column for every optional field)."""
    return json.dumps({k: v for k, v in rec.items() if v is not None and k not in
                       ("file", "file_frame", "frame_refs")}, sort_keys=True)


def _rows(con, source: str) -> list[dict]:
    cur = con.execute(f"SELECT * FROM {source}")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


@pytest.mark.parametrize("name", ["move.pcap", "store-concurrent.pcap", "abort-mid-transfer.pcap",
                                  "find-cancel.pcap", "associate-reject.pcap"])
def test_duckdb_and_parquet_hold_exactly_what_json_writes(tmp_path: Path, name: str) -> None:
    db, pq = tmp_path / "s.duckdb", tmp_path / "pq"
    recs, sw = run(CAPTURES / name, db, pq, sensor="CT01-switch")
    con = connect(db)
    stored = []
    for table in TABLES:
        rows = _rows(con, f'"{table}"')
        assert all(r["run_id"] == sw.run_id and r["sensor"] == "CT01-switch" for r in rows)
        stored.extend(_decode(r, table) for r in rows)
    assert sorted(map(_norm, stored)) == sorted(map(_norm, (r for r in recs
                                                            if r["type"] != "summary")))
    parquet = []
    for table in TABLES:
        if not (pq / table).exists():
            assert not [r for r in stored if RECORD_TABLE[r["type"]] == table]
            continue
        rows = _rows(con, f"read_parquet('{pq}/{table}/*/*.parquet', hive_partitioning=true)")
        assert {r["day"] for r in rows} <= {r["day"] for r in _rows(con, f'"{table}"')}
        parquet.extend(_decode({k: v for k, v in r.items() if k != "day"}, table) for r in rows)
    assert sorted(map(_norm, parquet)) == sorted(map(_norm, stored))
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def test_runs_append_and_a_query_a_pacs_administrator_would_run(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    run(CAPTURES / "abort-mid-transfer.pcap", db, None, sensor="CT01")
    run(CAPTURES / "store-concurrent.pcap", db, None, sensor="PACS")
    con = connect(db)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    # every C-STORE that did not succeed, from CT01's sensor
    failed = con.execute("""
        SELECT t.sop_instance, a.calling_ae, t.status
        FROM transactions t JOIN associations a ON a.run_id = t.run_id AND a.id = t.association
        WHERE t.command = 'C-STORE' AND coalesce(t.status_category, 'none') <> 'Success'
          AND t.sensor = 'CT01'""").fetchall()
    assert failed and all(r[2] is None or r[2] != 0 for r in failed)
    # nested fields are JSON: accepted transfer syntaxes of the concurrent run
    ts = con.execute("""
        SELECT DISTINCT c->>'transfer_syntax' FROM associations,
               unnest(CAST(contexts AS JSON[])) AS u(c)
        WHERE sensor = 'PACS' AND (c->>'result')::INT = 0""").fetchall()
    assert ts and all(r[0].startswith("1.2.840.10008.1.2") for r in ts)


def test_rows_name_the_file_of_a_rotated_set(tmp_path: Path) -> None:
    import subprocess

    pieces = tmp_path / "p"
    pieces.mkdir()
    subprocess.run(["editcap", "-c", "60", str(CAPTURES / "move.pcap"),
                    str(pieces / "move.pcap")], check=True, capture_output=True)
    db = tmp_path / "s.duckdb"
    recs, _sw = run([str(pieces)], db, None)
    con = connect(db)
    rows = _rows(con, '"transactions"')
    by_id = {r["id"]: r for r in recs if r["type"] == "transaction"}
    assert rows and all(r["file"] and r["file_frame"] for r in rows)
    for r in rows:
        assert r["file"] == by_id[r["id"]]["file"]
        assert r["file_frame"] == (r["request_frame"] - 1) % 60 + 1


def test_a_field_without_a_column_is_kept_in_more() -> None:
    from dicomsniff.store.writer import record_rows

    rec = {"type": "finding", "association": 1, "severity": "info", "code": "X", "message": "m",
           "frame": 3, "section": None, "frames": [3], "new_field": {"a": 1}}
    table, row = record_rows(rec, {"run_id": "r"})
    names = [n for n, _t in EXTRA] + [n for n, _t in TABLES[table]]
    assert json.loads(dict(zip(names, row, strict=True))["more"]) == {"new_field": {"a": 1}}


def test_a_store_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    from dicomsniff.store.writer import StoreError

    bad = tmp_path / "not-a-db.duckdb"
    bad.write_text("hello, this is text\n" * 10)
    with pytest.raises(StoreError) as exc:
        StoreWriter(db=str(bad))
    assert "\n" not in str(exc.value) and str(bad) in str(exc.value)
