"""From a drawn ladder item back to the model: which association, transaction and message.

The diagram model speaks in labels and frame numbers; the detail pane needs objects. Every
message the model knows is indexed by its frame (A-ASSOCIATE, A-RELEASE, A-ABORT, requests,
responses, C-CANCEL); an item is resolved by its frame, its kind (read from the label's first
word) and, when several associations are drawn, the ``#N`` prefix of its label.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..export.sequence import Message, Note
from ..model import Association, Finding, Transaction

_HEAD = re.compile(r"^(?:#(\d+) )?(?:capture: )?(\S+)(?: x (\d+))?")


@dataclass
class Ref:
    """What one ladder item stands for."""

    kind: str  # associate-rq|associate-ac|associate-rj|release-rq|release-rp|abort|request|
    #            response|cancel|negotiation|finding|note
    association: Association | None
    transaction: Transaction | None = None
    frame: int | None = None
    side: int = 0  # who sent it: 0 the association requestor, 1 the acceptor
    response_index: int | None = None  # which response of the transaction
    run: list[Transaction] = field(default_factory=list)  # a collapsed run of exchanges
    count: int = 1  # how many messages a collapsed arrow stands for
    findings: list[Finding] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # the item's label


_Entry = tuple[str, Association, Transaction | None, int, int | None]


class Resolver:
    """Index of the model's messages by frame for the associations drawn."""

    def __init__(self, associations: Sequence[Association]) -> None:
        self.associations = list(associations)
        self.by_id = {a.id: a for a in associations}
        self.frames: dict[int, list[_Entry]] = {}
        for a in associations:
            self._index(a)

    def _add(self, frame: int | None, kind: str, a: Association, t: Transaction | None,
             side: int, k: int | None = None) -> None:
        if frame is not None:
            self.frames.setdefault(frame, []).append((kind, a, t, side, k))

    def _index(self, a: Association) -> None:
        self._add(a.request_frame, "associate-rq", a, None, 0)
        self._add(a.accept_frame, "associate-rj" if a.outcome == "rejected" else "associate-ac",
                  a, None, 1)
        for k, f in enumerate(a.release_frames[:2]):
            self._add(f, ("release-rq", "release-rp")[k], a, None, k)
        if a.abort:
            self._add(a.abort.get("frame"), "abort", a, None,
                      0 if a.abort.get("by") == "requestor" else 1)
        for t in a.transactions:
            s = 0 if t.sent_by == "requestor" else 1
            self._add(t.request_frame, "request", a, t, s)
            for k, f in enumerate(t.response_frames):
                self._add(f, "response", a, t, 1 - s, k)
            self._add(t.cancel_frame, "cancel", a, t, s)

    def resolve(self, item: Message | Note, previous: Ref | None = None) -> Ref:
        """The Ref of a diagram item; ``previous`` (the item above) places notes."""
        m = _HEAD.match(item.lines[0] if item.lines else "")
        hint = int(m.group(1)) if m and m.group(1) else None
        word = m.group(2) if m else ""
        count = int(m.group(3)) if m and m.group(3) else 1
        if hint is None and len(self.associations) == 1:
            hint = self.associations[0].id
        if isinstance(item, Note):
            return self._note(item, word, hint, previous)
        kind = _kind(word)
        entries = self.frames.get(item.frame or -1, [])
        pick = [e for e in entries if e[0] == kind and (hint is None or e[1].id == hint)]
        pick = pick or [e for e in entries if hint is None or e[1].id == hint] or entries
        if not pick:
            return Ref("note", self.by_id.get(hint or -1), frame=item.frame,
                       lines=list(item.lines), count=count)
        k, a, t, side, idx = pick[0]
        ref = Ref(k, a, t, item.frame, side, idx, count=count, lines=list(item.lines))
        if count > 1 and t is not None and k in ("request", "response"):
            ref.run = _run(a, t) if not (k == "response" and t.pending >= count) else [t]
        return ref

    def _note(self, item: Note, word: str, hint: int | None, previous: Ref | None) -> Ref:
        a = self.by_id.get(hint) if hint is not None else (
            previous.association if previous is not None else None)
        lines = list(item.lines)
        if word in ("ERROR", "WARNING", "INFO"):
            code = lines[0].split()[1 if not lines[0].startswith("#") else 2] if lines else ""
            pool = a.findings if a is not None else []
            found = [f for f in pool if f.code == code]
            return Ref("finding", a, frame=item.frame, findings=found, lines=lines)
        if "presentation context" in (lines[0] if lines else ""):
            return Ref("negotiation", a, frame=item.frame, lines=lines)
        return Ref("note", a, frame=item.frame, lines=lines)


def _kind(word: str) -> str:
    if word.startswith("A-ASSOCIATE-"):
        return "associate-" + word.rsplit("-", 1)[1].lower()
    if word in ("A-RELEASE-RQ", "A-RELEASE-RP"):
        return "release-" + word[-2:].lower()
    if word == "A-ABORT":
        return "abort"
    if word == "C-CANCEL-RQ":
        return "cancel"
    if word.endswith("-RSP"):
        return "response"
    if word.endswith("-RQ"):
        return "request"
    return "note"


def _run(a: Association, t: Transaction) -> list[Transaction]:
    """The block of same exchanges around ``t`` (what a collapsed arrow stands for)."""
    txns = a.transactions
    try:
        i = next(k for k, x in enumerate(txns) if x is t)
    except StopIteration:
        return [t]

    def same(x: Transaction) -> bool:
        return x.command == t.command and x.sent_by == t.sent_by and x.cancel_frame is None

    lo = i
    while lo > 0 and same(txns[lo - 1]):
        lo -= 1
    hi = i + 1
    while hi < len(txns) and same(txns[hi]):
        hi += 1
    return txns[lo:hi]
