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
from .args import (
    EXIT_UNUSABLE,
    add_capture_arguments,
    add_limit_options,
    add_port_option,
    add_rule_options,
    add_tls_option,
    keylog_from,
    limits_from,
    open_input,
    reopener,
    rules_from,
)

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


def add_parser(subparsers: Any) -> None:
    """Register ``tui``."""
    p = subparsers.add_parser(
        "tui", help="browse a capture interactively (associations, ladders, findings)",
        description="Browse the DICOM associations of a capture like sngrep browses SIP "
                    "calls: a sortable, filterable list coloured by outcome, the ladder "
                    "(sequence diagram) of the selected associations, every message's command "
                    "set, data set and bytes, the findings, and exports.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_capture_arguments(p, help="pcap or pcapng files, directories or globs, read as one "
                             "capture merged by time; .gz/.xz/.zst are read as they are")
    p.add_argument("--filter", default="", metavar="TEXT",
                   help="initial filter, e.g. 'ae:CT1 status:failure' (see ? in the app)")
    add_port_option(p)
    add_tls_option(p)
    add_limit_options(p)
    inflate.add_option(p)
    add_rule_options(p)
    p.set_defaults(handler=run)


def check_capture(args: argparse.Namespace) -> str | None:
    """Why the capture cannot be browsed (one line per file), or None."""
    from ..sources.capture import CaptureError

    if "-" in args.capture:
        return "the TUI reads capture files, not standard input (it reads packets again)"
    try:
        open_input(args).close()
    except CaptureError as exc:
        return str(exc)
    return None


def run(args: argparse.Namespace) -> int:
    """The ``tui`` handler: check the file, then run the app until the user quits."""
    why = check_capture(args)
    if why is not None:
        sys.stderr.write(f"dicomsniff: {why}\n")
        return EXIT_UNUSABLE
    from ..tui.filter import FilterError, parse

    try:
        parse(args.filter)
    except FilterError as exc:
        sys.stderr.write(f"dicomsniff: --filter: {exc}\n")
        return EXIT_UNUSABLE
    from ..tui.browse import browse
    from ..tui.feed import FileSource

    inflate.apply_option(args)

    return browse(FileSource(reopener(args), args.port, limits=limits_from(args),
                             rules=rules_from(args), tls_keylog=keylog_from(args)),
                  filter_text=args.filter)
