"""The top of the report: what went wrong, one line per finding code, worst first.

A night's capture can hold thousands of findings; the administrator first needs the few
distinct problems, how often each happened, where (which associations) and the first packet
to look at. The full messages stay in the association blocks and ``--findings-only``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
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
            r = rows[f.code] = DigestRow(f.code, f.severity, message=f.shown, frame=f.frame)
        elif _RANK.get(f.severity, 3) < _RANK.get(r.severity, 3):
            r.severity, r.message, r.frame = f.severity, f.shown, f.frame
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


class DigestTable:
    """The digest as a table when the terminal is wide enough for the message column, else
    stacked (code line, then the message on its own line). Codes are never cut: they are what
    ``--disable-rule`` takes."""

    MIN_MESSAGE = 30

    def __init__(self, rows: list[DigestRow], limit: int) -> None:
        self.rows, self.limit = rows, limit

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        rows = self.rows[:self.limit]
        cells = [(r.severity.upper(), r.code, str(r.count), _where(r),
                  "-" if r.frame is None else str(r.frame)) for r in rows]
        fixed = [max(len(h), *(len(c[i]) for c in cells))
                 for i, h in enumerate(("severity", "code", "count", "where", "frame"))]
        title = "What went wrong (worst first)"
        room = options.max_width - sum(fixed) - 3 * len(fixed)  # padding and divider
        if room >= self.MIN_MESSAGE:
            t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD,
                      show_edge=False, pad_edge=False)
            for name, w in zip(("severity", "code", "count", "where", "frame"), fixed, strict=True):
                t.add_column(name, no_wrap=True, width=w,
                             justify="right" if name in ("count", "frame") else "left",
                             style="bold" if name == "code" else "")
            t.add_column("first occurrence", overflow="ellipsis", no_wrap=True,
                         width=min(room, max(len(r.message) for r in rows)))
            for r, c in zip(rows, cells, strict=True):
                t.add_row(Text(c[0], style=_STYLE.get(r.severity, "")), *c[1:],
                          Text(r.message))
            if len(self.rows) > self.limit:
                t.add_row("", Text(f"... {len(self.rows) - self.limit} more codes",
                                   style="dim"), "", "", "", "")
            yield t
            return
        yield Text(title, style="italic")
        for r, c in zip(rows, cells, strict=True):
            line = Text()
            line.append(f"{c[0]:<8}", style=_STYLE.get(r.severity, ""))
            line.append(r.code, style="bold")
            line.append(f"  x{c[2]}  {c[3]}  frame {c[4]}")
            yield line
            msg = Text("        " + r.message, overflow="ellipsis", no_wrap=True)
            yield msg
        if len(self.rows) > self.limit:
            yield Text(f"... {len(self.rows) - self.limit} more codes", style="dim")


def digest_table(findings: Iterable[Finding], limit: int = 12) -> DigestTable | None:
    """What went wrong, one entry per code, or None when there is nothing to say."""
    rows = digest(findings)
    if not rows:
        return None
    return DigestTable(rows, limit)
