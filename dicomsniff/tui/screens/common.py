"""What every list screen shares: the title line, the status line, search and filter keys."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.widgets import Input

from ..rows import date, size

if TYPE_CHECKING:
    from ..app import DicomBrowser


def app_of(widget: object) -> DicomBrowser:
    return cast("DicomBrowser", widget.app)  # type: ignore[attr-defined]


def title_text(app: DicomBrowser, what: str) -> Text:
    """'dicomsniff  move.pcap  2026-11-25  150 frames  · what'."""
    t = Text()
    t.append(" dicomsniff ", style="bold reverse")
    t.append(f" {os.path.basename(app.source.label)}", style="bold")
    store = app.store
    first = min((a.start for a in store.associations.values() if a.start), default=None)
    if first is not None:
        t.append(f"  {date(first)}", style="dim")
    if store.frames:
        t.append(f"  {store.frames} frames", style="dim")
    t.append(f"  · {what}")
    return t


def progress_text(app: DicomBrowser) -> Text:
    store = app.store
    if store.finished:
        if store.error and store.error != "cancelled":
            return Text(f"capture damaged: {store.error}", style="yellow")
        return Text("")
    if store.progress is None:
        return Text("reading...", style="cyan")
    done, total = store.progress
    if total:
        return Text(f"reading {size(done)}/{size(total)}", style="cyan")
    if store.frames:  # a live capture: no end in sight
        return Text(f"capturing: {store.frames} frames", style="cyan")
    return Text(f"reading {size(done)}", style="cyan")


def in_input(screen: object) -> bool:
    return isinstance(getattr(screen, "focused", None), Input)
