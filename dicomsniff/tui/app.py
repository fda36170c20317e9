"""The textual application: screens over one Store fed by a Source in a daemon thread.

Every 100 ms the app drains the Collector (see :mod:`dicomsniff.tui.feed`) and tells the open
screens which associations are new or changed, so a 1 GB capture loads with the UI responsive
and associations appearing as they are parsed. ``live --tui`` plugs in by giving the app its
own Source (a live capture feeding a Collector).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Sequence

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.driver import Driver
from textual.timer import Timer
from textual.worker import get_current_worker

from ..model import Association
from .exports import export
from .feed import Collector, Source, start
from .filter import Filter, FilterError, parse
from .store import Store

PUMP_EVERY = 0.1  # seconds between batches


class DicomBrowser(App[int]):
    """Browse associations, ladders, messages and findings of one capture (or live feed)."""

    CSS_PATH = "app.tcss"
    TITLE = "dicomsniff"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, source: Source, *, filter_text: str = "") -> None:
        super().__init__()
        self.source = source
        self.capture_path = source.capture_path
        self.store = Store()
        self.collector = Collector()
        self.filter: Filter = Filter()
        self.filter_error: str | None = None
        if filter_text:
            self.set_filter(filter_text)
        self.collapse = True
        self._pump_timer: Timer | None = None
        self.last_export: tuple[str, str] | None = None
        self.sub_title = os.path.basename(source.label)

    def get_driver_class(self) -> type[Driver]:
        """textual's choice, but on a POSIX terminal one whose exit a dead terminal cannot
        hang (see :mod:`.driver`)."""
        from textual.drivers.linux_driver import LinuxDriver

        from .driver import TerminalDriver

        chosen = super().get_driver_class()
        return TerminalDriver if chosen is LinuxDriver else chosen

    # -- life ---------------------------------------------------------------------------------
    def on_mount(self) -> None:
        from .screens.main import MainScreen

        self.push_screen(MainScreen())
        gc.freeze()  # what textual and the first screen made: never garbage, never walked
        start(self.source, self.collector)
        self._pump_timer = self.set_interval(PUMP_EVERY, self.pump)

    def pump(self) -> None:
        """Take what the analysis thread found since the last call to the screens."""
        batch = self.collector.drain()
        if not batch:
            return
        new, changed = self.store.apply(batch)
        # Model objects live as long as the app: keep the collector from walking them again
        # and again (a full collection of a million transactions stalls both threads).
        gc.freeze()
        for screen in self.screen_stack:
            hook = getattr(screen, "on_store", None)
            if hook is not None:
                hook(new, changed, batch.finished)
        if batch.finished:
            if self._pump_timer is not None:
                self._pump_timer.stop()
            if batch.error and batch.error != "cancelled":
                self.notify(batch.error, title="capture", severity="warning", timeout=10,
                            markup=False)

    @property
    def loaded(self) -> bool:
        return self.store.finished

    async def action_quit(self) -> None:
        self.collector.cancelled.set()
        self.exit(0)

    def action_help(self) -> None:
        from .screens.modals import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # -- the filter, shared by every screen ---------------------------------------------------
    def set_filter(self, text: str) -> str | None:
        """Apply the filter bar's text; returns the error message (None when applied)."""
        try:
            f = parse(text)
        except FilterError as exc:
            self.filter_error = str(exc)
            return self.filter_error
        self.filter = f
        self.filter_error = None
        for screen in getattr(self, "screen_stack", ()):
            hook = getattr(screen, "on_filter", None)
            if hook is not None:
                hook()
        return None

    # -- navigation ---------------------------------------------------------------------------
    def open_ladder(self, ids: Sequence[int], frame: int | None = None) -> None:
        from .screens.ladder import LadderScreen

        if ids:
            self.push_screen(LadderScreen(list(ids), frame))

    def open_web(self, connection: int | None = None, frame: int | None = None) -> None:
        """The DICOMweb transactions, at ``connection``'s exchange holding ``frame``."""
        from .screens.web import WebScreen

        self.push_screen(WebScreen(connection, frame))

    def open_export(self, associations: Sequence[Association]) -> None:
        from .screens.modals import ExportScreen

        if not associations:
            self.notify("nothing selected", severity="warning")
            return
        chosen = list(associations)

        def done(result: tuple[str, str] | None) -> None:
            if result is not None:
                self.run_export(result[0], result[1], chosen)

        self.push_screen(ExportScreen(chosen, self.capture_path), done)

    @work(thread=True, group="export")
    def run_export(self, fmt: str, path: str, associations: list[Association]) -> None:
        worker = get_current_worker()

        def check() -> None:
            if worker.is_cancelled:
                raise RuntimeError("cancelled")

        try:
            what = export(fmt, path, associations, capture=self.capture_path,
                          log=self.collector.log, collapse=self.collapse, check=check)
        except (OSError, ValueError, RuntimeError) as exc:
            msg = getattr(exc, "strerror", None) or str(exc)
            self.call_from_thread(self.notify, f"cannot write {path}: {msg}", title="export",
                                  severity="error", timeout=8, markup=False)
            return
        self.call_from_thread(self.notify, f"wrote {path}: {what}", title="export", timeout=6,
                              markup=False)
        self.last_export = (fmt, path)

    def associations_by_id(self, ids: Sequence[int]) -> list[Association]:
        return [a for a in (self.store.get(i) for i in ids) if a is not None]
