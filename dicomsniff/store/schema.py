"""The store's tables: the ``--json`` contract's fields, typed, plus where each row came from.

One table per record type (``associations``, ``transactions``, ``findings``) and ``runs`` (one
row per analysis, with its summary). The columns are the record's fields with the same names
(docs/json.md); nested values (contexts, user information, frame lists...) are JSON, which
DuckDB queries with ``->>`` and ``json_extract``. Every row also carries:

* ``run_id``: the analysis that wrote it (association ids restart at 1 in each run, so joins
  use ``run_id`` and ``association``);
* ``capture``: the files analysed (one name, or the first and a count); ``sensor``: the name
  given with ``--sensor`` (or null);
* ``file``, ``file_frame``, ``frame_refs``: where the row's frames are (see
  :mod:`dicomsniff.report.framerefs`);
* ``more``: any field of the record this version has no column for yet (JSON), so a field
  added to the ``--json`` contract is never lost before it gets its column;
* ``day``: the UTC date of the row's time (association start, request time; a finding takes
  its association's), the Parquet dataset's partition.
"""

from __future__ import annotations

__all__ = ["EXTRA", "RECORD_TABLE", "RUNS", "TABLES", "columns"]

# (column, DuckDB type); JSON columns hold the record's nested values as JSON text.
EXTRA: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR"), ("capture", "VARCHAR"), ("sensor", "VARCHAR"), ("day", "DATE"),
    ("file", "VARCHAR"), ("file_frame", "BIGINT"), ("frame_refs", "JSON"), ("more", "JSON"),
)

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "associations": (
        ("id", "BIGINT"), ("client", "VARCHAR"), ("server", "VARCHAR"),
        ("calling_ae", "VARCHAR"), ("called_ae", "VARCHAR"), ("start", "DOUBLE"),
        ("end", "DOUBLE"), ("duration", "DOUBLE"), ("first_frame", "BIGINT"),
        ("last_frame", "BIGINT"), ("outcome", "VARCHAR"), ("source", "VARCHAR"),
        ("reason", "VARCHAR"), ("reject", "JSON"), ("abort", "JSON"), ("midstream", "BOOLEAN"),
        ("protocol_version", "BIGINT"), ("application_context", "VARCHAR"),
        ("max_pdu", "JSON"), ("implementation", "JSON"), ("requestor", "JSON"),
        ("acceptor", "JSON"), ("contexts", "JSON"), ("pdus", "JSON"), ("bytes", "JSON"),
        ("transactions", "BIGINT"), ("findings", "BIGINT"), ("move_transaction", "BIGINT"),
    ),
    "transactions": (
        ("id", "BIGINT"), ("association", "BIGINT"), ("command", "VARCHAR"),
        ("command_field", "BIGINT"), ("message_id", "BIGINT"), ("context_id", "BIGINT"),
        ("sent_by", "VARCHAR"), ("sop_class", "VARCHAR"), ("sop_class_name", "VARCHAR"),
        ("sop_instance", "VARCHAR"), ("priority", "BIGINT"), ("status", "BIGINT"),
        ("status_category", "VARCHAR"), ("status_meaning", "VARCHAR"), ("pending", "BIGINT"),
        ("request_frame", "BIGINT"), ("response_frames", "JSON"), ("request_time", "DOUBLE"),
        ("request_end_time", "DOUBLE"), ("response_time", "DOUBLE"), ("latency", "DOUBLE"),
        ("dataset_bytes", "BIGINT"), ("dataset_partial", "BOOLEAN"),
        ("dataset_missing", "BIGINT"),
        ("transfer_syntax", "VARCHAR"), ("response_dataset_bytes", "BIGINT"),
        ("suboperations", "JSON"), ("move_destination", "VARCHAR"),
        ("error_comment", "VARCHAR"), ("cancel_frame", "BIGINT"), ("event_type", "BIGINT"),
        ("action_type", "BIGINT"),
    ),
    "findings": (
        ("association", "BIGINT"), ("severity", "VARCHAR"), ("code", "VARCHAR"),
        ("message", "VARCHAR"), ("frame", "BIGINT"), ("section", "VARCHAR"), ("frames", "JSON"),
    ),
}

RUNS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR"), ("started", "TIMESTAMP"), ("capture", "VARCHAR"),
    ("sensor", "VARCHAR"), ("files", "JSON"), ("version", "VARCHAR"), ("frames", "BIGINT"),
    ("bytes", "BIGINT"), ("first_time", "DOUBLE"), ("last_time", "DOUBLE"), ("summary", "JSON"),
)

#: record "type" -> table
RECORD_TABLE = {"association": "associations", "transaction": "transactions",
                "finding": "findings"}


def columns(table: str) -> tuple[tuple[str, str], ...]:
    """Every column of a record table, in order: where the row came from, then the record."""
    return EXTRA + TABLES[table]
