"""``dicomsniff rules``: the catalogue of finding codes, for people and for documents."""

from __future__ import annotations

from typing import IO

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from ..analysis.rules import catalogue as _registered


def catalogue() -> list:
    """Every code the analysis can raise. Codes register when their module loads, and some
    analyzers (the study journey) load only when an Analyzer attaches them: one is made (it
    reads nothing) so that the list is whole."""
    from ..analysis.engine import Analyzer

    Analyzer()
    return _registered()

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def print_markdown(out: IO[str], only: str | None = None) -> None:
    out.write("| code | severity | standard | what it means | raised by |\n")
    out.write("|---|---|---|---|---|\n")
    for c in catalogue():
        if only and only.casefold() not in c.code.casefold():
            continue
        out.write(f"| `{c.code}` | {c.severity} | {c.section or '-'} | {c.title} | "
                  f"{c.origin} |\n")


def print_catalogue(console: Console, only: str | None = None) -> int:
    """Each code on its own line (whole: it is what --disable-rule takes), then what it means
    and the standard's section, indented; ``only``: codes containing this text. The count
    printed."""
    n = 0
    for c in catalogue():
        if only and only.casefold() not in c.code.casefold():
            continue
        n += 1
        head = Text()
        head.append(f"{c.severity.upper():<8}", style=_STYLE.get(c.severity, ""))
        head.append(c.code, style="bold")
        if c.section:
            head.append(f"  {c.section}", style="dim")
        console.print(head)
        console.print(Padding(Text(c.title), (0, 0, 0, 8)))
    return n
