"""What every list screen shares: the title line, the status line, search and filter keys,
and :class:`ListScreen`, the layout and keys of a screen that is one sortable list."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from ..filter import Filter
from ..rows import date, size
from ..store import Store
from ..widgets.filterbar import FilterBar
from ..widgets.searchbar import SearchBar
from ..widgets.vtable import VirtualTable


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

    def leave_search(self) -> bool:
        """Escape's first steps: close the search bar, else leave a text input for the list.
        False when there was neither to leave."""
        search = self.query_one(SearchBar)  # type: ignore[attr-defined]
        if search.has_class("-open"):
            search.close()
        elif not in_input(self):
            return False
        self.list_widget().focus()
        return True

    def action_back(self) -> None:
        if not self.leave_search():
            self.app.pop_screen()  # type: ignore[attr-defined]


class ListScreen(FilterSearch, Screen):
    """A screen that is one sortable list: the title line, the filter bar (``FILTER_BAR``),
    the list (:meth:`compose_list`), the status line, the search bar and the keys' footer.

    A subclass makes its table (:meth:`make_table`, id ``TABLE_ID``), fills it
    (:meth:`rebuild`), says what its status line counts (:meth:`show_status`) and which
    columns ``s`` cycles through (``SORTABLE``); a click on a column's header sorts by it
    where ``HEADER_SORT``.
    """

    TABLE_ID: ClassVar[str]
    WHAT: ClassVar[str]  # the title line's last word: what is listed
    SORTABLE: ClassVar[tuple[str, ...]]
    FILTER_BAR: ClassVar[bool] = False
    HEADER_SORT: ClassVar[bool] = True

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.search_text = ""
        self._built = 0.0  # time.monotonic() of the last rebuild

    def compose(self) -> ComposeResult:
        yield Static(id="title", classes="title")
        if self.FILTER_BAR:
            yield FilterBar(app_of(self).filter.text, id="filter")
        yield from self.compose_list()
        yield Static(id="status")
        yield SearchBar()
        yield Footer()

    def compose_list(self) -> ComposeResult:
        """What stands between the title (or filter bar) and the status line."""
        yield self.make_table()

    def make_table(self) -> VirtualTable:
        raise NotImplementedError

    @property
    def table(self) -> VirtualTable:
        return self.query_one(f"#{self.TABLE_ID}", VirtualTable)

    def list_widget(self) -> VirtualTable:
        return self.table

    def on_mount(self) -> None:
        self.table.focus()
        self.rebuild()

    def rebuild(self) -> None:
        """Fill the table again (the data, the filter or the sort changed)."""
        raise NotImplementedError

    def on_filter(self) -> None:
        """The app's filter changed (only a screen with a filter bar follows it)."""
        if self.FILTER_BAR:
            bar = self.query_one(FilterBar)
            bar.set_text(app_of(self).filter.text)
            bar.set_error(None)
            self.rebuild()

    def show_status(self, counts: Text) -> None:
        """The title line, and ``counts`` with the reading progress as the status line."""
        app = app_of(self)
        self.query_one("#title", Static).update(title_text(app, self.WHAT))
        prog = progress_text(app)
        if prog.plain:
            counts.append("  ")
            counts.append_text(prog)
        self.query_one("#status", Static).update(counts)

    # -- sorting ------------------------------------------------------------------------------
    @on(VirtualTable.HeaderClicked)
    def _header_clicked(self, event: VirtualTable.HeaderClicked) -> None:
        if not self.HEADER_SORT:
            return
        t = self.table
        if t.sort_column == event.column:
            t.sort_reverse = not t.sort_reverse
        else:
            t.sort_column, t.sort_reverse = event.column, False
        self.rebuild()

    def action_sort(self) -> None:
        t = self.table
        cur = t.sort_column if t.sort_column in self.SORTABLE else self.SORTABLE[0]
        t.sort_column = self.SORTABLE[(self.SORTABLE.index(cur) + 1) % len(self.SORTABLE)]
        self.rebuild()

    def action_reverse(self) -> None:
        self.table.sort_reverse = not self.table.sort_reverse
        self.rebuild()

    def sorted_by(self) -> str:
        """' · sorted by Column ▲' for the status line."""
        t = self.table
        label = next(c.label for c in t.columns if c.key == t.sort_column)
        return f" · sorted by {label} {'▼' if t.sort_reverse else '▲'}"


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
