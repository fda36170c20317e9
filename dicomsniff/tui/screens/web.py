"""DICOMweb transactions (QIDO-RS, WADO-RS, WADO-URI, STOW-RS, UPS-RS): one row each, the
selected exchange in full beside the list (request, response, status, timing, instances,
findings). ``w`` from the associations list; ``f`` for every finding, DIMSE and DICOMweb."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from ...model import Association
from ..web import WEB_COLUMNS, describe, haystack, web_cells, web_sort_key
from ..widgets.vtable import VirtualTable
from .common import ListScreen, app_of, cycle_find


class WebScreen(ListScreen):
    """The DICOMweb list; ``focus`` (a transaction or connection id) puts the cursor there."""

    BINDINGS = [
        Binding("escape,backspace", "back", "Back"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("f", "findings", "Findings"),
        Binding("ctrl+f", "search", "Search"),
        Binding("n", "search_next(False)", "Next match", show=False),
        Binding("N", "search_next(True)", "Previous match", show=False),
    ]

    TABLE_ID = "web"
    WHAT = "DICOMweb"
    SORTABLE = tuple(c.key for c in WEB_COLUMNS)

    def __init__(self, connection: int | None = None, frame: int | None = None) -> None:
        super().__init__(id="web-screen")
        self._go = (connection, frame)
        self.detail = Text()

    def make_table(self) -> VirtualTable:
        table = VirtualTable(WEB_COLUMNS, self._cells, key=lambda t: t.id, id="web")
        table.sort_column = "id"
        table.empty_text = "no DICOMweb transaction (HTTP requests) in this capture"
        return table

    def compose_list(self) -> ComposeResult:
        with Horizontal(id="web-body"):
            yield self.make_table()
            with VerticalScroll(id="web-detail"):
                yield Static(id="web-text")

    def _cells(self, txn: Any) -> tuple[list[Text], str]:
        return web_cells(txn, app_of(self).store)

    def on_mount(self) -> None:
        super().on_mount()
        conn, frame = self._go
        if conn is not None:
            rows = self.table.rows
            best = [i for i, t in enumerate(rows) if t.connection == conn]
            if frame is not None:
                best = [i for i in best if rows[i].request_frame <= frame] or best
                best = best[-1:] if best else best
            if best:
                self.table.cursor = best[0]
                self.show(self.table.current)

    def rebuild(self) -> None:
        store = app_of(self).store
        t = self.table
        rows = sorted(store.web_transactions, key=lambda x: x.id)
        rows.sort(key=web_sort_key(t.sort_column or "id", store), reverse=t.sort_reverse)
        t.set_rows(rows)
        store.web_changed = False
        self._built = time.monotonic()
        self.show(t.current)
        self.update_status()

    def on_store(self, new: list[Association], changed: set[int], finished: bool) -> None:
        store = app_of(self).store
        if finished or (store.web_changed and time.monotonic() - self._built > 1.0):
            self.rebuild()
        else:
            self.table.refresh_rows()
            self.update_status()

    def update_status(self) -> None:
        store = app_of(self).store
        by: dict[str, int] = {}
        for x in store.web_transactions:
            by[x.command] = by.get(x.command, 0) + 1
        n, c = len(store.web_transactions), len(store.web_connections)
        s = Text(f" {n} transaction{'s' if n != 1 else ''} on {c} HTTP "
                 f"connection{'s' if c != 1 else ''}", style="bold")
        if by:
            s.append(": " + ", ".join(f"{n} {k}" for k, n in sorted(by.items())))
        s.append(self.sorted_by(), style="dim")
        self.show_status(s)

    @on(VirtualTable.CursorMoved, "#web")
    def _moved(self, event: VirtualTable.CursorMoved) -> None:
        self.show(event.row)

    def show(self, txn: Any) -> None:
        store = app_of(self).store
        conn = store.web_connections.get(txn.connection) if txn is not None else None
        found = store.web_findings(txn) if txn is not None else []
        self.detail = describe(txn, conn, found)  # the whole text (the pane scrolls)
        self.query_one("#web-text", Static).update(self.detail)

    # -- actions ------------------------------------------------------------------------------
    def action_findings(self) -> None:
        from .findings import FindingsScreen

        self.app.push_screen(FindingsScreen())

    def find_match(self, needle: str, backwards: bool) -> int | None:
        t = self.table
        return cycle_find(t.rows, t.cursor, backwards, haystack, needle)
