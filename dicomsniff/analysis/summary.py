"""Service response time per performing AE and command: tshark's -z srt, for DICOM.

Fed one finished association at a time, so it works the same whether associations are kept in
memory (the terminal report) or streamed out and dropped (--json); the transactions a long
association retired before its end (``Analyzer.on_retire``) come through :meth:`Summary.retire`.
Latencies are kept in compact float arrays, 8 bytes a transaction, exact, up to
``EXACT_LATENCIES`` per row; past that a row keeps a sketch in constant space (log-spaced
buckets, 1% apart: median and p95 within 1%; minimum and maximum stay exact).
"""

from __future__ import annotations

import math
from array import array
from typing import Any

from dissectors._plain import Factory, Record

from ..model import Association

EXACT_LATENCIES = 100_000  # per row: beyond, a constant-space sketch (800 KB at most)
_GAMMA = 1.02  # sketch buckets: [g^(k-1), g^k) seconds, values within 1% of their centre
_LOG_GAMMA = math.log(_GAMMA)


class _Row(Record):
    count: int = 0
    failures: int = 0
    warnings: int = 0
    unanswered: int = 0
    bytes: int = 0
    latencies: array = Factory(lambda: array("d"))
    sketch: dict[int, int] | None = None  # bucket -> count, once past EXACT_LATENCIES
    lo: float = math.inf
    hi: float = -math.inf

    def latency(self, v: float) -> None:
        if self.sketch is None:
            if len(self.latencies) < EXACT_LATENCIES:
                self.latencies.append(v)
                return
            self._to_sketch()
        self._bucket(v)

    def merge_latencies(self, other: _Row) -> None:
        """Add ``other``'s latencies (another process's row of the same AE and command)."""
        if (self.sketch is None and other.sketch is None
                and len(self.latencies) + len(other.latencies) <= EXACT_LATENCIES):
            self.latencies.extend(other.latencies)
            return
        self._to_sketch()
        for v in other.latencies:
            self._bucket(v)
        if other.sketch is not None:
            for k, c in other.sketch.items():
                self.sketch[k] = self.sketch.get(k, 0) + c  # type: ignore[index]
            self.lo, self.hi = min(self.lo, other.lo), max(self.hi, other.hi)

    def _to_sketch(self) -> None:
        if self.sketch is None:
            self.sketch = {}
            for x in self.latencies:
                self._bucket(x)
            self.latencies = array("d")

    def _bucket(self, v: float) -> None:
        k = math.ceil(math.log(v) / _LOG_GAMMA) if v > 0 else -(1 << 30)
        self.sketch[k] = self.sketch.get(k, 0) + 1  # type: ignore[index]
        self.lo, self.hi = min(self.lo, v), max(self.hi, v)

    def stats(self) -> tuple[float, float, float, float] | None:
        """(min, median, p95, max) of the latencies, or None without any."""
        if self.sketch is None:
            if not self.latencies:
                return None
            lats = sorted(self.latencies)
            return lats[0], _percentile(lats, 50), _percentile(lats, 95), lats[-1]
        n = sum(self.sketch.values())
        out = []
        for p in (50, 95):
            rank = max(1, min(n, int(round(p / 100.0 * n + 0.5))))  # nearest rank, as below
            seen = 0
            for k in sorted(self.sketch):
                seen += self.sketch[k]
                if seen >= rank:
                    mid = 0.0 if k == -(1 << 30) else 2 * _GAMMA ** k / (_GAMMA + 1)
                    out.append(min(max(mid, self.lo), self.hi))
                    break
        return self.lo, out[0], out[1], self.hi


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
            self.retire(a, t)

    def retire(self, a: Association, t: Any) -> None:
        """One transaction of ``a`` (``Analyzer.on_retire``: one that leaves a long association
        before its end; :meth:`add` gives the rest)."""
        if t.command == "C-CANCEL":
            return
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
            row.latency(lat)

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
            row.latency(t.latency)

    def add_http_connection(self, connection: Any, transactions: Any, findings: Any) -> None:
        self.http_connections += 1

    def table(self) -> list[dict[str, Any]]:
        out = []
        for (ae, command), r in sorted(self.rows.items()):
            lo, median, p95, hi = r.stats() or (None, None, None, None)
            out.append({
                "ae": ae, "command": command, "count": r.count, "failures": r.failures,
                "warnings": r.warnings, "unanswered": r.unanswered,
                "latency_min": lo, "latency_median": median, "latency_p95": p95,
                "latency_max": hi,
                "bytes": r.bytes, "mb": round(r.bytes / 1e6, 3)})
        return out
