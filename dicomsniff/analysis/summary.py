"""Service response time per performing AE and command: tshark's -z srt, for DICOM.

Fed one finished association at a time, so it works the same whether associations are kept in
memory (the terminal report) or streamed out and dropped (--json). Latencies are kept in
compact float arrays: 8 bytes a transaction.
"""

from __future__ import annotations

from array import array
from typing import Any

from dissectors._plain import Factory, Record

from ..model import Association


class _Row(Record):
    count: int = 0
    failures: int = 0
    warnings: int = 0
    unanswered: int = 0
    bytes: int = 0
    latencies: array = Factory(lambda: array("d"))


def _percentile(sorted_vals: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


class Summary:
    """Per (performing AE, command) counts, failures, latency and bytes."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], _Row] = {}
        self.associations = 0
        self.outcomes: dict[str, int] = {}
        self.http_connections = 0

    def add(self, a: Association) -> None:
        self.associations += 1
        self.outcomes[a.outcome] = self.outcomes.get(a.outcome, 0) + 1
        for t in a.transactions:
            if t.command == "C-CANCEL":
                continue
            # The AE that performs the operation is the one the request was sent to.
            if t.sent_by == "requestor":
                ae, addr = a.called_ae, a.server
            else:
                ae, addr = a.calling_ae, a.client
            label = f"{ae or '?'} ({addr.rsplit(':', 1)[0]})"
            row = self.rows.get((label, t.command))
            if row is None:
                row = self.rows[(label, t.command)] = _Row()
            row.count += 1
            row.bytes += t.dataset_bytes + t.response_dataset_bytes
            cat = t.status_category
            if cat == "Failure":
                row.failures += 1
            elif cat == "Warning":
                row.warnings += 1
            elif cat is None or cat == "Pending":
                row.unanswered += 1
            lat = t.latency
            if lat is not None and t.done:
                row.latencies.append(lat)

    def add_web(self, connection: Any, t: Any) -> None:
        """A DICOMweb transaction (dicomsniff/dicomweb): a row per origin server and service,
        labelled like an AE's ("HTTP (address:port)"), so both protocols share the table."""
        label = f"HTTP ({connection.server})"
        row = self.rows.get((label, t.command))
        if row is None:
            row = self.rows[(label, t.command)] = _Row()
        row.count += 1
        row.bytes += t.request_bytes + t.response_bytes
        cat = t.status_category
        if cat == "Failure":
            row.failures += 1
        elif cat == "Warning":
            row.warnings += 1
        elif cat is None:
            row.unanswered += 1
        if t.latency is not None:
            row.latencies.append(t.latency)

    def add_http_connection(self, connection: Any, transactions: Any, findings: Any) -> None:
        self.http_connections += 1

    def table(self) -> list[dict[str, Any]]:
        out = []
        for (ae, command), r in sorted(self.rows.items()):
            lats = sorted(r.latencies)
            out.append({
                "ae": ae, "command": command, "count": r.count, "failures": r.failures,
                "warnings": r.warnings, "unanswered": r.unanswered,
                "latency_min": lats[0] if lats else None,
                "latency_median": _percentile(lats, 50) if lats else None,
                "latency_p95": _percentile(lats, 95) if lats else None,
                "latency_max": lats[-1] if lats else None,
                "bytes": r.bytes, "mb": round(r.bytes / 1e6, 3)})
        return out
