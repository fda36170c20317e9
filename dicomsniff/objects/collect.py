"""Find one transaction, then read its messages (command sets and data sets) back.

Two passes over the capture, so that nothing is copied until we know what to copy. The first
is a plain analysis (data sets counted, never copied) that stops at the transaction's final
response: it gives its association, presentation context, Message ID and frames. The second
collects data set bytes for that one presentation context of that one association
(``ULStream.collect_contexts`` through :class:`ObjectAnalyzer`) and stops once the last
message is complete. Showing a query never copies the images of the night around it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from dissectors.dimse.assembler import Message
from dissectors.dimse.command import is_response
from dissectors.dimse.status import category

from ..analysis.engine import Analyzer, Limits
from ..analysis.run import analyze_source
from ..model import Association, Transaction
from .analyzer import ObjectAnalyzer
from .spool import Spool

C_CANCEL_RQ = 0x0FFF
Progress = Callable[[int, int], None] | None


class TransactionNotFound(LookupError):
    """No transaction with that id; ``last`` is the highest id the capture has (0: none)."""

    def __init__(self, wanted: int, last: int) -> None:
        super().__init__(wanted, last)
        self.wanted, self.last = wanted, last


class _Stop(Exception):
    """Raised from a hook to end a pass early: everything needed has been seen."""


@dataclass
class Shown:
    """One DIMSE message of the transaction, in wire order."""

    side: int  # 0: sent by the association requestor
    message: Message
    data: Spool | None = None


@dataclass
class Collected:
    transaction: Transaction
    association: Association
    messages: list[Shown] = field(default_factory=list)
    reader_error: str | None = None


def locate(source: str, txn_id: int, *, ports: Iterable[int] = (),
           limits: Limits | None = None, progress: Progress = None
           ) -> tuple[Transaction, Association]:
    """First pass: the transaction and its association (raises TransactionNotFound)."""
    an = Analyzer(ports=ports, limits=limits, keep=False)
    found: dict[str, object] = {}
    last = [0]

    def on_txn(a: Association, t: Transaction) -> None:
        last[0] = max(last[0], t.id)
        if t.id == txn_id:
            found["t"] = t
            found["a"] = a
            raise _Stop

    an.on_transaction.append(on_txn)
    try:
        analyze_source(source, an, progress)
    except _Stop:
        pass
    t = found.get("t")
    if not isinstance(t, Transaction):
        raise TransactionNotFound(txn_id, last[0])
    a = found["a"]
    assert isinstance(a, Association)
    return t, a


class _Policy:
    """Collect the target transaction's context on its association; nothing elsewhere."""

    def __init__(self, t: Transaction, out: Collected) -> None:
        self.t, self.out = t, out
        self.req_side = 0 if t.sent_by == "requestor" else 1
        self.frames = set(t.response_frames)
        self.final = t.response_frames[-1] if t.done and t.response_frames else None
        self.sinks: dict[int, Spool] = {}

    def collect(self, a: Association) -> set[int]:
        return {self.t.context_id} if a.id == self.t.association else set()

    def _ours(self, side: int, m: Message) -> bool:
        t, cmd = self.t, m.command
        if m.context_id != t.context_id:
            return False
        if side == self.req_side:
            if m.command_field == C_CANCEL_RQ:
                return (cmd.get("MessageIDBeingRespondedTo") == t.message_id
                        and m.frame == t.cancel_frame)
            return (not is_response(m.command_field) and m.frame == t.request_frame
                    and cmd.get("MessageID") == t.message_id)
        return (is_response(m.command_field) and m.frame in self.frames
                and cmd.get("MessageIDBeingRespondedTo") == t.message_id)

    def _final(self, side: int, m: Message) -> bool:
        status = m.command.get("Status")
        return (side != self.req_side and m.frame == self.final and isinstance(status, int)
                and category(status) != "Pending")

    def want_dataset(self, a: Association, side: int, m: Message) -> Spool | None:
        if a.id != self.t.association or not self._ours(side, m):
            return None
        final = self._final(side, m)
        spool = Spool(on_close=self._finished if final else None)
        self.sinks[id(m)] = spool
        return spool

    def on_message(self, a: Association, side: int, m: Message) -> None:
        if a.id != self.t.association or not self._ours(side, m):
            return
        spool = self.sinks.pop(id(m), None)
        self.out.messages.append(Shown(side, m, spool))
        if spool is None and self._final(side, m):
            raise _Stop  # the final response, without a data set: nothing more to read

    def _finished(self, _spool: Spool) -> None:
        raise _Stop


def collect(source: str, t: Transaction, a: Association, *, ports: Iterable[int] = (),
            limits: Limits | None = None, progress: Progress = None) -> Collected:
    """Second pass: every message of ``t`` with its data set bytes."""
    out = Collected(t, a)
    policy = _Policy(t, out)
    an = ObjectAnalyzer(policy, on_message=policy.on_message, ports=ports, limits=limits,
                        keep=False)
    try:
        out.reader_error = analyze_source(source, an, progress).reader_error
    except _Stop:
        pass
    return out
