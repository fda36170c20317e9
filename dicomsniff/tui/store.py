"""What the app knows so far: associations by id, their one-line summaries, every finding.

Fed by :class:`~dicomsniff.tui.feed.Batch` es; plain Python, no textual. A summary (operation
counts, failures, the row's colour) is computed once per association and recomputed only when
a batch touched that association.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..model import Association, Finding
from .feed import Batch

# Row states, worst last: the colour of a row in the associations list.
OPEN, SUCCESS, WARNING, FAILURE = "open", "success", "warning", "failure"
_RANK = {OPEN: 0, SUCCESS: 1, WARNING: 2, FAILURE: 3}


@dataclass(slots=True)
class Summary:
    """The numbers of one association row."""

    ops: Counter[str]
    failures: int
    warnings: int  # Warning, Cancel and unanswered requests
    findings: int
    worst_finding: str | None  # "error" | "warning" | "info"
    state: str
    bytes: int
    ops_text: str = ""

    @property
    def operations(self) -> int:
        return sum(self.ops.values())


def summarize(a: Association, ended: bool) -> Summary:
    """One row's numbers; ``ended``: the association is over (unanswered requests count)."""
    ops: Counter[str] = Counter()
    failures = warnings = 0
    for t in a.transactions:
        ops[t.command] += 1
        cat = t.status_category
        if cat == "Failure":
            failures += 1
        elif cat in ("Warning", "Cancel") or (ended and (cat is None or cat == "Pending")):
            warnings += 1
        so = t.suboperations
        if so and cat != "Pending":
            if (so.get("failed") or 0) > 0:
                failures += 1
            elif (so.get("warning") or 0) > 0:
                warnings += 1
    # A performance hint (PERF-*: Nagle/delayed-ACK waits, small PDUs) is no failure: it is
    # counted in the Find column but does not colour an otherwise successful row.
    sev = {f.severity for f in a.findings if not f.code.startswith("PERF-")}
    worst = next((s for s in ("error", "warning", "info") if s in sev), None)
    every = {f.severity for f in a.findings}
    worst_any = next((s for s in ("error", "warning", "info") if s in every), None)
    if a.outcome in ("rejected", "aborted") or failures or worst == "error":
        state = FAILURE
    elif warnings or worst == "warning" or a.outcome == "closed":
        state = WARNING
    elif not ended:
        state = OPEN
    else:
        state = SUCCESS
    ops_text = ", ".join(f"{n} {cmd}" for cmd, n in ops.most_common())
    return Summary(ops, failures, warnings, len(a.findings), worst_any, state,
                   a.bytes["requestor"] + a.bytes["acceptor"], ops_text)


TLS_ID_BASE = 1 << 40


class TLSRow:
    """One TLS connection in the associations list."""

    __slots__ = ("session", "id", "tls_id", "start", "end", "duration", "client", "server",
                 "outcome", "findings", "transactions", "bytes", "calling_ae", "called_ae",
                 "abort", "midstream", "state")

    def __init__(self, s: Any) -> None:
        self.session = s
        self.tls_id = s.id
        self.id = TLS_ID_BASE + s.id
        self.start, self.end = s.start, s.end
        self.duration = None if s.start is None or s.end is None else s.end - s.start
        self.client, self.server = s.client, s.server
        self.outcome = s.outcome
        self.findings = list(s.findings or ())
        self.transactions: tuple = ()
        self.bytes = {"requestor": (s.bytes or {}).get("client", 0),
                      "acceptor": (s.bytes or {}).get("server", 0)}
        self.calling_ae = self.called_ae = None
        self.abort = None
        self.midstream = bool(s.midstream)
        sev = {f.severity for f in self.findings}
        if s.outcome == "handshake_failed" or "error" in sev:
            self.state = FAILURE
        elif "warning" in sev or s.outcome == "encrypted":
            self.state = WARNING
        else:
            self.state = SUCCESS if s.outcome == "decrypted" else OPEN

    def what(self) -> str:
        """The Operations cell: version and suite, or the fatal alert that ended it."""
        s = self.session
        fatal = next((a for a in s.alerts or () if a["level"] == "fatal"), None)
        if fatal is not None:
            return f"{fatal['description']} ({fatal['by']})"
        if s.http_connection is not None:
            return f"{s.version} HTTPS (HTTP #{s.http_connection})"
        return " ".join(x for x in (s.version, s.cipher_suite) if x) or "no TLS answer"


