"""Run the TUI app on a source until the user quits (``dicomsniff tui`` and ``live --tui``)."""

from __future__ import annotations

from typing import Any

EXIT_OK = 0


def browse(source: Any, filter_text: str = "", *, stop_signals: bool = False) -> int:
    """Run the app on any Source (see :mod:`dicomsniff.tui.feed`) until the user quits.

    ``live --tui`` calls this with a source that analyses a live capture; the source's thread
    is told to stop (``collector.cancelled``) when the app ends. With ``stop_signals``,
    SIGTERM and SIGHUP end the app as q does (told to the source's ``note_stop``, if it
    has one), so a live capture still closes its files complete.
    """
    from .app import DicomBrowser

    app = DicomBrowser(source, filter_text=filter_text)
    restore = _exit_on_signals(app, source) if stop_signals else None
    try:
        code = app.run()
    finally:
        app.collector.cancelled.set()
        if restore is not None:
            restore()
    return code if isinstance(code, int) else EXIT_OK


def _exit_on_signals(app: Any, source: Any) -> Any:
    """SIGTERM/SIGHUP: ask the app to exit, from a helper thread (the handler itself runs in
    the middle of the app's event loop, which must not be re-entered). Returns the undo."""
    import signal
    import threading

    asked = threading.Event()
    over = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        note = getattr(source, "note_stop", None)
        if note is not None:
            note(signal.Signals(signum).name)
        app.collector.cancelled.set()
        asked.set()

    def exit_app() -> None:
        while not asked.wait(0.2):
            if over.is_set():
                return
        if not over.is_set():
            try:
                app.call_from_thread(app.exit, EXIT_OK)
            except RuntimeError:  # not running (yet, or any more)
                pass

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    threading.Thread(target=exit_app, name="tui-signals", daemon=True).start()

    def restore() -> None:
        over.set()
        for sig, h in old.items():
            signal.signal(sig, h)

    return restore
