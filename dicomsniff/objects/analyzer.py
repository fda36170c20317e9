"""An Analyzer that copies data set bytes only for the associations and contexts asked for.

``Analyzer(want_dataset=...)`` alone makes every upper-layer parser copy every data set byte.
Showing one query must not copy a night of images, so :class:`ObjectAnalyzer` asks a policy,
per association, whether to collect everything, some presentation contexts
(``ULStream.collect_contexts``) or nothing: once when the association starts (only its id is
known) and again when its negotiation is answered (AE titles and contexts known, before any
P-DATA). It can also report every command set as it is decoded, data set or not (``show``
prints the pending C-MOVE-RSPs too), through a thin MessageAssembler subclass.

These use the engine's private seams (``_start_dicom``, ``tracker.asm``), as
``export.wirelog`` does; a public per-association collection hook would let this drop them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from typing import Any, Protocol

from dissectors.dimse.assembler import DatasetSink, Message, MessageAssembler

from ..analysis.engine import Analyzer
from ..model import Association

Collect = bool | Collection[int]  # True: every context; a collection: those context ids


class Policy(Protocol):
    def collect(self, association: Association) -> Collect: ...

    def want_dataset(self, association: Association, side: int,
                     message: Message) -> DatasetSink | None: ...


class _ObservedAssembler(MessageAssembler):
    """Tells an observer about each command set once decoded (after ``want_dataset``)."""

    __slots__ = ("observer",)

    def __init__(self, observer: Callable[[Message], None]) -> None:
        super().__init__()
        self.observer = observer

    def on_command(self, e: Any) -> None:
        n = len(self.out)
        super().on_command(e)
        for kind, m in self.out[n:]:
            if kind == "command":
                self.observer(m)


class ObjectAnalyzer(Analyzer):
    """Analyzer whose data set collection follows ``policy``; ``on_message(a, side, m)``
    (optional) sees every command set of the associations the policy collects from."""

    def __init__(self, policy: Policy,
                 on_message: Callable[[Association, int, Message], None] | None = None,
                 **kw: Any) -> None:
        super().__init__(want_dataset=policy.want_dataset, **kw)
        self.policy = policy
        self.on_message = on_message
        self._streams: dict[int, tuple] = {}  # association id -> its two ULStreams, while open
        self.on_association_start.append(self._negotiated)

    def _start_dicom(self, conn: Any, **kw: Any) -> None:
        super()._start_dicom(conn, **kw)
        a = conn.tracker.assoc
        self._streams[a.id] = conn.ul
        self._apply(a, conn.ul)
        if self.on_message is not None:
            asm = []
            for side in (0, 1):
                m = _ObservedAssembler(functools.partial(self.on_message, a, side))
                m.want_dataset = functools.partial(self.policy.want_dataset, a, side)
                asm.append(m)
            conn.tracker.asm = tuple(asm)

    def _apply(self, a: Association, streams: tuple | None) -> None:
        if streams is None:
            return
        what = self.policy.collect(a)
        mine = frozenset() if isinstance(what, bool) else frozenset(what)
        for ul in streams:
            ul.collect_data = what is True
            # Added to, never replaced: the analysis rules collect a few contexts of their own.
            ul.collect_contexts = frozenset(ul.collect_contexts) | mine

    def _negotiated(self, a: Association) -> None:
        self._apply(a, self._streams.get(a.id))

    def _close(self, conn: Any, how: str, frame: int, ts: float) -> None:
        super()._close(conn, how, frame, ts)
        if conn.tracker is not None:
            self._streams.pop(conn.tracker.assoc.id, None)
