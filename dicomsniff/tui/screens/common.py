"""What every list screen shares: the title line, the status line, search and filter keys."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

from rich.text import Text
from textual.widgets import Input

from ..filter import Filter
from ..rows import date, size
from ..store import Store
from ..widgets.filterbar import FilterBar
from ..widgets.searchbar import SearchBar


class BrowserState(Protocol):
    """What the screens use of the app (:class:`~dicomsniff.tui.app.DicomBrowser`): its state
    and the few actions that change screens. The screens depend on this, not on the app
    module, which imports them."""

    source: Any
    capture_path: str | None
    store: Store
    filter: Filter
    filter_error: str | None
    collapse: bool

    def set_filter(self, text: str) -> str | None: ...

    def open_ladder(self, ids: Sequence[int], frame: int | None = None) -> None: ...

    def open_export(self, associations: Sequence[Any]) -> None: ...

    def open_web(self, connection: int | None = None, frame: int | None = None) -> None: ...

    def associations_by_id(self, ids: Sequence[int]) -> list[Any]: ...


class FilterSearch:
    """Filter bar and search, shared by the list and ladder screens.

    A screen mixes this in (before ``Screen``), keeps ``search_text``, and says which widget
    holds the cursor (``list_widget``) and where the next match is (``find_match``). Handlers
    go by name (``on_filter_bar_applied``), which Textual finds through the MRO.
    """

    search_text: str

    def list_widget(self) -> Any:
        raise NotImplementedError

    def find_match(self, needle: str, backwards: bool) -> int | None:
        """Index of the next row (or line) matching ``needle`` (case-folded), or None."""
        raise NotImplementedError

    def action_filter(self) -> None:
        self.query_one(FilterBar).input.focus()  # type: ignore[attr-defined]

    def on_filter_bar_applied(self, event: FilterBar.Applied) -> None:
        err = app_of(self).set_filter(event.text)
        self.query_one(FilterBar).set_error(err)  # type: ignore[attr-defined]
        if event.submitted and err is None:
            self.list_widget().focus()

    def action_search(self) -> None:
        self.query_one(SearchBar).open()  # type: ignore[attr-defined]

    def on_search_bar_search(self, event: SearchBar.Search) -> None:
        self.search_text = event.text
        self.list_widget().focus()
        self.action_search_next(event.backwards)

    def action_search_next(self, backwards: bool) -> None:
        if not self.search_text:
            return
        i = self.find_match(self.search_text.casefold(), backwards)
        if i is None:
            self.notify(f"not found: {self.search_text}",  # type: ignore[attr-defined]
                        severity="warning", timeout=3, markup=False)
        else:
            self.list_widget().cursor = i


def cycle_find(rows: Sequence[Any], cursor: int, backwards: bool,
               haystack: Callable[[Any], str], needle: str) -> int | None:
    """The next row after ``cursor`` (wrapping) whose case-folded haystack holds needle."""
    n = len(rows)
    step = -1 if backwards else 1
    for k in range(1, n + 1):
        i = (cursor + step * k) % n
        if needle in haystack(rows[i]).casefold():
            return i
    return None


def app_of(widget: object) -> BrowserState:
    return cast(BrowserState, widget.app)  # type: ignore[attr-defined]


def title_text(app: BrowserState, what: str) -> Text:
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


def progress_text(app: BrowserState) -> Text:
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
