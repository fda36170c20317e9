"""The studies followed across the capture (the journey, docs/studies.md): one row per study
with how far its journey got; Enter opens its timeline, the same text as ``dicomsniff
studies``; l there opens the ladder of every association that carried it.

Rows arrive as the journey releases studies (a study is released when its journey is over, or
at the end of the capture), so the list grows while a capture loads.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from ...model import Association
from ...report.studies import study_lines
from ..rows import FAILURE, OPEN, SUCCESS, WARNING, Column
from ..widgets.vtable import VirtualTable
from .common import ListScreen, app_of, cycle_find, title_text

STUDY_COLUMNS = (
    Column("state", "Journey", 12),
    Column("accession", "Accession", 12),
    Column("patient", "Patient", 22),
    Column("stored", "Stored", 7, "right"),
    Column("mpps", "MPPS", 13),
    Column("committed", "Commit", 7, "right"),
    Column("ian", "IAN", 5, "right"),
    Column("findings", "Find", 5, "right"),
    Column("study", "Study Instance UID", 24, flex=True),
)
SORTABLE = ("first_frame", "state", "findings")
_STAGES = ("scheduled", "in progress", "stored", "completed", "discontinued", "committed",
           "available")


def _esc(v: Any) -> str:
    return "" if v is None else str(v)


def study_cells(rec: dict[str, Any]) -> tuple[list[Text], str]:
    """One study row and its colour: a study with findings is a warning, else a success."""
    counts = rec.get("instances") or {}
    mpps = ", ".join(_esc(m.get("status")) for m in rec.get("mpps") or []) or "-"
    n = len(rec.get("findings") or [])
    state = WARNING if n else (SUCCESS if rec.get("state") == "available" else OPEN)
    if counts.get("commit_failed"):
        state = FAILURE
    return [
        Text(_esc(rec.get("state")) or "-"),
        Text(_esc(rec.get("accession_number"))),
        Text(" ".join(x for x in (_esc(rec.get("patient_id")), _esc(rec.get("patient_name")))
                      if x)),
        Text(str(counts.get("stored", 0))),
        Text(mpps),
        Text(f"{counts.get('committed', 0)}"
             + (f"/{counts['commit_failed']}!" if counts.get("commit_failed") else "")),
        Text(str(counts.get("in_ian", 0))),
        Text(str(n) if n else ""),
        Text(rec["study_instance_uid"], style="dim"),
    ], state


def _sort_key(column: str) -> Any:
    if column == "state":
        return lambda r: _STAGES.index(r["state"]) if r.get("state") in _STAGES else -1
    if column == "findings":
        return lambda r: len(r.get("findings") or [])
    return lambda r: r.get("first_frame") or 0


class StudiesScreen(ListScreen):
    """Every study the journey followed; Enter opens one's timeline."""

    BINDINGS = [
        Binding("escape,backspace", "back", "Back"),
        Binding("enter", "open", "Timeline"),
        Binding("s", "sort", "Sort"),
        Binding("S", "reverse", "Reverse", show=False),
        Binding("ctrl+f", "search", "Search"),
        Binding("n", "search_next(False)", "Next match", show=False),
        Binding("N", "search_next(True)", "Previous match", show=False),
    ]

    TABLE_ID = "studies"
    WHAT = "studies"
    SORTABLE = SORTABLE
    HEADER_SORT = False  # most columns have no order of their own: s cycles through SORTABLE

    def __init__(self) -> None:
        super().__init__(id="studies-screen")
        self._shown = -1

    def make_table(self) -> VirtualTable:
        table = VirtualTable(STUDY_COLUMNS, study_cells, key=lambda r: r["study_instance_uid"],
                             id="studies")
        table.sort_column = "first_frame"
        table.empty_text = "no study followed (yet): studies appear when their journey ends"
        return table

    def rebuild(self) -> None:
        app = app_of(self)
        t = self.table
        rows = list(app.store.studies)
        rows.sort(key=_sort_key(t.sort_column or "first_frame"), reverse=t.sort_reverse)
        t.set_rows(rows)
        self._shown = len(rows)
        self._built = time.monotonic()
        self.update_status()

    def update_status(self) -> None:
        rows = app_of(self).store.studies
        bad = sum(1 for r in rows if r.get("findings"))
        self.show_status(Text(f" {len(rows)} stud{'y' if len(rows) == 1 else 'ies'}, {bad} "
                              "with findings  (Enter: timeline)"))

    def on_store(self, new: list[Association], changed: set[int], finished: bool) -> None:
        if len(app_of(self).store.studies) != self._shown and (
                finished or time.monotonic() - self._built > 1.0):
            self.rebuild()
        elif finished:
            self.update_status()

    # -- actions ------------------------------------------------------------------------------
    def action_open(self) -> None:
        rec = self.table.current
        if rec is not None:
            self.app.push_screen(StudyScreen(rec))

    @on(VirtualTable.Activated, "#studies")
    def _activated(self, _event: VirtualTable.Activated) -> None:
        self.action_open()

    def find_match(self, needle: str, backwards: bool) -> int | None:
        t = self.table
        return cycle_find(t.rows, t.cursor, backwards, _haystack, needle)


def _haystack(rec: dict[str, Any]) -> str:
    return " ".join(_esc(rec.get(k)) for k in ("study_instance_uid", "accession_number",
                                               "patient_id", "patient_name", "state"))


class StudyScreen(Screen):
    """One study's timeline: scheduled, performed, stored, committed, available, one
    timeline per scheduled procedure step, and what does not add up."""

    BINDINGS = [
        Binding("escape,backspace", "back", "Back"),
        Binding("l", "ladder", "Ladder"),
    ]

    def __init__(self, rec: dict[str, Any]) -> None:
        super().__init__(id="study-screen")
        self.rec = rec

    def compose(self) -> ComposeResult:
        yield Static(id="title", classes="title")
        with VerticalScroll(id="study-scroll"):
            yield Static(id="study-text")
        yield Footer()

    def on_mount(self) -> None:
        app = app_of(self)
        self.query_one("#title", Static).update(title_text(app, "study"))
        findings = app.store.study_findings(self.rec["study_instance_uid"])
        # study_lines escapes every wire value; Text keeps it from being read as markup.
        self.query_one("#study-text", Static).update(
            Text("\n".join(study_lines(self.rec, findings))))
        self.query_one("#study-scroll").focus()

    def action_ladder(self) -> None:
        app = app_of(self)
        ids = [i for i in self.rec.get("associations") or [] if app.store.get(i) is not None]
        if not ids:
            self.notify("none of this study's associations is loaded", severity="warning",
                        timeout=3, markup=False)
            return
        app.open_ladder(ids, self.rec.get("first_frame"))

    def action_back(self) -> None:
        self.app.pop_screen()
