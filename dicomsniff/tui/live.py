"""``dicomsniff live --tui``: the TUI fed by a live capture.

:class:`LiveSource` is a :class:`~dicomsniff.tui.feed.Source`: the app runs it in its feed
thread, where it drives the same pipeline as ``dicomsniff live`` (capture helper, pipe,
CaptureReader, ``-w`` files, Analyzer: :class:`dicomsniff.live.run.LiveRun`) and hands the
analyzer's events to the app's Collector. Associations appear as their negotiation is
answered (or, for one already running when the capture started, with its first DIMSE message)
and update as transactions complete.

Stopping: quitting the app sets ``collector.cancelled``; a watcher thread then asks the
capture to stop as Ctrl-C does without ``--tui`` (the packets the kernel still holds are read
and analysed, open associations are reported as they stand, the files are closed complete).
The command waits for that (:attr:`LiveSource.done`) before it prints the summary.

Textual is not imported here: the command checks the capture before any screen exists.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..model import Association, Transaction
from .feed import Cancelled, Collector

if TYPE_CHECKING:
    from ..live.run import LiveOptions, LiveRun

QUIT = "quitting the TUI"  # stopped_by when the app ended the capture


class _Counting:
    """A LiveFeed output that shows nothing: the feed only counts, for the closing summary."""

    def association_start(self, a: Association) -> None:
        pass

    def transaction(self, t: Transaction, a: Association | None) -> None:
        pass

    def finding(self, f: Any, a: Association | None, clock: float | None) -> None:
        pass

    def association_end(self, a: Association) -> None:
        pass


class LiveSource:
    """A live capture (or ``-r FILE`` replayed through the live pipeline) as a TUI source.

    ``capture_path`` is the ``-w`` file when there is one file (not rotating): its frame
    numbers are the analyzer's, so the detail pane's data set and bytes tabs read it. The
    capture may be started before the app (:meth:`LiveRun.start`: errors are then one line
    on stderr, no screen); if not, :meth:`run` starts it and a failure is the app's error.
    """

    def __init__(self, live: LiveRun, label: str | None = None) -> None:
        from ..report.live import LiveFeed

        self.live = live
        args = live.options
        self.capture_path = live.single_file
        self.label = label or (f"{args.interface} (live)" if args.interface
                               else f"{args.read} (replay)")
        self.done = threading.Event()  # run() is over: analyzer finished, files closed
        self.stopped_by: str | None = None  # QUIT, a signal's name, or None (by itself)
        self.error: str | None = None
        self._entered = False
        self._lock = threading.Lock()
        self._collector: Collector | None = None
        self._feed = LiveFeed(live.analyzer, _Counting())  # type: ignore[arg-type]

    @classmethod
    def from_options(cls, options: LiveOptions, *, wrap: Sequence[str] = (),
                     label: str | None = None) -> LiveSource:
        """From ``dicomsniff live`` options; ``wrap`` runs the capture helper through a
        command such as ``ip netns exec NS`` (tests)."""
        from ..live.run import LiveRun
        from .feed import _analyzer

        analyzer = _analyzer(options.port, limits=options.limits, rules=options.rules,
                             keep=False, tls_keylog=options.tls_keylog)
        return cls(LiveRun(options, analyzer=analyzer, quiet=True, wrap=wrap), label)

    # -- the feed thread ----------------------------------------------------------------------
    def run(self, collector: Collector) -> None:
        with self._lock:
            if self._entered:
                return
            self._entered = True
        live = self.live
        self._collector = collector
        collector.attach(live.analyzer)
        error = None
        try:
            if not live.started:
                from ..sources.interfaces import LiveError

                try:
                    live.start()
                except LiveError as exc:
                    live.discard()
                    error = str(exc)
                    return
            threading.Thread(target=self._watch, args=(collector,), name="live-tui-stop",
                             daemon=True).start()

            def frames(n: int) -> None:
                if not n:  # "reading..." until the first packet
                    return
                try:
                    collector.progress(0, 0, n)
                except Cancelled:  # the app is gone: the capture is stopping, read on
                    pass

            live.capture_packets(on_frames=frames, every=1024)
            if live.failure:
                error = live.failure
            elif live.write_error:
                error = f"the capture file is incomplete: {live.write_error}"
        except Exception as exc:  # noqa: BLE001 - shown in the app, never a dead thread
            error = f"live capture failed: {type(exc).__name__}: {exc}"
        finally:
            self.error = error
            collector.finish(error, live.frame)
            self.done.set()

    def _watch(self, collector: Collector) -> None:
        """The app quit (or a signal asked it to): stop the capture cleanly."""
        while not self.done.is_set():
            if collector.cancelled.wait(0.2):
                if not self.done.is_set():
                    if self.stopped_by is None:
                        self.stopped_by = QUIT
                    self.live.stop()
                return

    # -- after the app ------------------------------------------------------------------------
    def note_stop(self, reason: str) -> None:
        """Why the app is ending (a signal's name), if that is what stops the capture."""
        if self.stopped_by is None and not self.done.is_set():
            self.stopped_by = reason

    def close(self) -> None:
        """Stop the capture if it still runs (from any thread); when the app never ran the
        source, run it here, so the helper is stopped and the files are closed all the same."""
        if not self.done.is_set():
            if self.stopped_by is None:
                self.stopped_by = QUIT
            self.live.stop()
        with self._lock:
            entered = self._entered
        if not entered and not self.live.started:  # nothing was started: nothing to stop
            self.done.set()
        elif not entered:
            collector = Collector()
            collector.cancelled.set()
            self.run(collector)

    def counts(self) -> dict[str, Any]:
        """What was seen, for the summary (every association, whatever the app's filter)."""
        return self._feed.counts()

    def service_table(self) -> list[dict[str, Any]]:
        return self._feed.summary.table()
