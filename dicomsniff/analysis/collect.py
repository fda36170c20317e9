"""The data set collection seam: who gets the bytes of which data sets.

Data set bytes are counted, never copied, unless someone asks (DESIGN.md). Whoever wants some
(an export, ``show``, the query check, the rules that read MPPS and storage commitment data
sets) gives the Analyzer a :class:`CollectionPolicy` with ``Analyzer.collect(policy)``. For
each association the DICOM analyzer then builds one :class:`Collection`: it asks every policy
which presentation contexts to copy, once when the association starts (only its id and
addresses are known) and again when the negotiation is answered (AE titles and contexts known,
before any P-DATA); the upper-layer parsers copy the union. For each message with a data set it
asks every policy for a :class:`~dissectors.dimse.assembler.DatasetSink` and tees the bytes to
all that gave one. What one policy asks never depends on another's, nor on the order they were
given in. A sink with an ``enough`` attribute may end the copying of the rest of its data set
once it has what it needs, if every sink of that data set agrees (:class:`_Enough`: the study
journey reads the attributes before Pixel Data this way, never the image).
"""

from __future__ import annotations

from collections.abc import Collection as Collection_
from collections.abc import Sequence
from typing import Any

from dissectors.dimse.assembler import DatasetSink, Message

from ..model import Association

Contexts = bool | Collection_[int]  # True: every context; else those presentation context ids


class CollectionPolicy:
    """Base of a collection policy: override what you need (the defaults collect nothing)."""

    def contexts(self, association: Association, side: int) -> Contexts:
        """Whose data sets ``side`` (0 requestor, 1 acceptor) sends to copy."""
        return ()

    def dataset(self, association: Association, side: int,
                message: Message) -> DatasetSink | None:
        """A sink for the data set ``message`` announced (asked only for collected contexts,
        and for every context when any policy collects everything), or None."""
        return None

    def command(self, association: Association, side: int, message: Message) -> None:
        """Every command set of the association once decoded (after ``dataset``)."""

    def observes(self, association: Association) -> bool:
        """Whether :meth:`command` wants the command sets of ``association`` (asked once, when
        its analyzer is made: ``association.midstream`` is known then). A policy that needs
        them for some associations only says so here: the others then cost no call per
        message."""
        return True


class _Enough:
    """Sinks of one data set that may each say ``enough`` (a true attribute: they need no more
    of its bytes, e.g. a reader of the attributes before Pixel Data). Once every sink has, the
    parser stops copying the rest of that data set (``ULStream.pause``); it copies the next one
    again. Sinks without the attribute always want everything."""

    __slots__ = ("sinks", "stream", "ctx", "paused")

    def __init__(self, sinks: list[DatasetSink], stream: Any, ctx: int) -> None:
        self.sinks, self.stream, self.ctx, self.paused = sinks, stream, ctx, False

    def write(self, data: bytes) -> None:
        done = True
        for s in self.sinks:
            s.write(data)
            done = done and getattr(s, "enough", False)
        if done and not self.paused:
            self.paused = True
            self.stream.pause(self.ctx)

    def close(self, partial: bool) -> None:
        if self.paused:
            self.stream.resume(self.ctx)  # the next data set on this context is copied again
        for s in self.sinks:
            s.close(partial)


class _Tee:
    """One data set to several sinks."""

    __slots__ = ("sinks",)

    def __init__(self, sinks: list[DatasetSink]) -> None:
        self.sinks = sinks

    def write(self, data: bytes) -> None:
        for s in self.sinks:
            s.write(data)

    def close(self, partial: bool) -> None:
        for s in self.sinks:
            s.close(partial)


class Collection:
    """One association's data set collection: installed on its two parsers and assemblers.

    A side from which nothing is collected keeps no dispatcher at all, so an association
    nobody asked about costs nothing per message."""

    __slots__ = ("policies", "association", "streams", "assemblers", "observing", "wanted")

    def __init__(self, policies: Sequence[CollectionPolicy], association: Association,
                 streams: Sequence[Any], assemblers: Sequence[Any]) -> None:
        self.policies = tuple(policies)
        self.association = association
        self.streams = streams
        self.assemblers = assemblers
        # per side: None (nothing collected yet), True (every context) or the context ids
        self.wanted: list[Any] = [None, None]
        # Only policies that override command() are told about every command set, and only
        # of the associations they observe.
        self.observing = tuple(p for p in self.policies
                               if type(p).command is not CollectionPolicy.command
                               and p.observes(association))
        if self.observing:
            for side, asm in enumerate(assemblers):
                asm.observe = self._observer_for(side)
        self.refresh()

    def refresh(self) -> None:
        """Ask the policies (at the start, and again when the negotiation is answered):
        contexts are only ever added."""
        a = self.association
        for side, ul in enumerate(self.streams):
            everything = False
            ids: set[int] = set()
            for p in self.policies:
                what = p.contexts(a, side)
                if what is True:
                    everything = True
                elif what:
                    ids.update(what)
            if not everything and not ids:
                continue
            ul.collect(everything, ids)
            before = self.wanted[side]
            if before is True or everything:
                self.wanted[side] = True
            else:
                self.wanted[side] = (before or frozenset()) | frozenset(ids)
            if before is None:
                self.assemblers[side].want_dataset = self._sink_for(side)

    def _sink_for(self, side: int) -> Any:
        policies, a, wanted = self.policies, self.association, self.wanted

        def want(message: Message) -> DatasetSink | None:
            w = wanted[side]
            if w is not True and message.context_id not in w:
                return None
            sinks = [s for p in policies
                     if (s := p.dataset(a, side, message)) is not None]
            if not sinks:
                return None
            if all(hasattr(s, "enough") for s in sinks):
                return _Enough(sinks, self.streams[side], message.context_id)
            return sinks[0] if len(sinks) == 1 else _Tee(sinks)

        return want

    def _observer_for(self, side: int) -> Any:
        observing, a = self.observing, self.association

        def observe(message: Message) -> None:
            for p in observing:
                p.command(a, side, message)

        return observe
