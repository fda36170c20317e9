"""The ladder of one or more associations, with the detail pane of the selected message."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from ...export.selection import SelectionError, select
from ...export.sequence import Options, build
from ...model import Association, Transaction
from .. import framenames
from ..filter import Filter
from ..ladder import layout
from ..refs import Ref, Resolver
from ..widgets.detail import DetailPane
from ..widgets.filterbar import FilterBar
from ..widgets.ladder_view import LadderView
from ..widgets.searchbar import SearchBar
from .common import FilterSearch, app_of, title_text

MAX_MESSAGES = 5000  # arrows drawn before the diagram is cut off (with a note)
REBUILD_EVERY = 0.5  # seconds between redraws while the associations are still growing
NARROW = 140  # columns below which the detail pane goes under the ladder


@dataclass
class _Shown:
    """What ``build`` asks of a selection: which transactions the filter keeps."""

    filter: Filter
    description: str = ""

    def shows(self, _a: Association, t: Transaction) -> bool:
        return self.filter.shows(t)


def related_ids(everything: Sequence[Association], ids: Sequence[int]) -> set[int]:
    """Associations that belong to the chosen ones: C-MOVE sub-associations, storage
    commitment reports on an association of their own."""
    out: set[int] = set()
    for cmd in ("C-MOVE", "N-ACTION"):
        try:
            out |= select(everything, ids=ids, commands=[cmd]).related
        except SelectionError:
            continue
    return out - set(ids)


class LadderScreen(FilterSearch, Screen):
    """Arrows between AEs; Esc goes back to the list."""

    BINDINGS = [
        Binding("escape,backspace", "back", "Back"),
        Binding("c", "collapse", "Collapse"),
        Binding("r", "related", "Related"),
        Binding("d", "detail", "Detail"),
        Binding("slash", "filter", "Filter"),
        Binding("x", "export", "Export"),
        Binding("ctrl+f", "search", "Search"),
        Binding("n", "search_next(False)", "Next match", show=False),
        Binding("N", "search_next(True)", "Previous match", show=False),
        Binding("1", "tab(0)", "Message", show=False),
        Binding("2", "tab(1)", "Negotiation", show=False),
        Binding("3", "tab(2)", "Data set", show=False),
        Binding("4", "tab(3)", "Bytes", show=False),
    ]

    def __init__(self, ids: list[int], frame: int | None = None) -> None:
        super().__init__(id="ladder-screen")
        self.ids = ids
        self.focus_frame = frame
        self.with_related = True
        self.related: set[int] = set()
        self.resolver: Resolver | None = None
        self.search_text = ""
        self._last_build = 0.0
        self._dirty = False

    def compose(self) -> ComposeResult:
        app = app_of(self)
        yield Static(id="title", classes="title")
        yield Static(id="legend")
        yield FilterBar(app.filter.text, id="filter")
        with Horizontal(id="ladder-body"):
            yield LadderView(id="ladder")
            yield DetailPane(app.capture_path, id="detail")
        yield SearchBar()
        yield Footer()

    @property
    def view(self) -> LadderView:
        return self.query_one("#ladder", LadderView)

    @property
    def detail(self) -> DetailPane:
        return self.query_one("#detail", DetailPane)

    def on_mount(self) -> None:
        self.rebuild()
        self.view.focus()
        self._fit(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.width)

    def _fit(self, width: int) -> None:
        """Beside the ladder on a wide terminal, under it on a narrow one. A ladder wider than
        its 3/5 share takes what it needs when 40 columns remain for the detail pane, else
        the pane goes under it: a lifeline is never cut off at the right edge."""
        lad = self.view.ladder
        need = lad.width + 3 if lad is not None else 0  # border and scroll bar
        share = width * 3 // 5
        narrow = width < NARROW or (need > share and width - need < 40)
        self.query_one("#ladder-body").set_class(narrow, "-narrow")
        if not narrow and need > share:
            self.view.styles.width = need
        else:
            self.view.styles.width = None  # the stylesheet's 3fr (or 1fr under -narrow)

    # -- building -----------------------------------------------------------------------------
    def associations(self) -> list[Association]:
        app = app_of(self)
        store = app.store
        ids = list(self.ids)
        if self.with_related:
            self.related = related_ids(list(store.associations.values()), ids)
            ids += sorted(self.related)
        return app.associations_by_id(ids)

    def rebuild(self) -> None:
        app = app_of(self)
        assocs = self.associations()
        f = app.filter
        sel = _Shown(f, f.text) if f.filters_transactions else None
        d = build(assocs, log=app.collector.log, selection=sel,  # type: ignore[arg-type]
                  options=Options(collapse=app.collapse, timing=True,
                                  max_messages=MAX_MESSAGES), where=framenames.describe)
        old = self.view.ladder
        keep = None
        if old is not None and old.items and self.view.cursor < len(old.items):
            keep = old.items[self.view.cursor].frame
        if self.focus_frame is not None:
            keep, self.focus_frame = self.focus_frame, None
        lad = layout(d)
        self.resolver = Resolver(assocs)
        cursor = 0
        if keep is not None:
            frames = [it.frame if it.frame is not None else -1 for it in lad.items]
            before = [i for i, fr in enumerate(frames) if 0 <= fr <= keep]
            cursor = before[-1] if before else 0
        self.view.empty_text = "no message matches the filter" if assocs else "nothing to draw"
        self.view.set_ladder(lad, cursor)
        self._fit(self.app.size.width)
        if not lad.items:
            self.detail.show(None)
        self._last_build = time.monotonic()
        self._dirty = False
        self.update_title(assocs)

    def update_title(self, assocs: list[Association]) -> None:
        app = app_of(self)
        shown = ", ".join(f"#{a.id}" for a in assocs[:8]) + (" ..." if len(assocs) > 8 else "")
        self.query_one("#title", Static).update(title_text(app, f"ladder of {shown}"))
        legend = Text()
        for a in assocs[:4]:
            if legend:
                legend.append("\n")
            legend.append(f"#{a.id} ", style="bold")
            legend.append(a.calling_ae or "?", style="cyan")
            legend.append(f" {a.client} -> ")
            legend.append(a.called_ae or "?", style="cyan")
            legend.append(f" {a.server}  {a.outcome}")
            if a.id in self.related:
                legend.append("  (related: press r to hide)", style="dim")
        if len(assocs) > 4:
            legend.append(f"\n... {len(assocs) - 4} more", style="dim")
        flags = []
        if not app.collapse:
            flags.append("every exchange drawn (c collapses runs)")
        if app.filter.filters_transactions:
            flags.append(f"filtered: {app.filter.text}")
        if flags:
            legend.append("\n" + "; ".join(flags), style="yellow")
        self.query_one("#legend", Static).update(legend)

    def on_store(self, new: list[Association], changed: set[int], finished: bool) -> None:
        mine = set(self.ids) | self.related
        if changed & mine or (new and self.with_related) or finished:
            self._dirty = True
        if self._dirty and (finished or time.monotonic() - self._last_build > REBUILD_EVERY):
            self.rebuild()

    def on_filter(self) -> None:
        self.query_one(FilterBar).set_text(app_of(self).filter.text)
        self.query_one(FilterBar).set_error(None)
        self.rebuild()

    # -- selection ----------------------------------------------------------------------------
    def current_ref(self) -> Ref | None:
        lad = self.view.ladder
        if lad is None or not lad.items or self.resolver is None:
            return None
        i = self.view.cursor
        prev = None
        for k in range(i - 1, max(-1, i - 8), -1):  # the message above places a note
            if k >= 0 and not hasattr(lad.items[k], "first"):
                prev = self.resolver.resolve(lad.items[k])
                break
        return self.resolver.resolve(lad.items[i], prev)

    @on(LadderView.Selected, "#ladder")
    def _selected(self, _event: LadderView.Selected) -> None:
        self.detail.show(self.current_ref())

    # -- actions ------------------------------------------------------------------------------
    def action_collapse(self) -> None:
        app = app_of(self)
        app.collapse = not app.collapse
        self.rebuild()

    def action_related(self) -> None:
        self.with_related = not self.with_related
        self.rebuild()
        if not self.with_related:
            self.notify("related associations hidden (r shows them)", timeout=3)

    def action_detail(self) -> None:
        self.detail.display = not self.detail.display

    def action_tab(self, index: int) -> None:
        self.detail.display = True
        self.detail.show_tab(index)

    def action_export(self) -> None:
        app_of(self).open_export(self.associations())

    def list_widget(self) -> Any:
        return self.view

    def find_match(self, needle: str, backwards: bool) -> int | None:
        return self.view.find(needle, self.view.cursor, backwards)

