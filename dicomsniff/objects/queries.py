"""``show --check-queries``: C-FIND responses checked against their query, as findings.

One pass. Only the presentation contexts of query services are collected (their identifiers
are small; images on other contexts are counted, never copied). A request identifier is kept
until its C-FIND ends; each response is decoded, checked (:mod:`.matching`) and dropped, and
its problems are folded per key, so a key missing from 500 responses is one finding that says
so, with the first frames involved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dissectors.dimse.assembler import Message
from dissectors.wiretext import shown

from ..model import Association, Finding, Transaction
from ..uids import uid_name
from .decoding import decode
from .filters import Filters
from .matching import SECTION, check
from .spool import Spool

C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
UPS = "1.2.840.10008.5.1.4.34.6."  # Unified Procedure Step classes answer C-FIND too
MAX_FRAMES = 20  # frames listed per finding
RULE_WORDS = {"single": "single value matching", "uid-list": "list of UID matching",
              "wildcard": "wild card matching", "range": "range matching",
              "sequence": "sequence matching"}


def is_query_context(abstract_syntax: str | None) -> bool:
    name = uid_name(abstract_syntax) or ""
    return "FIND" in name or (abstract_syntax or "").startswith(UPS)


@dataclass
class _Query:
    identifier: Any
    frame: int
    responses: int = 0
    # (code, path, rule) -> (count, frames, first detail)
    problems: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)


@dataclass
class QueryChecker:
    """Policy for ObjectAnalyzer; ``emit`` receives each finding when its C-FIND ends."""

    emit: Callable[[Finding], None]
    filters: Filters = field(default_factory=Filters)
    only: Transaction | None = None  # check just this C-FIND
    redact: bool = False  # --anonymize: findings never quote values
    queries: int = 0
    responses: int = 0
    findings: int = 0
    _open: dict[tuple[int, int, Any], _Query] = field(default_factory=dict)

    def collect(self, a: Association) -> set[int]:
        if a.calling_ae is None or not self.filters.association(a):
            return set()
        if self.only is not None and a.id != self.only.association:
            return set()
        return {c.id for c in a.contexts.values() if is_query_context(c.abstract_syntax)}

    def want_dataset(self, a: Association, side: int, m: Message) -> Spool | None:
        if m.command_field not in (C_FIND_RQ, C_FIND_RSP) or not self.filters.association(a):
            return None
        if m.command_field == C_FIND_RQ and self.only is not None and (
                a.id != self.only.association or m.frame != self.only.request_frame):
            return None
        return Spool(on_close=lambda s: self._closed(a, side, m, s))

    def _closed(self, a: Association, side: int, m: Message, spool: Spool) -> None:
        pc = a.contexts.get(m.context_id)
        ds, problem, _ts = decode(spool, pc.transfer_syntax if pc else None)
        spool.discard()
        problem = shown(problem or "", 300)  # pydicom's words may quote the wire
        if m.command_field == C_FIND_RQ:
            if ds is not None:
                self._open[(a.id, side, m.command.get("MessageID"))] = _Query(ds, m.frame)
            else:
                self._finding(a, "warning", "QUERY-UNDECODABLE",
                              f"C-FIND-RQ identifier {problem}; its responses are not checked",
                              m.frame, [], "PS3.4 C.4.1.1.3.1")
            return
        q = self._open.get((a.id, 1 - side, m.command.get("MessageIDBeingRespondedTo")))
        if q is None:
            return
        q.responses += 1
        if ds is None:
            self._finding(a, "warning", "QUERY-UNDECODABLE",
                          f"C-FIND-RSP identifier {problem}", m.frame, [q.frame],
                          "PS3.4 C.4.1.1.3.2")
            return
        for p in check(q.identifier, ds):
            code = "QUERY-KEY-MISSING" if p.kind == "missing" else "QUERY-VALUE-MISMATCH"
            entry = q.problems.setdefault((code, p.path, p.rule), [0, [], p.detail])
            entry[0] += 1
            if len(entry[1]) < MAX_FRAMES:
                entry[1].append(m.frame)

    def on_transaction(self, a: Association, t: Transaction) -> None:
        if t.command != "C-FIND":
            return
        q = self._open.pop((t.association, 0 if t.sent_by == "requestor" else 1,
                            t.message_id), None)
        if q is None:
            return
        self.queries += 1
        self.responses += q.responses
        for (code, path, rule), (count, frames, detail) in q.problems.items():
            of = f"{count} of {q.responses} response{'s' if q.responses != 1 else ''}"
            if code == "QUERY-KEY-MISSING":
                text = (f"C-FIND #{t.id}: return key {path} is missing from {of} "
                        "(every key of the request must come back)")
                severity = "warning"
            else:
                detail = "values withheld (--anonymize)" if self.redact else detail
                text = (f"C-FIND #{t.id}: {path} does not match the query in {of} "
                        f"({RULE_WORDS.get(rule, rule)}: {detail})")
                severity = "error"
            self._emit(Finding(severity, code, text, frames[0], t.association,
                               SECTION[rule if code != "QUERY-KEY-MISSING" else "missing"],
                               [q.frame, *frames[1:]]))

    def _finding(self, a: Association, severity: str, code: str, text: str, frame: int,
                 frames: list[int], section: str) -> None:
        self._emit(Finding(severity, code, text, frame, a.id, section, frames))

    def _emit(self, f: Finding) -> None:
        self.findings += 1
        self.emit(f)
