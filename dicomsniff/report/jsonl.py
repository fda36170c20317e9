"""JSON Lines output: the model, one record per line (the contract is in docs/json.md).

Records are written as each association finishes, so memory stays flat: an association
record, then its transactions, then its findings. Capture-level findings and one "summary"
record close the stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Any

from ..model import Association, Finding, Transaction
from .framerefs import add_frame_refs
from .spool import Spool

# One encoder for every record: json.dumps with these options builds a new one per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False,
                           default=str).encode


def _dump(rec: dict[str, Any]) -> str:
    return _ENCODE(rec)


class JsonLinesWriter:
    def __init__(self, out: IO[str], findings_only: bool = False,
                 selection: Any = None,
                 locate: Callable[[int], tuple[str, int] | None] | None = None) -> None:
        """``selection`` (report/selection.py): only the associations and transactions it
        keeps are written. ``locate(frame)``, given when the capture is several files, adds
        ``file``, ``file_frame`` and ``frame_refs`` to each record (report/framerefs.py)."""
        self.out = out
        self.findings_only = findings_only
        self.selection = selection if selection is not None and not selection.empty else None
        self.locate = locate
        self.records = 0
        self.spool = Spool()  # transactions retired before their association ended

    def _line(self, rec: dict[str, Any]) -> str:
        if self.locate is not None and rec.get("type") != "summary":
            add_frame_refs(rec, self.locate)
        return _dump(rec) + "\n"

    def _write(self, rec: dict[str, Any]) -> None:
        self.out.write(self._line(rec))
        self.records += 1

    def retire(self, a: Association, t: Transaction) -> None:
        """``Analyzer.on_retire``: a reported transaction leaves its (long) association; its
        line waits in the spool for the association's record, so the output is the same."""
        sel = self.selection
        if self.findings_only or (sel is not None and not sel.transaction(t)):
            return
        self.spool.add(a.id, self._line(t.to_record()))

    def association(self, a: Association) -> None:
        sel = self.selection
        if sel is not None and not sel.association(a, bool(self.spool.count.get(a.id))):
            self.spool.drop(a.id)
            return
        if not self.findings_only:
            self._write(a.to_record())
            self.records += self.spool.write_to(a.id, self.out)
            for t in (a.transactions if sel is None else sel.transactions(a)):
                self._write(t.to_record())
        for f in a.findings:
            self._write(f.to_record())

    def http_connection(self, connection: Any, transactions: list[Any],
                        findings: list[Finding]) -> None:
        """A DICOMweb HTTP connection as it ends: its record, transactions, findings
        (docs/dicomweb.md)."""
        if not self.findings_only:
            self._write(connection.to_record())
            for t in transactions:
                self._write(t.to_record())
        for f in findings:
            self._write(f.to_record())

    def finding(self, f: Finding) -> None:
        """Capture-level findings (association and TLS findings come with their record)."""
        if f.association is None and f.tls is None:
            self._write(f.to_record())

    def tls(self, session: Any) -> None:
        """A TLS connection (analysis/tls.py TLSSession), then its findings that belong to no
        association (a decrypted association's findings are written with it)."""
        if not self.findings_only:
            self._write(session.to_record())
        for f in session.findings:
            if f.association is None:
                self._write(f.to_record())

    def summary(self, rec: dict[str, Any]) -> None:
        rec = {k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()}
        self._write({"type": "summary", **rec})
        self.out.flush()
