"""Which data sets the journey reads, and the sinks that read them.

Decided once per association, when its negotiation is answered (contexts known, no P-DATA
yet): storage contexts get a :class:`~.headers.HeaderReader` per C-STORE-RQ (the header only:
once it has what it wants the rest of the message passes uncopied); worklist, MPPS, Storage
Commitment, IAN, UPS and Print contexts get a :class:`~.decode.SmallSink` per message (bounded).
Every other context is left alone: its bytes are counted, never touched.

The wiring (``ULStream.collect_contexts``, ``collecting`` and the message assembler's
``want_dataset``) is the same one ``analysis/rules/datasets.py`` uses today; it lives in
:func:`watch` alone so that it becomes one call to the engine's public collection seam when
that lands (docs/architecture.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..uids import uid_name
from .decode import SmallSink, encoding
from .headers import HeaderReader

C_STORE_RQ = 0x0001
C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
# Image boxes carry pixels (N-SET of Basic Grayscale/Color Image Box): the journey only needs
# to know that they were set, which the command says.
IMAGE_BOXES = frozenset({"1.2.840.10008.5.1.1.4", "1.2.840.10008.5.1.1.4.1"})

MPPS = "1.2.840.10008.3.1.2.3.3"
COMMITMENT = "1.2.840.10008.1.20.1"
IAN = "1.2.840.10008.5.1.4.33"
WORKLIST = "1.2.840.10008.5.1.4.31"
UPS_PREFIX = "1.2.840.10008.5.1.4.34.6."
PRINT_PREFIX = "1.2.840.10008.5.1.1."

OnData = Callable[[Any, int, Any, Any], None]  # (association, side, message, sink)


def kind(abstract_syntax: str | None) -> str | None:
    """What the journey reads on a context: 'store', 'small' or None."""
    if not abstract_syntax:
        return None
    if abstract_syntax in (MPPS, COMMITMENT, IAN, WORKLIST) or abstract_syntax.startswith(
            (UPS_PREFIX, PRINT_PREFIX)):
        return "small"
    name = uid_name(abstract_syntax) or ""
    if name.endswith("Storage") and "Commitment" not in name:
        return "store"
    return None


class _Tee:
    """Two sinks for one data set (an export's and the journey's)."""

    __slots__ = ("a", "b")

    def __init__(self, a: Any, b: Any) -> None:
        self.a, self.b = a, b

    def write(self, data: bytes) -> None:
        self.a.write(data)
        self.b.write(data)

    def close(self, partial: bool) -> None:
        self.a.close(partial)
        self.b.close(partial)


class _Headers:
    """Per stream: switch collection off for the rest of a C-STORE once its header is read
    (when nobody else wants that message's bytes), and back on for the next message."""

    __slots__ = ("ul", "removed")

    def __init__(self, ul: Any) -> None:
        self.ul = ul
        self.removed: set[int] = set()

    def enough(self, ctx: int) -> None:
        ul = self.ul
        if ul.collect_data or ctx not in ul.collect_contexts:
            return
        ul.collect_contexts = frozenset(ul.collect_contexts) - {ctx}
        self.removed.add(ctx)
        if getattr(ul, "_pdv_ctx", ctx) == ctx:  # the fragment being read is this message's
            ul.collecting = False

    def again(self, ctx: int) -> None:
        if ctx in self.removed:
            self.removed.discard(ctx)
            self.ul.collect_contexts = frozenset(self.ul.collect_contexts) | {ctx}


def _want(assoc: Any, side: int, table: dict[int, tuple[str, str | None]],
          headers: _Headers, on_data: OnData, prev: Callable | None, m: Any) -> Any:
    other = prev(m) if prev is not None else None
    w = table.get(m.context_id)
    mine: Any = None
    if w is not None:
        what, ts = w
        if what == "store":
            if m.command_field == C_STORE_RQ:
                headers.again(m.context_id)
                implicit, little, deflated = encoding(ts)
                # Stop copying after the header only if no export wants this message's bytes.
                done = (functools.partial(_enough, headers, m.context_id) if other is None
                        else None)
                mine = _StoreSink(HeaderReader(not implicit, little, deflated, done),
                                  functools.partial(on_data, assoc, side, m), headers,
                                  m.context_id)
        else:
            cls = m.command.get("AffectedSOPClassUID") or m.command.get("RequestedSOPClassUID")
            if cls not in IMAGE_BOXES:
                mine = SmallSink(functools.partial(_small_closed, on_data, assoc, side, m, ts))
    if mine is None:
        return other
    return mine if other is None else _Tee(other, mine)


def _enough(headers: _Headers, ctx: int, reader: HeaderReader) -> None:
    headers.enough(ctx)


def _small_closed(on_data: OnData, assoc: Any, side: int, m: Any, ts: str | None,
                  sink: SmallSink) -> None:
    on_data(assoc, side, m, (sink, ts))


class _StoreSink:
    """The HeaderReader of one C-STORE, handing it over when the message ends."""

    __slots__ = ("reader", "deliver", "headers", "ctx")

    def __init__(self, reader: HeaderReader, deliver: Callable, headers: _Headers,
                 ctx: int) -> None:
        self.reader, self.deliver, self.headers, self.ctx = reader, deliver, headers, ctx

    def write(self, data: bytes) -> None:
        self.reader.write(data)

    def close(self, partial: bool) -> None:
        self.reader.close(partial)
        self.headers.again(self.ctx)
        self.deliver(self.reader)


def watch(conn: Any, on_data: OnData) -> None:
    """Collect what the journey reads on ``conn``'s association (called when its negotiation
    is answered, before any P-DATA)."""
    a = conn.tracker.assoc
    table: dict[int, tuple[str, str | None]] = {}
    for c in a.contexts.values():
        if not c.accepted:
            continue
        k = kind(c.abstract_syntax)
        if k is not None:
            table[c.id] = (k, c.transfer_syntax)
    if not table:
        return
    for side in (0, 1):
        ul = conn.ul[side]
        ul.collect_contexts = frozenset(ul.collect_contexts) | table.keys()
        asm = conn.tracker.asm[side]
        asm.want_dataset = functools.partial(_want, a, side, table, _Headers(ul), on_data,
                                             asm.want_dataset)
