"""Which associations a diagram shows: ``--association``, ``--ae``, ``--between``, ``--command``.

Different filters combine (all must hold); a repeated one widens (any of its values).
``--command C-MOVE`` also brings the associations that carry its sub-operations (the move SCP
calling the move destination while the C-MOVE runs), and ``--command N-ACTION`` on storage
commitment the association that brings its N-EVENT-REPORT back: that is the picture people
ask for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..model import Association, Transaction
from .labels import STORAGE_COMMITMENT

COMMANDS = ("C-ECHO", "C-STORE", "C-FIND", "C-GET", "C-MOVE", "N-EVENT-REPORT", "N-GET",
            "N-SET", "N-ACTION", "N-CREATE", "N-DELETE")


class SelectionError(Exception):
    """The selection names something the capture does not have; the message says what it has."""


@dataclass
class Selection:
    associations: list[Association]
    commands: frozenset[str] = frozenset()  # empty: every transaction
    related: set[int] = field(default_factory=set)  # shown whole (sub-associations)
    description: str = ""

    def shows(self, a: Association, t: Transaction) -> bool:
        return not self.commands or a.id in self.related or t.command in self.commands


def _host(endpoint: str) -> str:
    return endpoint.rsplit(":", 1)[0]


def _same(title: str | None, wanted: str) -> bool:
    return title is not None and title.strip().casefold() == wanted.strip().casefold()


def _seen(assocs: Sequence[Association], limit: int = 12) -> str:
    titles = sorted({t for a in assocs for t in (a.calling_ae, a.called_ae) if t})
    more = f", ... ({len(titles) - limit} more)" if len(titles) > limit else ""
    return ", ".join(titles[:limit]) + more if titles else "none"


def _as_seen(assocs: Sequence[Association], wanted: str) -> str:
    """An AE title as the wire spelled it (matching ignores case; the subtitle must not)."""
    for a in assocs:
        for title in (a.calling_ae, a.called_ae):
            if _same(title, wanted):
                return (title or wanted).strip()
    return wanted


def _ids(assocs: Sequence[Association]) -> str:
    ids = [a.id for a in assocs]
    return f"#{ids[0]}" if len(ids) == 1 else f"#{min(ids)}-#{max(ids)}"


def _related(t: Transaction, a: Association, assocs: Sequence[Association]) -> list[int]:
    """Associations that belong to ``t``: C-MOVE sub-operations, storage commitment reports."""
    out: list[int] = []
    if t.command == "C-MOVE":
        known = {b.id for b in assocs}
        out.extend(i for i in t.sub_associations if i in known)  # analysis/moves.py links them
    elif (t.command == "N-ACTION" and t.sop_class == STORAGE_COMMITMENT
          and t.request_time is not None):
        for b in assocs:
            if (b is not a and _same(b.calling_ae, a.called_ae or "")
                    and _same(b.called_ae, a.calling_ae or "") and b.start is not None
                    and b.start >= t.request_time
                    and any(x.command == "N-EVENT-REPORT" and x.sop_class == t.sop_class
                            for x in b.transactions)):
                out.append(b.id)
                break
    return out


def select(assocs: Sequence[Association], *, ids: Sequence[int] = (),
           aes: Sequence[str] = (), between: Sequence[str] | None = None,
           commands: Sequence[str] = ()) -> Selection:
    """Apply the filters; raise :class:`SelectionError` when one matches nothing."""
    if not assocs:
        raise SelectionError("no DICOM association in the capture")
    chosen = list(assocs)
    what: list[str] = []
    if ids:
        known = {a.id for a in assocs}
        missing = [i for i in ids if i not in known]
        if missing:
            raise SelectionError(f"no association #{missing[0]}: the capture has "
                                 f"associations {_ids(assocs)}")
        chosen = [a for a in chosen if a.id in set(ids)]
        what.append("association " + ", ".join(f"#{i}" for i in ids))
    if aes:
        chosen = [a for a in chosen
                  if any(_same(a.calling_ae, t) or _same(a.called_ae, t) for t in aes)]
        if not chosen:
            names = " or ".join(repr(t) for t in aes)
            raise SelectionError(f"no association with AE title {names} in the selection; "
                                 f"AE titles seen: {_seen(assocs)}")
        what.append("AE " + ", ".join(_as_seen(chosen, t) for t in aes))
    if between:
        t1, t2 = between
        chosen = [a for a in chosen
                  if (_same(a.calling_ae, t1) and _same(a.called_ae, t2))
                  or (_same(a.calling_ae, t2) and _same(a.called_ae, t1))]
        if not chosen:
            raise SelectionError(f"no association between {t1!r} and {t2!r} in the selection;"
                                 f" AE titles seen: {_seen(assocs)}")
        what.append(f"between {_as_seen(chosen, t1)} and {_as_seen(chosen, t2)}")
    wanted = frozenset(c.upper() for c in commands)
    related: set[int] = set()
    if wanted:
        hits = [a for a in chosen if any(t.command in wanted for t in a.transactions)]
        if not hits:
            seen = sorted({t.command for a in chosen for t in a.transactions})
            raise SelectionError(f"no {' or '.join(sorted(wanted))} in the selected "
                                 f"associations; commands seen: {', '.join(seen) or 'none'}")
        for a in hits:
            for t in a.transactions:
                if t.command in wanted:
                    related.update(_related(t, a, assocs))
        hit_ids = {a.id for a in hits}
        related -= hit_ids
        chosen = [a for a in assocs if a.id in hit_ids or a.id in related]
        what.append(", ".join(sorted(wanted)) + (" with related associations" if related else ""))
    return Selection(chosen, wanted, related, "; ".join(what))
