"""The DICOMweb side of one analysis: every HTTP connection's transactions and findings, the
hooks the outputs subscribe to, ids shared with the engine.

Light on purpose: ``dicomsniff analyze`` creates one for every capture, and only a capture
that holds HTTP loads the parser (h11) and the interpretation (pydicom) behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..model import Finding
from .model import HttpConnectionInfo, WebTransaction

if TYPE_CHECKING:
    from .analyzer import DicomwebConnection


class DicomwebAnalyzer:
    """Every HTTP connection of a capture: ids, hooks, what is kept.

    Hooks (lists of callables): ``on_transaction(connection_info, transaction)`` as each
    exchange ends, ``on_finding(finding)`` as raised, ``on_connection(connection_info,
    transactions, findings)`` when a connection ends (the JSON writer and the report use it).
    With ``emit`` (the engine's), findings are counted and kept by the engine instead.
    ``instance_policies`` (:class:`~.instances.InstancePolicy`) get the bytes of the instances
    that STOW-RS requests and WADO responses carry, if they ask for them.
    """

    def __init__(self, *, keep: bool = True, max_findings: int = 100_000,
                 next_id: Callable[[], int] | None = None,
                 emit: Callable[[Finding], None] | None = None) -> None:
        self.keep = keep
        self.max_findings = max_findings
        self.connections: list[HttpConnectionInfo] = []
        self.closed: list[DicomwebConnection] = []  # with keep: their transactions, findings
        self.transactions: list[WebTransaction] = []
        self.findings: list[Finding] = []
        self.findings_dropped = 0
        self.on_transaction: list[Callable[[HttpConnectionInfo, WebTransaction], None]] = []
        self.on_finding: list[Callable[[Finding], None]] = []
        self.on_connection: list[Callable[[HttpConnectionInfo, list[WebTransaction],
                                           list[Finding]], None]] = []
        self.instance_policies: list[Any] = []
        self._ids = 0
        self._conn_ids = 0
        self._next_id = next_id
        self._emit = emit

    def next_id(self) -> int:
        if self._next_id is not None:
            return self._next_id()
        self._ids += 1
        return self._ids

    def open_connection(self, client: str, server: str, frame: int, ts: float,
                        conn_id: int | None = None,
                        midstream: bool = False) -> DicomwebConnection:
        """A new HTTP connection; feed ``result.http.directions[0/1]`` with client/server
        bytes (they are TCP sinks: ``feed``, ``gap``, ``close``) and call
        ``close_connection`` at its end."""
        if conn_id is None:
            self._conn_ids += 1
            conn_id = self._conn_ids
        from .analyzer import DicomwebConnection  # h11 and pydicom: loaded when HTTP is seen

        info = HttpConnectionInfo(conn_id, client, server)
        info.first_frame, info.start = frame, ts
        return DicomwebConnection(self, info, midstream)

    def close_connection(self, conn: DicomwebConnection, how: str, frame: int,
                         ts: float) -> None:
        conn.close(how, frame, ts)
        info = conn.info
        info.last_frame, info.end = frame, ts
        info.bytes = {"client": conn.http.requests.bytes_in,
                      "server": conn.http.responses.bytes_in}
        if self.keep:
            self.connections.append(info)
            self.closed.append(conn)
        for cb in self.on_connection:
            cb(info, conn.txns, conn.found)
        if not self.keep:
            conn.txns, conn.found = [], []

    def instance_factory(self, info: HttpConnectionInfo, txn: WebTransaction,
                         side: int) -> Callable[[int | None], Any] | None:
        """What a body reader calls for each instance it meets (None: nobody wants any)."""
        policies = self.instance_policies
        if not policies:
            return None

        def sink(part: int | None) -> Any:
            from .instances import Tee

            got = [s for p in policies
                   if (s := p.instance(info, txn, side, part)) is not None]
            return got[0] if len(got) == 1 else Tee(got) if got else None
        return sink

    def emit_transaction(self, info: HttpConnectionInfo, txn: WebTransaction) -> None:
        if self.keep:
            self.transactions.append(txn)
        for cb in self.on_transaction:
            cb(info, txn)

    def emit_finding(self, f: Finding) -> None:
        if self.keep:
            if len(self.findings) < self.max_findings:
                self.findings.append(f)
            else:
                self.findings_dropped += 1
        if self._emit is not None:
            self._emit(f)
        for cb in self.on_finding:
            cb(f)
