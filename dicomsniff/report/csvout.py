"""CSV of the transactions, findings, associations or TLS connections, for spreadsheets.

One table per run (``analyze --csv transactions``), one row per record, the columns named as
in the ``--json`` records (docs/json.md) where they exist; nested values are spread over
columns (``sub_completed``...) or joined with spaces (frame lists). Times are ISO 8601 (UTC,
or local time with ``--localtime``), so a spreadsheet sorts them; durations in seconds.
Wire strings are written as they are: the csv module quotes them, and a leading ``=``, ``+``,
``-`` or ``@`` gets a ``'`` so a spreadsheet does not run it as a formula.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from typing import IO, Any

from ..model import Association, Finding, Transaction
from ..uids import uid_name
from .spool import Spool

TABLES = ("transactions", "findings", "associations", "tls")

TRANSACTION_COLUMNS = (
    "id", "association", "calling_ae", "called_ae", "command", "message_id", "sent_by",
    "sop_class", "sop_class_name", "sop_instance", "priority", "move_destination", "status",
    "status_category", "status_meaning", "pending", "request_frame", "request_time",
    "response_time", "latency", "dataset_bytes", "dataset_missing", "sub_completed",
    "sub_failed", "sub_warning", "sub_remaining", "sub_associations", "error_comment")
FINDING_COLUMNS = ("association", "severity", "code", "frame", "section", "message", "tls")
ASSOCIATION_COLUMNS = (
    "id", "client", "server", "calling_ae", "called_ae", "start", "end", "duration",
    "outcome", "source", "reason", "first_frame", "last_frame", "transactions", "findings",
    "bytes_requestor", "bytes_acceptor", "move_transaction", "tls_version", "tls_cipher_suite")
# one row per TLS connection (analysis/tls.py TLSSession; the --json "tls" record's fields,
# the server's end-entity certificate and the alerts spread over columns)
TLS_COLUMNS = (
    "id", "client", "server", "start", "end", "first_frame", "last_frame", "version",
    "cipher_suite", "sni", "alpn", "outcome", "decrypted", "association", "http_connection",
    "resumed", "hello_retry_request", "certificate_requested", "client_certificate_sent",
    "server_certificate_subject", "server_certificate_issuer", "server_certificate_not_after",
    "alerts", "bytes_client", "bytes_server", "ended_by", "keylog", "findings")


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@"):
        return "'" + v
    return v


class CsvWriter:
    """Rows of one table, written as associations end."""

    def __init__(self, out: IO[str], table: str, *, local: bool = False) -> None:
        self.table = table
        self.local = local
        self.out = out
        self.w = csv.writer(out, lineterminator="\n")
        self.spool = Spool()  # rows of transactions a long association retired early
        cols = {"transactions": TRANSACTION_COLUMNS, "findings": FINDING_COLUMNS,
                "associations": ASSOCIATION_COLUMNS, "tls": TLS_COLUMNS}[table]
        self.w.writerow(cols)

    def _time(self, ts: float | None) -> str:
        if ts is None:
            return ""
        try:
            when = _dt.datetime.fromtimestamp(ts, None if self.local else _dt.timezone.utc)
        except (ValueError, OverflowError, OSError):
            return f"{ts:.6f}"
        return when.isoformat(timespec="milliseconds")

    def retire(self, a: Association, t: Transaction) -> None:
        """``Analyzer.on_retire``: the row of a transaction leaving a long association waits
        here for the association's end, so the rows are the same as when nothing is retired."""
        if self.table != "transactions":
            return
        w, buf = self.w, io.StringIO()
        self.w = csv.writer(buf, lineterminator="\n")
        try:
            self._transaction(a, t)
        finally:
            self.w = w
        self.spool.add(a.id, buf.getvalue())

    def association(self, a: Association, txns: list[Transaction]) -> None:
        if self.table == "transactions":
            self.spool.write_to(a.id, self.out)
            for t in txns:
                self._transaction(a, t)
        elif self.table == "findings":
            for f in a.findings:
                self.finding(f)
        elif self.table == "associations":
            tls = a.tls or {}
            self.w.writerow([_cell(x) for x in (
                a.id, a.client, a.server, a.calling_ae, a.called_ae, self._time(a.start),
                self._time(a.end), None if a.duration is None else round(a.duration, 6),
                a.outcome, a.source, a.reason, a.first_frame, a.last_frame,
                len(a.transactions) + a.transactions_retired, len(a.findings),
                a.bytes.get("requestor"), a.bytes.get("acceptor"), a.move_transaction,
                tls.get("version"), tls.get("cipher_suite"))])

    def _transaction(self, a: Association, t: Transaction) -> None:
        so = t.suboperations or {}
        self.w.writerow([_cell(x) for x in (
            t.id, t.association, a.calling_ae, a.called_ae, t.command, t.message_id,
            t.sent_by, t.sop_class, uid_name(t.sop_class), t.sop_instance, t.priority,
            t.move_destination, None if t.status is None else f"0x{t.status:04X}",
            t.status_category, t.status_meaning, t.pending, t.request_frame,
            self._time(t.request_time), self._time(t.response_time),
            None if t.latency is None else round(t.latency, 6), t.dataset_bytes,
            t.dataset_missing, so.get("completed"), so.get("failed"), so.get("warning"),
            so.get("remaining"), " ".join(map(str, t.sub_associations)), t.error_comment)])

    def finding(self, f: Finding) -> None:
        if self.table == "findings":
            self.w.writerow([_cell(x) for x in (f.association, f.severity, f.code, f.frame,
                                                f.section, f.message, f.tls)])

    def tls(self, s: Any) -> None:
        """A TLS connection as it ends (the engine's ``on_tls``)."""
        if self.table != "tls":
            return
        cert = next((c for c in s.certificates or () if c.get("sent_by") == "server"), {})
        alerts = " ".join(f"{a['by']}:{a['level'] or 'encrypted'}:{a['description'] or '?'}"
                          for a in s.alerts or ())
        self.w.writerow([_cell(x) for x in (
            s.id, s.client, s.server, self._time(s.start), self._time(s.end), s.first_frame,
            s.last_frame, s.version, s.cipher_suite, s.sni, s.alpn, s.outcome, s.decrypted,
            s.association, s.http_connection, s.resumed, s.hello_retry_request,
            s.certificate_requested, s.client_certificate_sent, cert.get("subject"),
            cert.get("issuer"), cert.get("not_after"), alerts, (s.bytes or {}).get("client"),
            (s.bytes or {}).get("server"), s.ended_by, s.keylog, len(s.findings or ()))])