@dataclass
class Store:
    """Associations and findings seen so far, in capture order of their start."""

    associations: dict[int, Association] = field(default_factory=dict)
    ended: set[int] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    studies: list[dict[str, Any]] = field(default_factory=list)  # the journey's study records
    summaries: dict[int, Summary] = field(default_factory=dict)
    # TLS connections that gave no association (tui/tlsrows.py), by their row id
    tls: dict[int, Any] = field(default_factory=dict)
    progress: tuple[int, int] | None = None
    finished: bool = False
    error: str | None = None
    frames: int = 0
    # DICOMweb (dicomsniff/dicomweb): HTTP connections by id, their transactions in order
    web_connections: dict[int, Any] = field(default_factory=dict)
    web_transactions: list[Any] = field(default_factory=list)
    web_ended: set[int] = field(default_factory=set)
    web_changed: bool = False

    def apply(self, batch: Batch) -> tuple[list[Association], set[int]]:
        """Take a batch in; returns (new associations, ids of associations that changed)."""
        new: list[Association] = []
        changed: set[int] = set()
        for a in (*batch.started, *batch.ended):
            if a.id not in self.associations:
                self.associations[a.id] = a
                new.append(a)
            changed.add(a.id)
        for a in batch.ended:
            self.ended.add(a.id)
        if batch.tls:
            for s in batch.tls:
                if s.association is None:  # a decrypted association is a row of its own
                    row = TLSRow(s)
                    self.tls[row.id] = row
                    new.append(row)  # type: ignore[arg-type]
        for t in batch.transactions:
            changed.add(t.association)
        for f in batch.findings:
            self.findings.append(f)
            if f.association is not None:
                changed.add(f.association)
        for conn, txn in batch.web:
            self.web_connections.setdefault(conn.id, conn)
            self.web_transactions.append(txn)
        for conn in batch.web_ended:
            self.web_connections.setdefault(conn.id, conn)
            self.web_ended.add(conn.id)
        if batch.web or batch.web_ended:
            self.web_changed = True
        self.studies.extend(batch.studies)
        for i in changed:
            self.summaries.pop(i, None)
        if batch.progress is not None:
            self.progress = batch.progress
        if batch.frames:
            self.frames = batch.frames
        if batch.finished:
            self.finished = True
            self.error = batch.error
            for a in self.associations.values():  # open at the end: "incomplete" now
                self.summaries.pop(a.id, None)
        return new, changed

    def summary(self, a: Association) -> Summary:
        s = self.summaries.get(a.id)
        if s is None:
            s = self.summaries[a.id] = summarize(a, a.id in self.ended or self.finished)
        return s

    def is_web(self, ident: int | None) -> bool:
        """Is ``ident`` an HTTP connection (ids are shared with associations)?"""
        return ident is not None and ident in self.web_connections

    def web_findings(self, txn: Any) -> list[Finding]:
        """The findings of ``txn``'s connection raised between its request and the end of its
        response (the frames the exchange spans)."""
        first = txn.request_frame or 0
        last = max([first, txn.request_end_frame or 0, *(txn.response_frames or [])])
        return [f for f in self.findings if f.association == txn.connection
                and f.frame is not None and first <= f.frame <= last]

    def get(self, ident: int | None) -> Association | None:
        return None if ident is None else self.associations.get(ident)

    def study_findings(self, uid: str) -> list[Finding]:
        """The journey findings about one study (they name it in ``uids``)."""
        return [f for f in self.findings
                if f.uids and f.uids.get("study_instance_uid") == uid]

    def counts(self) -> dict[str, int]:
        """Rows per state, for the status line."""
        c: Counter[str] = Counter(self.summary(a).state for a in self.associations.values())
        return dict(c)
