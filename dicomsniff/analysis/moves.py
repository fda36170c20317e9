"""C-MOVE <-> sub-association links, decided as the sub-association starts.

A C-MOVE's C-STOREs travel on an association that the move SCP opens to the move destination
(PS3.4 C.4.2.3). The link is made when that association's negotiation is answered, while the
C-MOVE is still outstanding, so both records carry it when they are written (JSON Lines are
streamed as associations end, and a sub-association usually ends before its C-MOVE's final
response). The rule is the one the sub-operation check uses (analysis/rules/retrieve.py): the
called AE is the move destination, the requestor is the move SCP (its AE title or its host),
and the C-MOVE has no final response yet.

Only public hooks and model objects are used: each open association's transaction list is
scanned once (an index per association remembers how far), so the cost is linear in the
number of transactions, however many sub-associations start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..model import Association, Transaction


def _host(endpoint: str) -> str:
    host = endpoint.rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") else host


class MoveLinker:
    """Subscribes to an Analyzer's association hooks; sets ``Transaction.sub_associations``
    and ``Association.move_transaction``.

    ``known(association)`` (its transactions so far) and ``done(transaction)`` (final response
    seen) default to the live objects; the merge of shards (parallel/local.py) replays the
    hooks over finished associations and gives what was true at each moment instead."""

    def __init__(self, known: Callable[[Association], list[Transaction]] | None = None,
                 done: Callable[[Transaction], bool] | None = None) -> None:
        # Open associations: how far their transactions were scanned, their outstanding C-MOVEs.
        self._open: dict[int, tuple[Association, list[int], list[Transaction]]] = {}
        self._known = known or (lambda a: a.transactions)
        self._done = done or (lambda t: t.done)

    def attach(self, analyzer: Any) -> MoveLinker:
        analyzer.on_association_start.append(self.started)
        analyzer.on_association.append(self.ended)
        return self

    def started(self, a: Association) -> None:
        if a.outcome != "rejected" and a.called_ae:
            self._link(a)
        self._open[a.id] = (a, [0], [])

    def ended(self, a: Association) -> None:
        self._open.pop(a.id, None)

    def _moves(self, a: Association, scanned: list[int], moves: list[Transaction]
               ) -> list[Transaction]:
        txns = self._known(a)
        for t in txns[scanned[0]:]:
            if t.command == "C-MOVE" and t.sent_by == "requestor" and t.move_destination:
                moves.append(t)
        scanned[0] = len(txns)
        done = self._done
        moves[:] = [t for t in moves if not done(t)]
        return moves

    def _link(self, sub: Association) -> None:
        dest = (sub.called_ae or "").strip()
        best: Transaction | None = None
        for a, scanned, moves in self._open.values():
            if a.id == sub.id or not (sub.calling_ae == a.called_ae
                                      or _host(sub.client) == _host(a.server)):
                continue
            for t in self._moves(a, scanned, moves):
                if (t.move_destination or "").strip() != dest:
                    continue
                if sub.start is not None and t.request_time is not None \
                        and t.request_time > sub.start:
                    continue
                if best is None or (t.request_time or 0) > (best.request_time or 0):
                    best = t  # the latest outstanding C-MOVE to that destination
        if best is not None:
            best.sub_associations.append(sub.id)
            sub.move_transaction = best.id
