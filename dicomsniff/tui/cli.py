"""``dicomsniff tui CAPTURE``: the command line side of the TUI.

Only argparse is imported when the CLI starts (every subcommand module loads with it); the
capture is checked before textual is even imported, so a missing or non-capture file is one
line on stderr and exit status 2, never a flash of a screen.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import inflate

EXIT_OK, EXIT_UNUSABLE = 0, 2

EPILOG = """\
examples:
  dicomsniff tui night.pcapng
      every association, coloured by how it went; Enter shows its ladder
  dicomsniff tui move.pcap --filter 'command:C-MOVE'
      start with a filter (the same language as the filter bar, '/' in the app)
  dicomsniff tui capture.pcap --port 4100
      also treat port 4100 as DICOM

Press ? in the app for the keys and the filter language.
exit status: 0 quit normally; 2 file unusable or bad usage.
"""


def add_parser(subparsers: Any, parser_class: type[argparse.ArgumentParser] | None = None
               ) -> None:
    """Register ``tui`` (the CLI calls this for every module in COMMAND_MODULES)."""
    from ..cli import _port, add_limit_options, add_rule_options

    p = subparsers.add_parser(
        "tui", help="browse a capture interactively (associations, ladders, findings)",
        description="Browse the DICOM associations of a capture like sngrep browses SIP "
                    "calls: a sortable, filterable list coloured by outcome, the ladder "
                    "(sequence diagram) of the selected associations, every message's command "
                    "set, data set and bytes, the findings, and exports.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("capture", help="pcap or pcapng file")
    p.add_argument("--filter", default="", metavar="TEXT",
                   help="initial filter, e.g. 'ae:CT1 status:failure' (see ? in the app)")
    p.add_argument("--port", type=_port, action="append", default=[], metavar="PORT",
                   help="treat TCP PORT as DICOM even where the bytes don't prove it "
                        "(repeatable)")
    add_limit_options(p)
    inflate.add_option(p)
    add_rule_options(p)
    p.set_defaults(handler=run)


def check_capture(path: str) -> str | None:
    """Why ``path`` cannot be browsed (one line), or None."""
    from ..sources.capture import CaptureError, CaptureReader

    if path == "-":
        return "the TUI reads a capture file, not standard input (it reads packets again)"
    try:
        CaptureReader(path).close()
    except CaptureError as exc:
        return str(exc)
    return None


def run(args: argparse.Namespace) -> int:
    """The ``tui`` handler: check the file, then run the app until the user quits."""
    why = check_capture(args.capture)
    if why is not None:
        sys.stderr.write(f"dicomsniff: {why}\n")
        return EXIT_UNUSABLE
    from .filter import FilterError, parse

    try:
        parse(args.filter)
    except FilterError as exc:
        sys.stderr.write(f"dicomsniff: --filter: {exc}\n")
        return EXIT_UNUSABLE
    from ..cli import limits_from, rules_from
    from .feed import FileSource

    inflate.apply_option(args)

    return browse(FileSource(args.capture, args.port, limits=limits_from(args),
                             rules=rules_from(args)), filter_text=args.filter)


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
