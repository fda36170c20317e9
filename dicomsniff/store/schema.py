"""The store's tables: the ``--json`` contract's fields, typed, plus where each row came from.

One table per record type (``associations``, ``transactions``, ``findings``; ``tls``;
``http_connections`` and ``web_transactions``, DICOMweb's; ``studies``, the study journey's;
``conformance_aes`` and ``conformance_pairs``, conformance as observed) and
``runs`` (one row per analysis, with its summary). The columns are the record's fields with
the same names (docs/json.md); nested values (contexts, user information, frame lists...) are
JSON, which DuckDB queries with ``->>`` and ``json_extract``. Every row also carries:

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

__all__ = ["EXTRA", "RECORD_TABLE", "RUNS", "TABLES", "columns", "table_of"]

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
        ("tls", "BIGINT"),
    ),
    # one per TLS connection (analysis/tls.py TLSSession.to_record, docs/json.md)
    "tls": (
        ("id", "BIGINT"), ("client", "VARCHAR"), ("server", "VARCHAR"), ("start", "DOUBLE"),
        ("end", "DOUBLE"), ("first_frame", "BIGINT"), ("last_frame", "BIGINT"),
        ("version", "VARCHAR"), ("cipher_suite", "VARCHAR"), ("sni", "VARCHAR"),
        ("alpn", "VARCHAR"), ("outcome", "VARCHAR"), ("decrypted", "BOOLEAN"),
        ("association", "BIGINT"), ("http_connection", "BIGINT"), ("resumed", "BOOLEAN"),
        ("certificate_requested", "BOOLEAN"), ("client_certificate_sent", "BOOLEAN"),
        ("certificates", "JSON"), ("alerts", "JSON"), ("ended_by", "VARCHAR"),
        ("keylog", "VARCHAR"), ("findings", "BIGINT"),
    ),
    # DICOMweb (docs/dicomweb.md): one row per HTTP connection, one per transaction (the
    # ``--json`` transaction records with ``"protocol": "dicomweb"``); their findings are in
    # ``findings``, ``association`` naming the connection (the two share one counter of ids)
    "http_connections": (
        ("protocol", "VARCHAR"), ("id", "BIGINT"), ("client", "VARCHAR"),
        ("server", "VARCHAR"), ("user_agent", "VARCHAR"), ("server_software", "VARCHAR"),
        ("start", "DOUBLE"), ("end", "DOUBLE"), ("duration", "DOUBLE"),
        ("first_frame", "BIGINT"), ("last_frame", "BIGINT"), ("requests", "BIGINT"),
        ("responses", "BIGINT"), ("bytes", "JSON"), ("outcome", "VARCHAR"),
        ("tunnelled", "BOOLEAN"), ("http2", "VARCHAR"), ("transactions", "BIGINT"),
        ("findings", "BIGINT"),
    ),
    "web_transactions": (
        ("protocol", "VARCHAR"), ("id", "BIGINT"), ("connection", "BIGINT"),
        ("command", "VARCHAR"), ("action", "VARCHAR"), ("method", "VARCHAR"),
        ("target", "VARCHAR"), ("http_version", "VARCHAR"), ("level", "VARCHAR"),
        ("study", "VARCHAR"), ("series", "VARCHAR"), ("instance", "VARCHAR"),
        ("frames", "JSON"), ("workitem", "VARCHAR"), ("query", "JSON"), ("accept", "JSON"),
        ("request_content_type", "VARCHAR"), ("response_content_type", "VARCHAR"),
        ("transfer_syntax", "VARCHAR"), ("status", "BIGINT"), ("reason_phrase", "VARCHAR"),
        ("status_category", "VARCHAR"), ("status_meaning", "VARCHAR"),
        ("informational", "JSON"), ("request_frame", "BIGINT"),
        ("request_end_frame", "BIGINT"), ("response_frames", "JSON"),
        ("request_time", "DOUBLE"), ("request_end_time", "DOUBLE"),
        ("response_time", "DOUBLE"), ("response_end_time", "DOUBLE"), ("latency", "DOUBLE"),
        ("request_bytes", "BIGINT"), ("response_bytes", "BIGINT"),
        ("request_complete", "BOOLEAN"), ("response_complete", "BOOLEAN"),
        ("bytes_missing", "BIGINT"), ("results", "BIGINT"), ("parts", "JSON"),
        ("instances", "JSON"), ("failed", "JSON"), ("warnings", "JSON"),
        ("error_text", "VARCHAR"), ("user_agent", "VARCHAR"), ("association", "BIGINT"),
        ("sop_class", "VARCHAR"), ("sop_instance", "VARCHAR"), ("dataset_bytes", "BIGINT"),
        ("response_dataset_bytes", "BIGINT"),
    ),
    # the study journey's records (``dicomsniff studies --json``, docs/studies.md)
    "studies": (
        ("study_instance_uid", "VARCHAR"), ("patient_id", "VARCHAR"),
        ("patient_name", "VARCHAR"), ("accession_number", "VARCHAR"), ("state", "VARCHAR"),
        ("first_frame", "BIGINT"), ("last_frame", "BIGINT"),
        ("capture_began_inside", "BOOLEAN"), ("scheduled_match", "VARCHAR"),
        ("scheduled", "JSON"), ("procedure_steps", "JSON"), ("mpps", "JSON"),
        ("series", "JSON"), ("instances", "JSON"), ("instances_dropped", "BIGINT"),
        ("commitment", "JSON"), ("ian", "JSON"), ("cut_stores", "JSON"),
        ("associations", "JSON"), ("findings", "JSON"),
    ),
    # conformance as observed (``dicomsniff conformance --json``, docs/conformance.md): per AE
    # title, and per SCU -> SCP pair
    "conformance_aes": (
        ("ae_title", "VARCHAR"), ("addresses", "JSON"), ("hosts", "JSON"),
        ("implementations", "JSON"), ("as_requestor", "BIGINT"), ("as_acceptor", "BIGINT"),
        ("outcomes", "JSON"), ("rejections", "JSON"), ("max_pdu", "JSON"),
        ("async_ops", "JSON"), ("roles", "JSON"), ("extended_negotiation", "JSON"),
        ("user_identity", "JSON"), ("peers", "JSON"), ("services", "JSON"),
    ),
    "conformance_pairs": (
        ("scu", "VARCHAR"), ("scp", "VARCHAR"), ("associations", "BIGINT"),
        ("outcomes", "JSON"), ("rejections", "JSON"), ("services", "JSON"),
    ),
}

RUNS: tuple[tuple[str, str], ...] = (
    ("run_id", "VARCHAR"), ("started", "TIMESTAMP"), ("capture", "VARCHAR"),
    ("sensor", "VARCHAR"), ("files", "JSON"), ("version", "VARCHAR"), ("frames", "BIGINT"),
    ("bytes", "BIGINT"), ("first_time", "DOUBLE"), ("last_time", "DOUBLE"), ("summary", "JSON"),
)

#: record "type" -> table (a DICOMweb transaction: ``web_transactions``, :func:`table_of`)
RECORD_TABLE = {"association": "associations", "transaction": "transactions",
                "finding": "findings", "study": "studies", "ae": "conformance_aes",
                "pair": "conformance_pairs", "tls": "tls", "http_connection": "http_connections"}


def table_of(rec: dict) -> str:
    """The table of a ``--json`` record."""
    if rec.get("protocol") == "dicomweb" and rec["type"] == "transaction":
        return "web_transactions"
    return RECORD_TABLE[rec["type"]]


def columns(table: str) -> tuple[tuple[str, str], ...]:
    """Every column of a record table, in order: where the row came from, then the record."""
    return EXTRA + TABLES[table]
