"""Which data sets the journey reads, and the sinks that read them.

Decided once per association, when its negotiation is answered (contexts known, no P-DATA
yet): storage contexts get a :class:`~.headers.HeaderReader` per C-STORE-RQ (the header only:
once it has what it wants the rest of the message passes uncopied); worklist, MPPS, Storage
Commitment, IAN, UPS and Print contexts get a :class:`~.decode.SmallSink` per message (bounded).
Every other context is left alone: its bytes are counted, never touched.

:class:`JourneyPolicy` is a collection policy (``Analyzer.collect``, docs/architecture.md); a
header reader says ``enough`` once it has its attributes, and the parser stops copying the
rest of that C-STORE (unless an export wants it too).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..collect import CollectionPolicy
from .decode import SmallSink, encoding
from .headers import HeaderReader, SniffingReader
from .kinds import kind

C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
MAX_CUT = 64  # C-STOREs cut by the capture's start kept per association
# Image boxes carry pixels (N-SET of Basic Grayscale/Color Image Box): the journey only needs
# to know that they were set, which the command says.
IMAGE_BOXES = frozenset({"1.2.840.10008.5.1.1.4", "1.2.840.10008.5.1.1.4.1"})

OnData = Callable[[Any, int, Any, Any], None]  # (association, side, message, sink)


class StoreSink:
    """The HeaderReader of one C-STORE, handed over when the message ends; ``enough`` once
    the header is read (the parser may stop copying, see ``analysis.collect``)."""

    __slots__ = ("reader", "on_data", "association", "side", "message")

    def __init__(self, reader: HeaderReader, on_data: OnData, association: Any, side: int,
                 message: Any) -> None:
        self.reader, self.on_data = reader, on_data
        self.association, self.side, self.message = association, side, message

    @property
    def enough(self) -> bool:
        return self.reader.done

    def write(self, data: bytes) -> None:
        self.reader.write(data)

    def close(self, partial: bool) -> None:
        self.reader.close(partial)
        self.on_data(self.association, self.side, self.message, self.reader)


class JourneyPolicy(CollectionPolicy):
    """Headers of C-STOREs on storage contexts; whole small data sets on the journey's others.

    An association picked up mid-stream has no negotiation: every context is looked at, what
    to read is decided from the command's SOP class, the encoding told from the data set's
    first bytes (:class:`~.headers.SniffingReader`); a C-STORE-RSP answering a request sent
    before the capture is handed to ``on_cut`` (its data set was never seen: flagged, its
    study not guessed)."""

    def __init__(self, on_data: OnData,
                 on_cut: Callable[[Any, Any], None] | None = None) -> None:
        self.on_data = on_data
        self.on_cut = on_cut
        self.requests: dict[int, set[int]] = {}  # mid-stream association -> C-STORE-RQ ids

    def contexts(self, association: Any, side: int) -> Any:
        if association.midstream:
            return True
        return {c.id for c in association.contexts.values()
                if c.accepted and kind(c.abstract_syntax) is not None}

    def observes(self, association: Any) -> bool:
        return association.midstream  # a C-STORE-RSP whose request came before the capture

    def command(self, association: Any, side: int, message: Any) -> None:
        if not association.midstream:
            return
        cf = message.command_field
        seen = self.requests.get(association.id)
        if cf == C_STORE_RQ:
            if seen is None:
                seen = self.requests[association.id] = set()
            mid = message.command.get("MessageID")
            if isinstance(mid, int) and len(seen) < 65536:
                seen.add(mid)
        elif cf == C_STORE_RSP and self.on_cut is not None:
            mid = message.command.get("MessageIDBeingRespondedTo")
            if seen is None or mid not in seen:
                self.on_cut(association, message)

    def ended(self, association: Any) -> None:
        self.requests.pop(association.id, None)

    def dataset(self, association: Any, side: int, message: Any) -> Any:
        c = association.contexts.get(message.context_id)
        if c is None and association.midstream:
            return self._midstream(association, side, message)
        what = kind(c.abstract_syntax) if c is not None else None
        if what == "store":
            if message.command_field != C_STORE_RQ:
                return None
            implicit, little, deflated = encoding(c.transfer_syntax)
            return StoreSink(HeaderReader(not implicit, little, deflated), self.on_data,
                             association, side, message)
        if what == "small":
            cmd = message.command
            cls = cmd.get("AffectedSOPClassUID") or cmd.get("RequestedSOPClassUID")
            if cls in IMAGE_BOXES:
                return None
            return SmallSink(functools.partial(_small_closed, self.on_data, association, side,
                                               message, c.transfer_syntax))
        return None


    def _midstream(self, association: Any, side: int, message: Any) -> Any:
        cmd = message.command
        cls = cmd.get("AffectedSOPClassUID") or cmd.get("RequestedSOPClassUID")
        what = kind(cls) if isinstance(cls, str) else None
        if what == "store" and message.command_field == C_STORE_RQ:
            return StoreSink(SniffingReader(), self.on_data,  # type: ignore[arg-type]
                             association, side, message)
        if what == "small" and cls not in IMAGE_BOXES:
            return SmallSink(functools.partial(_small_closed, self.on_data, association, side,
                                               message, None))
        return None


def _small_closed(on_data: OnData, assoc: Any, side: int, m: Any, ts: str | None,
                  sink: SmallSink) -> None:
    on_data(assoc, side, m, (sink, ts))
