"""What ``analyze`` keeps: associations and transactions chosen by AE, id, command, status and
time, the same words ``live`` and ``diagram`` use.

An association is kept when every given criterion can hold for it: its AE titles (calling or
called, case-insensitive), its id, its time span overlapping the window, and, when commands or
statuses are asked for, at least one transaction that matches them all. Inside a kept
association only the matching transactions are listed; its findings stay (they explain it).
Decided as each association ends, so memory stays flat.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..model import Association, Transaction

STATUSES = ("success", "warning", "failure", "pending", "cancel", "none")
_CATEGORY = {"success": "Success", "warning": "Warning", "failure": "Failure",
             "pending": "Pending", "cancel": "Cancel", "none": None}
# a pattern, compiled by re's cache on first use: not at every start (a selection is rare)
_DURATION = r"\+(\d+(?:\.\d+)?)(ms|s|m|h)?"
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_time(text: str, *, local: bool = False) -> tuple[str, float]:
    """A time window bound: ``("abs", epoch)`` for an ISO date-time, ``("tod", seconds)`` for
    a time of day (on the capture's first day), ``("rel", seconds)`` for ``+30s`` / ``+10m``
    after the capture's first packet. ValueError with a sentence otherwise."""
    s = text.strip()
    m = re.fullmatch(_DURATION, s)
    if m:
        return "rel", float(m.group(1)) * _SCALE[m.group(2)]
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d+)?))?", s)
    if m:
        h, mi, sec = int(m.group(1)), int(m.group(2)), float(m.group(3) or 0)
        if h > 23 or mi > 59 or sec >= 61:
            raise ValueError(f"not a time of day: {text!r}")
        return "tod", h * 3600 + mi * 60 + sec
    import datetime as _dt  # only for a date-time bound: not at every start

    try:
        when = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use 2026-11-25T07:50:12, 07:50:12 or "
                         "+90s after the capture's start)") from None
    if when.tzinfo is None:
        when = when.astimezone() if local else when.replace(tzinfo=_dt.timezone.utc)
    return "abs", when.timestamp()


class AnalyzeSelection:
    """The selection options of ``analyze``. A plain class, not a dataclass: ``dataclasses``
    (and the ``inspect`` it imports) would cost every ``analyze`` run 4 ms of start-up."""

    __slots__ = ("aes", "ids", "commands", "statuses", "since", "until", "local", "_t0")

    def __init__(self, aes: Sequence[str] = (), ids: Sequence[int] = (),
                 commands: Sequence[str] = (), statuses: Sequence[str] = (),
                 since: tuple[str, float] | None = None, until: tuple[str, float] | None = None,
                 local: bool = False) -> None:
        self.aes, self.ids, self.commands, self.statuses = aes, ids, commands, statuses
        self.since, self.until, self.local = since, until, local
        self._t0: float | None = None

    @property
    def empty(self) -> bool:
        return not (self.aes or self.ids or self.commands or self.statuses or self.since
                    or self.until)

    def describe(self) -> str:
        parts = []
        if self.ids:
            parts.append("association " + ", ".join(f"#{i}" for i in self.ids))
        if self.aes:
            parts.append("AE " + ", ".join(self.aes))
        if self.commands:
            parts.append(", ".join(c.upper() for c in self.commands))
        if self.statuses:
            parts.append("status " + ", ".join(self.statuses))
        if self.since or self.until:
            parts.append("time window")
        return "; ".join(parts)

    # -- time --------------------------------------------------------------------------------
    def first_time(self, ts: float | None) -> None:
        """The capture's first packet time (relative and time-of-day bounds need it)."""
        if self._t0 is None and ts is not None:
            self._t0 = ts

    def _bound(self, b: tuple[str, float] | None) -> float | None:
        if b is None:
            return None
        kind, v = b
        if kind == "abs":
            return v
        t0 = self._t0
        if t0 is None:
            return None
        if kind == "rel":
            return t0 + v
        import datetime as _dt

        zone = None if self.local else _dt.timezone.utc
        day = _dt.datetime.fromtimestamp(t0, zone).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)
        return day.timestamp() + v

    # -- decisions ---------------------------------------------------------------------------
    def _in_window(self, start: float | None, end: float | None) -> bool:
        lo, hi = self._bound(self.since), self._bound(self.until)
        start = start if start is not None else end
        end = end if end is not None else start
        if start is None:
            return lo is None and hi is None
        return (lo is None or end >= lo) and (hi is None or start <= hi)

    def transaction(self, t: Transaction) -> bool:
        if self.commands and t.command not in {c.upper() for c in self.commands}:
            return False
        if self.statuses:
            wanted = {_CATEGORY[s] for s in self.statuses}
            if t.status_category not in wanted:
                return False
        if (self.since or self.until) and not self._in_window(
                t.request_time, t.response_time or t.request_time):
            return False
        return True

    def transactions(self, a: Association) -> list[Transaction]:
        if not (self.commands or self.statuses or self.since or self.until):
            return list(a.transactions)
        return [t for t in a.transactions if self.transaction(t)]

    def association(self, a: Association, retired_match: bool = False) -> bool:
        """Keep ``a``? ``retired_match``: a transaction of it that already left
        ``a.transactions`` (engine Limits) matched :meth:`transaction`."""
        if self.ids and a.id not in self.ids:
            return False
        if self.aes:
            titles = {(x or "").strip().casefold() for x in (a.calling_ae, a.called_ae)}
            if not any(w.strip().casefold() in titles for w in self.aes):
                return False
        if (self.since or self.until) and not self._in_window(a.start, a.end):
            return False
        if self.commands or self.statuses:
            return retired_match or any(self.transaction(t) for t in a.transactions)
        return True
