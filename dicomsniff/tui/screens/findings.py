"""Every finding, worst first; Enter jumps to its association's ladder at its packet."""

from __future__ import annotations

import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static

from ...model import Association, Finding
from .. import framenames
from ..rows import FINDING_COLUMNS, SEVERITY_STYLE, finding_cells, finding_sort_key
from ..widgets.vtable import VirtualTable
from .common import ListScreen, app_of, cycle_find


class FindingsScreen(ListScreen):
    """The findings panel: Enter opens the ladder at the finding's frame, p shows the packet."""

    BINDINGS = [
        Binding("escape,backspace", "back", "Back"),
        Binding("enter", "jump", "Go to"),
        Binding("p", "packet", "Packet"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("ctrl+f", "search", "Search"),
        Binding("n", "search_next(False)", "Next match", show=False),
        Binding("N", "search_next(True)", "Previous match", show=False),
    ]

    TABLE_ID = "findings"
    WHAT = "findings"
    SORTABLE = tuple(c.key for c in FINDING_COLUMNS)
    FILTER_BAR = True

    def __init__(self) -> None:
        super().__init__(id="findings-screen")

    def make_table(self) -> VirtualTable:
        table = VirtualTable(FINDING_COLUMNS, finding_cells, key=id, id="findings")
        table.sort_column = "severity"
        table.empty_text = "no findings"
        return table

    def compose_list(self) -> ComposeResult:
        yield self.make_table()
        # The selected finding whole: its advice ("What to check: ...") is longer than a row.
        yield Static(id="finding-text")

    def rebuild(self) -> None:
        app = app_of(self)
        f = app.filter
        store = app.store
        rows = [x for x in store.findings
                if f.empty or x.association is None or store.is_web(x.association)
                or (a := store.get(x.association)) is not None and f.matches(a)]
        t = self.table
        rows.sort(key=lambda x: (x.frame or 0))
        rows.sort(key=finding_sort_key(t.sort_column or "severity"), reverse=t.sort_reverse)
        t.set_rows(rows)
        self.show_finding(t.current)
        self._built = time.monotonic()
        self.update_status()

    def update_status(self) -> None:
        store = app_of(self).store
        sev: dict[str, int] = {}
        for x in store.findings:
            sev[x.severity] = sev.get(x.severity, 0) + 1
        s = Text(f" {len(self.table.rows)} shown of {len(store.findings)} findings: ")
        s.append(", ".join(f"{n} {k}" for k, n in sorted(sev.items())) or "none")
        self.show_status(s)

    def on_store(self, new: list[Association], changed: set[int], finished: bool) -> None:
        """New findings while loading: listed again at most once a second."""
        if finished or ((changed or new) and time.monotonic() - self._built > 1.0):
            self.rebuild()

    @on(VirtualTable.CursorMoved, "#findings")
    def _moved(self, event: VirtualTable.CursorMoved) -> None:
        self.show_finding(event.row)

    def show_finding(self, f: Finding | None) -> None:
        t = Text()
        if f is not None:
            t.append(f"{f.severity.upper()} ", style=SEVERITY_STYLE.get(f.severity, ""))
            t.append(f.code, style="bold")
            where = "capture" if f.association is None else f"#{f.association}"
            t.append(f"  {where}" + (f"  {framenames.frame(f.frame)}" if f.frame is not None
                                     else "")
                     + (f"  {f.section}" if f.section else ""), style="dim")
            t.append("\n" + f.shown)
        self.query_one("#finding-text", Static).update(t)

    # -- actions ------------------------------------------------------------------------------
    def action_jump(self) -> None:
        f: Finding | None = self.table.current
        if f is None:
            return
        if f.association is None:
            self.action_packet()
            return
        if app_of(self).store.is_web(f.association):  # an HTTP connection: its exchange
            app_of(self).open_web(f.association, f.frame)
            return
        app_of(self).open_ladder([f.association], f.frame)

    @on(VirtualTable.Activated, "#findings")
    def _activated(self, _event: VirtualTable.Activated) -> None:
        self.action_jump()

    def action_packet(self) -> None:
        from .modals import PacketScreen

        f: Finding | None = self.table.current
        if f is None or f.frame is None:
            self.notify("this finding points at no packet", severity="warning", timeout=3,
                    markup=False)
            return
        self.app.push_screen(PacketScreen(f.frame, f))

    def find_match(self, needle: str, backwards: bool) -> int | None:
        t = self.table
        return cycle_find(t.rows, t.cursor, backwards,
                          lambda x: f"{x.code} {x.message} {x.severity}", needle)
