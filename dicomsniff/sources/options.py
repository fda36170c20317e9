"""The capture arguments every subcommand shares, and the one way they are opened.

``add_capture_arguments`` adds the positional CAPTURE... (files, directories, globs, ``-``) and
``--dedup-window``; ``open_input`` opens them with :func:`~.merge.open_capture` and says what
could not be used, one line per file on stderr, so that ``analyze``, ``diagram``, ``tui``,
``export-objects`` and ``show`` all read several files, compressed files and two sensors the
same way. Only argparse and sys are imported at start-up.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .merge import CaptureSet

__all__ = ["CAPTURE_HELP", "add_capture_arguments", "finish_input", "label", "open_input",
           "say_problems"]

CAPTURE_HELP = ("pcap or pcapng files, directories of them or globs, read as one capture "
                "merged by time (rotated sets, several sensors); .gz/.xz/.zst are read as they "
                "are; '-' reads a capture from standard input")


def _window(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= v < 3600:
        raise argparse.ArgumentTypeError(f"seconds between 0 and 3600: {text}")
    return v


def add_capture_arguments(parser: Any, help: str = CAPTURE_HELP) -> None:
    """Positional ``capture`` (one or more) and ``--dedup-window``."""
    parser.add_argument("capture", nargs="+", metavar="CAPTURE", help=help)
    parser.add_argument("--dedup-window", type=_window, default=None, metavar="SECONDS",
                        help="several sensors: a TCP segment seen by two of them within this "
                             "many seconds is analysed once (default 0.1; raise it when the "
                             "sensors' clocks disagree by more)")


def open_input(args: argparse.Namespace, prog: str = "dicomsniff") -> CaptureSet:
    """Open ``args.capture`` as one capture; raises CaptureError (one line per unusable file,
    each already prefixed for stderr after the first) when nothing can be read. Files that
    could not be read while others could are said on stderr, one line each, here."""
    from .capture import CaptureError
    from .merge import DEFAULT_DEDUP_WINDOW, open_capture

    window = getattr(args, "dedup_window", None)
    specs = args.capture if isinstance(args.capture, list) else [args.capture]
    try:
        capture = open_capture(specs, dedup_window=DEFAULT_DEDUP_WINDOW if window is None
                               else window)
    except CaptureError as exc:
        raise CaptureError(f"\n{prog}: ".join(str(exc).splitlines())) from None
    if not capture.single:
        say_problems(capture.problems, prog)
        capture.problems_said = len(capture.problems)
    return capture


def finish_input(capture: CaptureSet, prog: str = "dicomsniff") -> bool:
    """After the analysis: say the files found damaged on the way (several files; one file's
    damage is the command's own message) and tell whether any file had a problem, which makes
    the exit status 3."""
    if capture.single:
        return False
    say_problems(capture.problems[capture.problems_said:], prog)
    capture.problems_said = len(capture.problems)
    return bool(capture.problems)


def say_problems(lines: list[str], prog: str = "dicomsniff") -> None:
    for line in lines:
        sys.stderr.write(f"{prog}: {line}\n")
    if lines:
        sys.stderr.flush()


def label(args: argparse.Namespace) -> str:
    """The capture as one name for messages and the store: a file, or the first and a count."""
    specs = args.capture if isinstance(args.capture, list) else [args.capture]
    return specs[0] if len(specs) == 1 else f"{specs[0]} (+{len(specs) - 1} more)"
