"""The columns of the associations and findings lists: cells as rich Text, sort keys.

Wire strings (AE titles, addresses) go into ``Text`` as plain characters: never markup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from dissectors.wiretext import shorten

from .. import units
from ..model import Association, Finding
from .store import FAILURE, OPEN, SUCCESS, WARNING, Store

STATE_STYLE = {SUCCESS: "green", WARNING: "yellow", FAILURE: "bold red", OPEN: "cyan"}
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
OUTCOME_TEXT = {"incomplete": "open"}  # while loading; "incomplete" once the capture ended


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int  # cells; the flexible column takes what is left, at least this
    align: str = "left"  # left | right
    flex: bool = False


# The column formatters, from the one set (dicomsniff/units.py).
clock, date = units.clock, units.date
duration = units.duration_short
size = units.size_short



# The addresses come last: on a narrow terminal they scroll off, what went wrong does not.
ASSOCIATION_COLUMNS = (
    Column("id", "#", 5, "right"),
    Column("start", "Start (UTC)", 12),
    Column("calling", "Calling AE", 16),
    Column("called", "Called AE", 16),
    Column("outcome", "Outcome", 12),
    Column("ops", "Operations", 18, flex=True),
    Column("failures", "Fail", 4, "right"),
    Column("findings", "Find", 4, "right"),
    Column("duration", "Duration", 9, "right"),
    Column("bytes", "Bytes", 8, "right"),
    Column("client", "Client", 21),
    Column("server", "Server", 21),
)


def association_cells(a: Association, store: Store) -> tuple[list[Text], str]:
    """The cells of one row and its state (success, warning, failure, open)."""
    s = store.summary(a)
    style = STATE_STYLE[s.state]
    outcome = a.outcome if store.finished or a.id in store.ended else "open"
    if a.outcome == "aborted" and a.abort:
        outcome = f"aborted/{str(a.abort.get('by', '?'))[:3]}"
    cells = [
        Text(str(a.id)),
        Text(clock(a.start)),
        Text(shorten(a.calling_ae or "?"), style="bold"),
        Text(shorten(a.called_ae or "?"), style="bold"),
        Text(outcome, style=style),
        Text(s.ops_text or "-"),
        Text(str(s.failures) if s.failures else "", style="bold red"),
        Text(str(s.findings) if s.findings else "",
             style=SEVERITY_STYLE.get(s.worst_finding or "", "")),
        Text(duration(a.duration)),
        Text(size(s.bytes) if s.bytes else "-"),
        Text(a.client),
        Text(a.server),
    ]
    return cells, s.state


def association_sort_key(column: str, store: Store) -> Callable[[Association], Any]:
    """Sort key of a column; ties keep capture order (the sort is stable on id order)."""
    summary = store.summary
    keys: dict[str, Callable[[Association], Any]] = {
        "id": lambda a: a.id,
        "start": lambda a: (a.start or 0.0, a.id),
        "calling": lambda a: (a.calling_ae or "").casefold(),
        "client": lambda a: a.client,
        "called": lambda a: (a.called_ae or "").casefold(),
        "server": lambda a: a.server,
        "outcome": lambda a: a.outcome,
        "ops": lambda a: summary(a).operations,
        "failures": lambda a: (summary(a).failures, summary(a).warnings),
        "findings": lambda a: summary(a).findings,
        "duration": lambda a: a.duration or 0.0,
        "bytes": lambda a: summary(a).bytes,
    }
    return keys[column]


FINDING_COLUMNS = (
    Column("severity", "Severity", 10),
    Column("code", "Code", 26),
    Column("association", "Assoc", 6, "right"),
    Column("frame", "Frame", 8, "right"),
    Column("message", "Message", 30, flex=True),
    Column("section", "Section", 14),
)


def finding_cells(f: Finding) -> tuple[list[Text], str]:
    state = {"error": FAILURE, "warning": WARNING}.get(f.severity, OPEN)
    return [
        Text(f.severity, style=SEVERITY_STYLE.get(f.severity, "")),
        Text(f.code),
        Text(f"#{f.association}" if f.association is not None else
             f"T{f.tls}" if f.tls is not None else "capture"),
        Text(str(f.frame) if f.frame is not None else "-"),
        Text(f.shown),
        Text(f.section or "", style="dim"),
    ], state


_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


def finding_sort_key(column: str) -> Callable[[Finding], Any]:
    keys: dict[str, Callable[[Finding], Any]] = {
        "severity": lambda f: _SEVERITY_RANK.get(f.severity, 3),
        "code": lambda f: f.code,
        "association": lambda f: f.association if f.association is not None else -1,
        "frame": lambda f: f.frame or 0,
        "message": lambda f: f.message,
        "section": lambda f: f.section or "",
    }
    return keys[column]
