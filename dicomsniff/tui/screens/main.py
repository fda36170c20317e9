"""The associations list: one row per association, coloured by how it went."""

from __future__ import annotations

import bisect
import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, ProgressBar, Static

from ...model import Association
from ..rows import ASSOCIATION_COLUMNS, association_cells, association_sort_key
from ..tlsrows import TLSRow, tls_cells
from ..widgets.filterbar import FilterBar
from ..widgets.searchbar import SearchBar
from ..widgets.vtable import VirtualTable
from .common import ListScreen, app_of, cycle_find, progress_text, title_text

RESORT_EVERY = 1.0  # seconds between full re-sorts while a big capture loads


def _set(widget: Static, text: Text) -> None:
    """Update a one-line Static only when its text changed, without a layout pass."""
    if getattr(widget, "_shown", None) != text.plain:
        widget._shown = text.plain  # type: ignore[attr-defined]
        widget.update(text, layout=False)


class MainScreen(ListScreen):
    """Associations: Enter opens the ladder of the marked ones (or the one under the cursor)."""

    BINDINGS = [
        Binding("enter", "open", "Ladder"),
        Binding("space", "mark", "Mark"),
        Binding("slash", "filter", "Filter"),
        Binding("f", "findings", "Findings"),
        Binding("w", "web", "DICOMweb", show=False),  # the status line says "(w)"
        Binding("t", "studies", "Studies", show=False),  # the status line says "(t)"
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("x", "export", "Export"),
        Binding("ctrl+f", "search", "Search"),
        Binding("n", "search_next(False)", "Next match", show=False),
        Binding("N", "search_next(True)", "Previous match", show=False),
        Binding("u", "unmark", "Unmark all", show=False),
        Binding("escape", "escape", "Back", show=False),
    ]

    TABLE_ID = "associations"
    WHAT = "associations"
    SORTABLE = tuple(c.key for c in ASSOCIATION_COLUMNS)
    FILTER_BAR = True

    def __init__(self) -> None:
        super().__init__(id="main")
        self._last_sort = 0.0
        self._pending_sort = False

    def make_table(self) -> VirtualTable:
        table = VirtualTable(ASSOCIATION_COLUMNS, self._cells, key=lambda a: a.id,
                             id="associations")
        table.sort_column = "id"
        table.empty_text = "no DICOM association yet"
        return table

    def compose(self) -> ComposeResult:
        # the list screen's layout, but a progress bar beside the status line
        yield Static(id="title", classes="title")
        yield FilterBar(app_of(self).filter.text, id="filter")
        yield self.make_table()
        with Horizontal(id="statusbar"):
            yield Static(id="status")
            yield ProgressBar(id="progress", show_eta=False)
        yield SearchBar()
        yield Footer()

    def _cells(self, a: Association) -> tuple[list[Text], str]:
        if isinstance(a, TLSRow):
            return tls_cells(a)
        return association_cells(a, app_of(self).store)

    def on_mount(self) -> None:
        super().on_mount()
        if app_of(self).filter_error:
            self.query_one(FilterBar).set_error(app_of(self).filter_error)

    # -- rows ---------------------------------------------------------------------------------
    def _sort(self, rows: list[Association]) -> list[Association]:
        t = self.table
        key = association_sort_key(t.sort_column or "id", app_of(self).store)
        return sorted(rows, key=key, reverse=t.sort_reverse)

    def rebuild(self) -> None:
        """Filter and sort every association again (filter or sort changed)."""
        app = app_of(self)
        f = app.filter
        rows = [a for a in (*app.store.associations.values(), *app.store.tls.values())
                if f.empty or f.matches(a)]
        self.table.set_rows(self._sort(rows))
        self._last_sort = time.monotonic()
        self._pending_sort = False
        self.update_status()

    def on_store(self, new: list[Association], changed: set[int], finished: bool) -> None:
        """A batch arrived: add the new rows cheaply, re-sort at most once a second."""
        t = self.table
        f = app_of(self).filter
        by_id = t.sort_column == "id" and not t.sort_reverse
        if f.empty and by_id and not finished:
            rows = t.rows
            for a in new:
                if not rows or a.id > rows[-1].id:
                    rows.append(a)
                else:
                    bisect.insort(rows, a, key=lambda x: x.id)
            t.set_rows(rows)
        elif new or changed or finished:
            self._pending_sort = True
        if self._pending_sort and (finished or time.monotonic() - self._last_sort
                                   > RESORT_EVERY * (1 + len(t.rows) // 50_000)):
            self.rebuild()
        else:
            t.refresh_rows()
        self.update_status()

    def update_status(self) -> None:
        app = app_of(self)
        store = app.store
        t = self.table
        _set(self.query_one("#title", Static), title_text(app, "associations"))
        s = Text()
        s.append(f" {len(t.rows)} shown", style="bold")
        s.append(f" of {len(store.associations)} associations")
        if store.tls:
            s.append(f" + {len(store.tls)} TLS connection(s)", style="magenta")
        if t.marks:
            s.append(f" · {len(t.marks)} marked", style="magenta")
        if store.findings:
            s.append(f" · {len(store.findings)} findings (f)")
        if store.studies:
            n = len(store.studies)
            s.append(f" · {n} stud{'y' if n == 1 else 'ies'} (t)")
        if store.web_transactions:
            s.append(f" · {len(store.web_transactions)} DICOMweb (w)", style="bold")
            if not store.associations:
                t.empty_text = ("no DICOM association; DICOMweb transactions: press w")
        s.append(self.sorted_by(), style="dim")
        prog = progress_text(app)
        if prog.plain:
            s.append("  ")
            s.append_text(prog)
        _set(self.query_one("#status", Static), s)
        bar = self.query_one("#progress", ProgressBar)
        if bar.display == store.finished:
            bar.display = not store.finished
        if store.progress is not None and store.progress[1]:
            done, total = store.progress
            if bar.total != total or done - (bar.progress or 0) > total / 200:
                bar.update(total=total, progress=done)

    # -- actions ------------------------------------------------------------------------------
    def selected(self) -> list[Association]:
        return self.table.selection()

    def action_open(self) -> None:
        sel = self.selected()
        assocs = [a for a in sel if not isinstance(a, TLSRow)]
        if assocs:
            app_of(self).open_ladder([a.id for a in assocs])
        elif sel:
            self._open_tls(sel[0])

    def _open_tls(self, row: TLSRow) -> None:
        from .tls import TLSScreen

        self.app.push_screen(TLSScreen(row))

    @on(VirtualTable.Activated, "#associations")
    def _activated(self, event: VirtualTable.Activated) -> None:
        if isinstance(event.row, TLSRow):
            self._open_tls(event.row)
            return
        app_of(self).open_ladder([event.row.id])

    def action_mark(self) -> None:
        self.table.toggle_mark()
        self.table.cursor += 1
        self.update_status()

    def action_unmark(self) -> None:
        self.table.clear_marks()
        self.update_status()

    def action_studies(self) -> None:
        from .studies import StudiesScreen

        self.app.push_screen(StudiesScreen())

    def action_findings(self) -> None:
        from .findings import FindingsScreen

        self.app.push_screen(FindingsScreen())

    def action_web(self) -> None:
        app_of(self).open_web()

    def action_export(self) -> None:
        """The marked rows, else every row shown (the filter's result), never just the one
        under the cursor: the dialog names what it will write."""
        t = self.table
        rows = t.marked_rows() or list(t.rows)  # TLS rows have no DICOM to export
        app_of(self).open_export([a for a in rows if not isinstance(a, TLSRow)])

    def find_match(self, needle: str, backwards: bool) -> int | None:
        store = app_of(self).store
        return cycle_find(self.table.rows, self.table.cursor, backwards,
                          lambda a: " ".join((a.calling_ae or "", a.called_ae or "", a.client,
                                              a.server, a.outcome, store.summary(a).ops_text)),
                          needle)

    def action_escape(self) -> None:
        if not self.leave_search() and self.table.marks:
            self.action_unmark()
