"""An Analyzer that copies data set bytes only for the associations and contexts asked for.

``Analyzer(want_dataset=...)`` alone makes every upper-layer parser copy every data set byte.
Showing one query must not copy a night of images, so :class:`ObjectAnalyzer` asks a policy,
per association, whether to collect everything, some presentation contexts or nothing: once
when the association starts (only its id is known) and again when its negotiation is answered
(AE titles and contexts known, before any P-DATA). It can also report every command set as it
is decoded, data set or not (``show`` prints the pending C-MOVE-RSPs too). All of it through
the engine's public collection seam, :meth:`Analyzer.collect`
(:mod:`dicomsniff.analysis.collect`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Protocol

from dissectors.dimse.assembler import DatasetSink, Message

from ..analysis.collect import CollectionPolicy
from ..analysis.engine import Analyzer
from ..model import Association

Collect = bool | Collection[int]  # True: every context; a collection: those context ids


class Policy(Protocol):
    def collect(self, association: Association) -> Collect: ...

    def want_dataset(self, association: Association, side: int,
                     message: Message) -> DatasetSink | None: ...


class _Adapter(CollectionPolicy):
    """An objects Policy (the same contexts for both sides) as a collection policy."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def contexts(self, association: Association, side: int) -> Collect:
        return self.policy.collect(association)

    def dataset(self, association: Association, side: int,
                message: Message) -> DatasetSink | None:
        return self.policy.want_dataset(association, side, message)


class _Observing(_Adapter):
    def __init__(self, policy: Policy,
                 on_message: Callable[[Association, int, Message], None]) -> None:
        super().__init__(policy)
        self.on_message = on_message

    def command(self, association: Association, side: int, message: Message) -> None:
        self.on_message(association, side, message)


class ObjectAnalyzer(Analyzer):
    """Analyzer whose data set collection follows ``policy``; ``on_message(a, side, m)``
    (optional) sees every command set, once decoded."""

    def __init__(self, policy: Policy,
                 on_message: Callable[[Association, int, Message], None] | None = None,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.policy = policy
        self.collect(_Adapter(policy) if on_message is None
                     else _Observing(policy, on_message))
