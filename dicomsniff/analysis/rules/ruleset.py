"""Runs the registered checks: the one object the analysis engine talks to.

The engine builds it with what it needs injected (``emit`` for findings, the DICOM ports), and
subscribes it like any other: :meth:`RuleSet.association_started` and
:meth:`RuleSet.transaction` are hooks, :attr:`RuleSet.datasets` a data set collection policy
(the few data sets the rules read, :mod:`.datasets`). The engine calls
:meth:`RuleSet.association_closed` when an association ends, right before handing it to the
``on_association`` hooks (so rule findings are in the association when the report or the JSON
writer sees it), and :meth:`RuleSet.finish` once at the end of the capture for the
capture-wide checks. A few transport facts that only the engine sees (resets, FINs, zero
windows, refused connection attempts) come in through small methods called from its slow path
and, for zero windows, its fast path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dissectors.net import format_endpoint

from ...model import Association, Finding, Transaction
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
                 emit: Callable[[Finding], None] | None = None,
                 dicom_ports: Iterable[int] = ()) -> None:
        self.config = config or RuleConfig()
        self.state = CaptureState(self.config.max_tracked)
        self.state.dicom_ports = frozenset(dicom_ports)
        self.emit = emit or (lambda f: None)
        # association id -> collected data sets (bounded: a candidate that proves not to be
        # DICOM is dropped by the engine without an association_closed call)
        self._datasets: Bounded[int, dict] = Bounded(max(1024, self.config.max_tracked))
        self.datasets = datasets.RulesPolicy(self._datasets)
        self._facts: Bounded[int, ConnFacts] = Bounded(max(1024, self.config.max_tracked))
        self._finished = False
        # Which checks run (RuleConfig.scope): all, those of one association only (a shard),
        # or only those across associations (after the merge).
        scope = self.config.scope
        self.checks = [c for c in CHECKS if scope == "all" or c.cross == (scope == "cross")]
        # Every finished association's view, before its checks run (a shard records them
        # for the checks across associations, dicomsniff/parallel/local.py).
        self.on_view: list[Callable[[AssocView], None]] = []

    # -- hooks ------------------------------------------------------------------------------
    def association_started(self, a: Association) -> None:
        """``on_association_start``: the negotiation was answered (an association picked up
        mid-stream, whose negotiation nobody saw, is left out of the capture-wide memory)."""
        if a.accept_frame is None:
            return
        self.state.on_start(a)

    def transaction(self, a: Association, t: Transaction) -> None:
        """``on_transaction``."""
        self.state.on_transaction(t)

    # -- engine seams -----------------------------------------------------------------------
    def _conn_facts(self, conn: Any) -> ConnFacts | None:
        app = conn.app
        if app is None or app.protocol != "dicom":
            return None
        aid = app.assoc.id
        f = self._facts.get(aid)
        if f is None:
            f = ConnFacts()
            self._facts.put(aid, f)
        return f

    def tcp_end(self, conn: Any, side: int, flags: int, frame: int, ts: float) -> None:
        """A FIN or RST (engine ``_flags``): who ended the connection, or a refused attempt."""
        if flags & TCP_RST:
            if (conn.app is None and side == 1 and conn.syn_seen and conn.tcp is not None
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

    def zero_window(self, conn: Any, side: int, frame: int, times: int = 1) -> None:
        """``side`` advertised a zero receive window (seen on the engine's slow path), at
        ``frame`` and ``times - 1`` times after (the bare ACKs of a bulk run walked at once)."""
        facts = self._conn_facts(conn)
        if facts is not None:
            facts.zero_windows[side] += times
            if facts.zero_window_frames[side] is None:
                facts.zero_window_frames[side] = frame

    def association_closed(self, a: Association, how: str, tcp: Any,
                           counts: dict[str, int]) -> None:
        """Run the association checks on a finished association (``tcp``: its two
        reassemblers, ``counts``: the findings per code it already has)."""
        self.datasets.forget(a.id)
        view = AssocView(a, self.config, self.state, how, self._facts.pop(a.id, None),
                         self._datasets.pop(a.id, None) or {}, tcp)
        for cb in self.on_view:
            cb(view)
        self.run_association(view, counts)

    # -- running checks ---------------------------------------------------------------------
    def run_association(self, view: AssocView, counts: dict[str, int] | None = None) -> None:
        """The association checks on one view (also usable without an engine, in tests)."""
        counts = counts if counts is not None else {}
        meta = self.state.assocs.get(view.assoc.id)
        if meta is not None and view.lost:
            meta.lost = True  # (for the checks across associations)
        for chk in self.checks:
            if chk.phase != "association":
                continue
            for hit in self._run(chk, view):
                self._add(view.assoc, hit, counts)

    def finish(self) -> None:
        """End of capture: the capture-wide checks; their findings belong to no association."""
        if self._finished:
            return
        self._finished = True
        for chk in self.checks:
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
            import traceback  # only when a rule fails: not at start-up

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
