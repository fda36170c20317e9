"""The top of the report: what went wrong, one line per finding code, worst first.

A night's capture can hold thousands of findings; the administrator first needs the few
distinct problems, how often each happened, where (which associations) and the first packet
to look at. The full messages stay in the association blocks and ``--findings-only``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rich import box
from rich.table import Table
from rich.text import Text

from ..model import Finding

_RANK = {"error": 0, "warning": 1, "info": 2}
_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


@dataclass
class DigestRow:
    code: str
    severity: str
    count: int = 0
    associations: set[int] = field(default_factory=set)
    capture_level: bool = False
    frame: int | None = None
    message: str = ""


def digest(findings: Iterable[Finding]) -> list[DigestRow]:
    """Findings grouped by code (worst severity of the code), worst and most frequent first."""
    rows: dict[str, DigestRow] = {}
    for f in findings:
        r = rows.get(f.code)
        if r is None:
            r = rows[f.code] = DigestRow(f.code, f.severity, message=f.message, frame=f.frame)
        elif _RANK.get(f.severity, 3) < _RANK.get(r.severity, 3):
            r.severity, r.message, r.frame = f.severity, f.message, f.frame
        r.count += 1
        if f.association is None:
            r.capture_level = True
        else:
            r.associations.add(f.association)
        if r.frame is None or (f.frame is not None and f.frame < r.frame
                               and f.severity == r.severity):
            r.frame = f.frame
    return sorted(rows.values(), key=lambda r: (_RANK.get(r.severity, 3), -r.count,
                                                r.frame or 0))


def _where(r: DigestRow) -> str:
    ids = sorted(r.associations)
    parts = [", ".join(f"#{i}" for i in ids[:4]) + (f" +{len(ids) - 4}" if len(ids) > 4 else "")]
    if r.capture_level:
        parts.append("capture")
    return " ".join(p for p in parts if p)


def digest_table(findings: Iterable[Finding], limit: int = 12) -> Table | None:
    """A compact table of :func:`digest`, or None when there is nothing to say."""
    rows = digest(findings)
    if not rows:
        return None
    t = Table(title="What went wrong (worst first)", title_justify="left", box=box.SIMPLE_HEAD,
              show_edge=False, pad_edge=False)
    t.add_column("severity")
    t.add_column("code", style="bold")
    t.add_column("count", justify="right")
    t.add_column("where")
    t.add_column("frame", justify="right")
    t.add_column("first occurrence", overflow="ellipsis", no_wrap=True, max_width=90)
    for r in rows[:limit]:
        t.add_row(Text(r.severity.upper(), style=_STYLE.get(r.severity, "")), r.code,
                  str(r.count), _where(r), "-" if r.frame is None else str(r.frame),
                  Text(r.message))
    if len(rows) > limit:
        t.add_row("", Text(f"... {len(rows) - limit} more codes", style="dim"), "", "", "", "")
    return t
