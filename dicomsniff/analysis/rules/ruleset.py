"""Runs the registered checks: the one object the analysis engine talks to.

The engine calls :meth:`RuleSet.association_closed` when an association ends, right before
handing it to the ``on_association`` hooks (so rule findings are in the association when the
report or the JSON writer sees it), and :meth:`RuleSet.finish` once at the end of the capture
for the capture-wide checks. A few transport facts that only the engine sees (resets, FINs,
zero windows, refused connection attempts) come in through small methods called from its slow
path, never from the per-packet fast path.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from typing import Any

from dissectors.net import format_endpoint

from ...model import Association, Finding
from ..tracker import PER_CODE_CAP
from . import datasets
from .base import CHECKS, CODES, AssocView, Hit, RuleConfig, code
from .state import Bounded, CaptureState
from .transport import ConnFacts

RULE_FAILED = code("RULE-FAILED", "warning", None,
                   "a rule raised an exception (a dicomsniff bug): its findings are missing")

TCP_RST, TCP_FIN = 0x04, 0x01


class RuleSet:
    """The checks of :mod:`dicomsniff.analysis.rules` wired to one Analyzer (or to ``emit``)."""

    def __init__(self, config: RuleConfig | None = None,
                 emit: Callable[[Finding], None] | None = None) -> None:
        self.config = config or RuleConfig()
        self.state = CaptureState(self.config.max_tracked)
        self.emit = emit or (lambda f: None)
        # association id -> Connection while open (bounded: a candidate that proves not to be
        # DICOM is dropped by the engine without an association_closed call)
        self._conns: Bounded[int, Any] = Bounded(max(1024, self.config.max_tracked))
        self._datasets: dict[int, dict] = {}  # association id -> collected data sets
        self._facts: Bounded[int, ConnFacts] = Bounded(max(1024, self.config.max_tracked))
        self._finished = False

    def attach(self, analyzer: Any) -> RuleSet:
        """Follow ``analyzer``: its hooks feed the capture-wide memory; findings go to _emit."""
        from ..engine import WELL_KNOWN_PORTS

        self.emit = analyzer._emit
        self.state.dicom_ports = frozenset(WELL_KNOWN_PORTS) | frozenset(analyzer.ports)
        analyzer.on_association_start.append(self._negotiated)
        analyzer.on_transaction.append(self.state.on_transaction)
        return self

    # -- engine seams -----------------------------------------------------------------------
    def connection_started(self, conn: Any) -> None:
        """A connection became DICOM (its tracker exists)."""
        self._conns.put(conn.tracker.assoc.id, conn)

    def _negotiated(self, a: Association) -> None:
        self.state.on_start(a)
        conn = self._conns.get(a.id)
        if conn is not None and a.outcome != "rejected" and conn.ul is not None:
            datasets.watch(conn, self._datasets.setdefault(a.id, {}))

    def _conn_facts(self, conn: Any) -> ConnFacts | None:
        if conn.tracker is None:
            return None
        aid = conn.tracker.assoc.id
        f = self._facts.get(aid)
        if f is None:
            f = ConnFacts()
            self._facts.put(aid, f)
        return f

    def tcp_end(self, conn: Any, side: int, flags: int, frame: int, ts: float) -> None:
        """A FIN or RST (engine ``_flags``): who ended the connection, or a refused attempt."""
        if flags & TCP_RST:
            if (conn.tracker is None and side == 1 and conn.syn_seen and conn.tcp is not None
                    and conn.tcp[1].next_seq is None):
                # SYN answered by RST, no SYN-ACK: nothing listened on that port.
                self.state.refused_attempt(format_endpoint(conn.keys[0], 0),
                                           format_endpoint(conn.keys[0], 1), frame, ts)
                return
            facts = self._conn_facts(conn)
            if facts is not None and facts.rst is None:
                facts.rst, facts.rst_ts = (side, frame), ts
        elif flags & TCP_FIN:
            facts = self._conn_facts(conn)
            if facts is not None and facts.fin is None:
                facts.fin, facts.fin_ts = (side, frame), ts

    def zero_window(self, conn: Any, side: int, frame: int) -> None:
        """``side`` advertised a zero receive window (seen on the engine's slow path)."""
        facts = self._conn_facts(conn)
        if facts is not None:
            facts.zero_windows[side] += 1
            if facts.zero_window_frames[side] is None:
                facts.zero_window_frames[side] = frame

    def association_closed(self, conn: Any, how: str) -> None:
        """Run the association checks on ``conn``'s finished association."""
        a = conn.tracker.assoc
        self._conns.pop(a.id, None)
        view = AssocView(a, self.config, self.state, how, self._facts.pop(a.id, None),
                         self._datasets.pop(a.id, {}), conn.tcp)
        self.run_association(view, conn.tracker.code_counts)

    # -- running checks ---------------------------------------------------------------------
    def run_association(self, view: AssocView, counts: dict[str, int] | None = None) -> None:
        """The association checks on one view (also usable without an engine, in tests)."""
        counts = counts if counts is not None else {}
        for chk in CHECKS:
            if chk.phase != "association":
                continue
            for hit in self._run(chk, view):
                self._add(view.assoc, hit, counts)

    def finish(self) -> None:
        """End of capture: the capture-wide checks; their findings belong to no association."""
        if self._finished:
            return
        self._finished = True
        for chk in CHECKS:
            if chk.phase != "finish":
                continue
            for hit in self._run(chk, self.state, self.config):
                f = self._finding(hit, None)
                if f is not None:
                    self.emit(f)

    def _run(self, chk: Any, *args: Any) -> Iterable[Hit]:
        if set(chk.codes) <= self.config.disabled:
            return []
        try:
            return list(chk.func(*args))
        except Exception as exc:  # a rule bug must not lose the rest of the analysis
            where = traceback.extract_tb(exc.__traceback__)[-1]
            return [Hit(RULE_FAILED, f"rule {chk.name} failed: {type(exc).__name__}: {exc} "
                                     f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})")]

    def _finding(self, hit: Hit, assoc: int | None) -> Finding | None:
        if hit.code in self.config.disabled:
            return None
        c = CODES[hit.code]
        return Finding(hit.severity or c.severity, hit.code, hit.message, hit.frame, assoc,
                       hit.section or c.section, hit.frames)

    def _add(self, a: Association, hit: Hit, counts: dict[str, int]) -> None:
        f = self._finding(hit, a.id)
        if f is None:
            return
        n = counts.get(f.code, 0) + 1
        counts[f.code] = n
        if n > PER_CODE_CAP:
            return
        if n == PER_CODE_CAP:
            f.message += f" (further {f.code} findings on this association are counted, not listed)"
        a.findings.append(f)
        self.emit(f)
