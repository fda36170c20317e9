"""DIMSE messages from PDV fragments (PS3.8 annex E, PS3.7 section 6.3).

One assembler per direction of an association. It joins command fragments (bounded), decodes the
command set, and follows the data set by counting: the data set is a reference (context,
length, first and last frame), never bytes.

PS3.8 E.1 forbids interleaving fragments of different messages on an association; a peer that
does it anyway is still decoded (state is kept per presentation context) and reported.
"""

from __future__ import annotations

from dissectors._plain import Record

from ..ul.events import DataComplete, PdvBytes, PdvCommand, PdvData, PdvDataRun, StreamGap
from .command import NO_DATASET, decode_command

DEFAULT_MAX_COMMAND_BYTES = 1 << 16
# Command sets the fused path has met, by their bytes: (elements, Command Field, a data set
# announced). Identical command sets recur (every pending C-FIND-RSP of a query): each is
# decoded and judged once. Bounded like decode_command's own table; the dict is read-only.
_WHOLE: dict[bytes, tuple[dict[str, object], int, bool]] = {}
_WHOLE_MAX = 512


class Message(Record):
    """A DIMSE message: decoded command set plus a reference to its data set."""

    context_id: int
    command: dict[str, object]
    command_field: int
    frame: int
    ts: float
    first_frame: int
    expects_dataset: bool
    dataset_bytes: int = 0
    dataset_fragments: int = 0
    dataset_first_frame: int | None = None
    dataset_last_frame: int | None = None
    end_ts: float | None = None
    complete: bool = False
    partial: bool = False
    problems: list[tuple[str, str]] | tuple[()] = ()  # a list when there are any
    dataset_missing: int = 0
    # The consumer's object for this message (the tracker's transaction), so that it finds it
    # again when the message completes without a lookup table.
    owner: object | None = None
    # While its data set arrives: the DatasetSink its bytes go to (None: only counted).
    sink: object | None = None


class _Fragments(Record):
    """A command set arriving in several fragments (the message is made when it is whole)."""

    cmd: bytearray
    first_frame: int


class DatasetSink:
    """What an export gives to receive a message's data set bytes (see ``want_dataset``)."""

    def write(self, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self, partial: bool) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class MessageAssembler:
    """Turns one direction's PDV events into ``(kind, Message)`` outputs.

    ``kind`` is "command" when a command set completes (the request/response is known) and
    "complete" when the whole message, data set included, has arrived. ``problems`` collects
    (frame, code, message) for findings.
    """

    __slots__ = ("out", "problems", "_pending", "_current", "max_command_bytes", "want_dataset",
                 "observe")

    def __init__(self, max_command_bytes: int = DEFAULT_MAX_COMMAND_BYTES) -> None:
        # Set by the owner's data set collection: called with a Message whose command set just
        # completed and which announced a data set; returns a DatasetSink for its bytes, or None.
        self.want_dataset = None
        # Set by the same: called with every Message whose command set completed (after
        # want_dataset), data set or not.
        self.observe = None
        self.out: list[tuple[str, Message]] = []
        self.problems: list[tuple[int, str, str]] = []
        # per presentation context, the message in progress: its command fragments so far, or
        # (command set whole) the Message whose data set is awaited
        self._pending: dict[int, _Fragments | Message] = {}
        self._current: int | None = None  # context of the message in progress
        self.max_command_bytes = max_command_bytes

    def _check_interleave(self, ctx: int, frame: int) -> None:
        cur = self._current
        if cur is not None and cur != ctx and cur in self._pending:
            self.problems.append((frame, "DIMSE-INTERLEAVED",
                                  f"a fragment for presentation context {ctx} arrived while a "
                                  f"message on context {cur} was incomplete: PS3.8 E.1 forbids "
                                  "interleaving messages"))
        self._current = ctx

    def on_command(self, e: PdvCommand) -> None:
        ctx = e.context_id
        self._check_interleave(ctx, e.frame)
        p = self._pending.get(ctx)
        if type(p) is Message:
            # A new command while the previous message still expected its data set.
            prev = p
            self.problems.append((e.frame, "DIMSE-DATASET-MISSING",
                                  f"message {prev.command.get('MessageID', '?')} announced a data "
                                  "set but the next command started before it ended"))
            prev.partial = True
            self._finish(ctx, prev, e.frame, e.ts)
            p = None
        if p is None:
            if e.last:  # the common case: a whole command set in one fragment, no copy
                self._command_set(ctx, e.value, e.frame, e)
                return
            p = _Fragments(bytearray(), e.frame)
            self._pending[ctx] = p
        if len(p.cmd) + len(e.value) > self.max_command_bytes:
            self.problems.append((e.frame, "DIMSE-CMD-SIZE",
                                  f"command set over {self.max_command_bytes} bytes; dropped"))
            del self._pending[ctx]
            return
        p.cmd += e.value
        if not e.last:
            return
        del self._pending[ctx]
        self._command_set(ctx, bytes(p.cmd), p.first_frame, e)

    def _command_set(self, ctx: int, raw: bytes, first_frame: int, e: PdvCommand) -> None:
        """A command set is complete: decode it and start following its data set."""
        cmd, problems = decode_command(raw)
        cf = cmd.get("CommandField")
        if problems:
            for code, text in problems:
                self.problems.append((e.frame, code, text))
        if not isinstance(cf, int):
            self.problems.append((e.frame, "DIMSE-CMD-NOFIELD",
                                  "command set without a Command Field (0000,0100)"))
            return
        dst = cmd.get("CommandDataSetType")
        expects = dst is not None and dst != NO_DATASET
        msg = Message(ctx, cmd, cf, e.frame, e.ts, first_frame, expects)
        if problems:
            msg.problems = list(problems)
        out = self.out
        out.append(("command", msg))
        if expects:
            self._pending[ctx] = msg
            if self.want_dataset is not None:
                msg.sink = self.want_dataset(msg)
            if self.observe is not None:
                self.observe(msg)
        else:
            if self.observe is not None:
                self.observe(msg)
            msg.complete = True
            msg.end_ts = e.ts
            out.append(("complete", msg))
            if self._current == ctx:
                self._current = None

    # -- the fused path: the common case without the ``out`` queue ------------------------
    def whole_command(self, e: PdvCommand) -> Message | None:
        """A command set in one fragment with no message in progress on any context (the
        common case): decoded and returned at once, without the ``out`` queue; the caller
        handles it as ``("command", m)`` and, if ``m.complete`` (no data set announced), as
        ``("complete", m)`` too. None, with nothing done, when anything is unusual (a
        fragment, a message in progress, a problem in the command set): then
        :meth:`on_command`. Same results as :meth:`on_command` (tests/test_fused_path.py)."""
        if not e.last or self._pending:
            return None
        raw = e.value
        known = _WHOLE.get(raw)
        if known is None:
            cmd, problems = decode_command(raw)
            cf = cmd.get("CommandField")
            if problems or not isinstance(cf, int):
                return None
            dst = cmd.get("CommandDataSetType")
            known = (cmd, cf, dst is not None and dst != NO_DATASET)
            if len(_WHOLE) >= _WHOLE_MAX:
                _WHOLE.clear()
            _WHOLE[raw] = known
        cmd, cf, expects = known
        ctx = e.context_id
        msg = Message(ctx, cmd, cf, e.frame, e.ts, e.frame, expects)
        if expects:
            self._current = ctx
            self._pending[ctx] = msg
            if self.want_dataset is not None:
                msg.sink = self.want_dataset(msg)
            if self.observe is not None:
                self.observe(msg)
        else:
            if self.observe is not None:
                self.observe(msg)
            msg.complete = True
            msg.end_ts = e.ts
            self._current = None
        return msg

    def data_done(self, e: DataComplete) -> Message | None:
        """The data set of the message in progress on ``e``'s context ended, nobody collects
        it: the message, complete, returned at once (the caller handles it as
        ``("complete", m)``). None, with nothing done, otherwise: then
        :meth:`on_data_complete`."""
        ctx = e.context_id
        m = self._pending.get(ctx)
        if type(m) is not Message or m.sink is not None:
            return None
        partial = m.partial or e.partial
        m.partial = partial
        m.dataset_last_frame = e.frame
        m.end_ts = e.ts
        m.complete = not partial
        del self._pending[ctx]
        if self._current == ctx:
            self._current = None
        return m

    def on_data(self, e: PdvData) -> None:
        ctx = e.context_id
        if self._current != ctx:
            self._check_interleave(ctx, e.frame)
        m = self._pending.get(ctx)
        if type(m) is not Message:
            what = "before any command" if m is None else "before its command set was complete"
            self.problems.append((e.frame, "DIMSE-DATA-ORPHAN",
                                  f"data set fragment on context {ctx} {what} (PS3.7 6.3.1)"))
            return
        m.dataset_bytes += e.length
        m.dataset_fragments += 1
        if m.dataset_first_frame is None:
            m.dataset_first_frame = e.frame

    def on_data_run(self, e: PdvDataRun) -> None:
        """:meth:`on_data` for each fragment of a run, summed where that is the same: the
        message in progress on the run's context takes them all; anything else (no such
        message, another context in progress) one by one."""
        ctx = e.context_id
        m = self._pending.get(ctx)
        if self._current != ctx or type(m) is not Message:
            for d in e.each():
                self.on_data(d)
            return
        m.dataset_bytes += e.length
        m.dataset_fragments += e.fragments
        if m.dataset_first_frame is None:
            m.dataset_first_frame = e.first_frame

    def on_bytes(self, e: PdvBytes) -> None:
        m = self._pending.get(e.context_id)
        if type(m) is Message and m.sink is not None:
            m.sink.write(e.data)  # type: ignore[attr-defined]

    def on_data_complete(self, e: DataComplete) -> None:
        m = self._pending.get(e.context_id)
        if type(m) is not Message:
            return
        m.partial = m.partial or e.partial
        self._finish(e.context_id, m, e.frame, e.ts)

    def _finish(self, ctx: int, m: Message, frame: int, ts: float) -> None:
        m.dataset_last_frame = frame
        m.end_ts = ts
        m.complete = not m.partial
        p = self._pending.pop(ctx, None)
        if type(p) is Message and p.sink is not None:
            sink, p.sink = p.sink, None  # the message outlives its data set's sink
            sink.close(m.partial)  # type: ignore[attr-defined]
        if self._current == ctx:
            self._current = None
        self.out.append(("complete", m))

    def on_gap(self, e: StreamGap) -> None:
        """Bytes were lost: messages whose framing was lost end as partial. The lost bytes are
        counted against the data set in progress (exactly when the gap fell inside one
        fragment; at least that many when the framing was lost too)."""
        cur = self._current
        p = self._pending.get(cur) if cur is not None else None
        if type(p) is Message and p.expects_dataset:
            p.dataset_missing += e.missing
        if not e.resynchronised:
            return
        for ctx, p in list(self._pending.items()):
            if type(p) is Message:
                p.partial = True
                self._finish(ctx, p, e.frame, e.ts)
        self._pending.clear()
        self._current = None

    def close(self, frame: int, ts: float) -> None:
        """End of stream: report messages whose data set never ended."""
        for ctx, p in list(self._pending.items()):
            if type(p) is Message:
                p.partial = True
                self._finish(ctx, p, frame, ts)
        self._pending.clear()
