"""What every subcommand shares: the parser class, argument converters, the limit and rule
options, exit codes, one-line errors, the output file and the progress bar.

Only argparse, os and sys are imported here: every subcommand module imports this at start-up.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..analysis.engine import Limits
    from ..analysis.rules import RuleConfig

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_UNUSABLE = 2
EXIT_DAMAGED = 3
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """Usage errors are one line on stderr and exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_UNUSABLE)


def fail(message: str, code: int = EXIT_UNUSABLE, prog: str = "dicomsniff") -> int:
    """Say ``prog: message`` on stderr (one line) and return ``code``."""
    sys.stderr.write(f"{prog}: {message}\n")
    sys.stderr.flush()
    return code


# -- argument converters (argparse ``type=``) ---------------------------------------------------


def positive_int(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return v


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text}")
    return v


def port(text: str) -> int:
    v = positive_int(text)
    if v > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return v


def size(text: str) -> int:
    """``100MB``, ``1GiB``... in bytes."""
    from ..units import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def duration(text: str) -> float:
    """``90s``, ``10m``, ``2h``... in seconds."""
    from ..units import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# -- options shared by the commands that build an Analyzer ------------------------------------


def add_tls_option(parser: Any) -> None:
    """``--tls-keylog FILE`` (repeatable), read back with :func:`keylog_from`."""
    parser.add_argument("--tls-keylog", action="append", default=[], metavar="FILE",
                        help="NSS key log (the SSLKEYLOGFILE format) to decrypt DICOM over TLS; "
                             "repeatable; see docs/tls.md for how to get one")


def keylog_from(args: argparse.Namespace, follow: bool = False) -> Any:
    """The key log of ``--tls-keylog`` (None without one); a file that cannot be read or
    holds no secrets is one line on stderr and exit 2. ``follow`` (live): the files are
    followed as the peers write them (they may be empty at the start)."""
    paths = getattr(args, "tls_keylog", None) or []
    if not paths:
        return None  # the TLS analyzer loads only when a ClientHello is seen
    from ..analysis.tls import KeyLogError, load_keylogs

    try:
        return load_keylogs(paths, follow=follow)
    except KeyLogError as exc:
        sys.stderr.write(f"dicomsniff: {exc}\n")
        raise SystemExit(EXIT_UNUSABLE) from None


def add_port_option(parser: Any) -> None:
    """``--port``, read back as ``args.port`` (a list)."""
    parser.add_argument("--port", type=port, action="append", default=[], metavar="PORT",
                        help="treat TCP PORT as DICOM even where the bytes don't prove it "
                             "(repeatable)")


def add_limit_options(parser: argparse.ArgumentParser, title: str = "limits (memory stays "
                      "bounded whatever the capture holds)") -> None:
    """``--max-streams``, ``--max-tcp-buffer``, ``--max-findings``, ``--max-associate-pdu``:
    read back with :func:`limits_from`."""
    lim = parser.add_argument_group(title)
    lim.add_argument("--max-streams", type=positive_int, default=10_000, metavar="N",
                     help="DICOM connections tracked at once; the oldest is evicted beyond "
                          "(default 10000)")
    lim.add_argument("--max-tcp-buffer", type=positive_int, default=4 << 20, metavar="BYTES",
                     help="out-of-order bytes held per TCP direction before a hole is declared "
                          "a gap (default 4 MiB)")
    lim.add_argument("--max-findings", type=positive_int, default=100_000, metavar="N",
                     help="findings kept in memory; more are counted (default 100000)")
    lim.add_argument("--max-associate-pdu", type=positive_int, default=1 << 20,
                     metavar="BYTES",
                     help="largest A-ASSOCIATE PDU buffered (default 1 MiB)")
    lim.add_argument("--max-transactions", type=positive_int, default=1000, metavar="N",
                     help="transactions an association keeps in memory; past N, finished "
                          "ones are written and let go (default 1000)")
    lim.add_argument("--max-outstanding", type=positive_int, default=4096, metavar="N",
                     help="requests followed at once per association while they wait for "
                          "responses; more are counted (CAP-OUTSTANDING; default 4096)")


def add_rule_options(parser: argparse.ArgumentParser) -> None:
    """``--slow-factor``, ``--slow-min``, ``--idle-threshold``, ``--disable-rule``: read back
    with :func:`rules_from`."""
    rules = parser.add_argument_group("findings rules ('dicomsniff rules' lists every finding "
                                      "code)")
    rules.add_argument("--slow-factor", type=positive_float, default=10.0, metavar="X",
                       help="a response X times slower than the median of the same command to "
                            "the same AE is DIMSE-SLOW-RESPONSE (default 10)")
    rules.add_argument("--slow-min", type=positive_float, default=1.0, metavar="SECONDS",
                       help="... and only when it took at least this long (default 1)")
    rules.add_argument("--slow-over", type=positive_float, default=None, metavar="SECONDS",
                       help="any response that took SECONDS or longer is DIMSE-SLOW-RESPONSE, "
                            "whatever the median (for an SCP that is always slow)")
    rules.add_argument("--idle-threshold", type=positive_float, default=30.0,
                       metavar="SECONDS",
                       help="an open association with no DIMSE operation for this long is "
                            "PERF-IDLE (default 30)")
    rules.add_argument("--disable-rule", action="append", default=[], metavar="CODE",
                       help="never raise findings with this code (repeatable)")


def add_object_options(p: argparse.ArgumentParser) -> None:
    """The selection and limits of the commands that read data sets (export-objects, show)."""
    add_tls_option(p)
    p.add_argument("--association", type=positive_int, action="append", default=[],
                   metavar="ID", help="only association ID (repeatable)")
    p.add_argument("--ae", action="append", default=[], metavar="TITLE",
                   help="only associations where TITLE is the calling or called AE "
                        "(repeatable; case-insensitive)")
    p.add_argument("--anonymize", action="store_true",
                   help="remove patient-identifying attributes (PS3.15 basic profile, "
                        "dicom-anonymizer); UIDs are replaced consistently within the run")
    add_port_option(p)
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    add_limit_options(p)
    from .. import inflate

    inflate.add_option(p)


def deidentifier(wanted: bool) -> Any:
    """``--anonymize``: a Deidentifier, or None (AnonymizeUnavailable if it cannot be)."""
    if not wanted:
        return None
    from ..objects.anonymize import Deidentifier

    return Deidentifier()


def limits_from(args: argparse.Namespace) -> Limits:
    """The :class:`~dicomsniff.analysis.engine.Limits` of :func:`add_limit_options`' options."""
    from ..analysis.engine import Limits

    return Limits(max_streams=args.max_streams, max_tcp_buffer=args.max_tcp_buffer,
                  max_findings=args.max_findings, max_associate_pdu=args.max_associate_pdu,
                  max_transactions=getattr(args, "max_transactions", 1000),
                  max_outstanding=getattr(args, "max_outstanding", 4096))


def rules_from(args: argparse.Namespace) -> RuleConfig:
    """The :class:`~dicomsniff.analysis.rules.RuleConfig` of :func:`add_rule_options`'
    options."""
    from ..analysis.rules import RuleConfig

    return RuleConfig(slow_factor=args.slow_factor, slow_min=args.slow_min,
                      slow_over=getattr(args, "slow_over", None),
                      idle_threshold=args.idle_threshold,
                      disabled=frozenset(c.upper() for c in args.disable_rule))


# -- output -----------------------------------------------------------------------------------


def open_output(path: str | None) -> IO[str]:
    """Standard output, or ``path`` opened for writing (exit 2 with one line if it cannot)."""
    if path is None:
        return sys.stdout
    try:
        return open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        sys.stderr.write(f"dicomsniff: cannot write {path}: {exc.strerror}\n")
        raise SystemExit(EXIT_UNUSABLE) from None


def quiet_broken_pipe() -> None:
    """rich's default exits 1 when the reader goes away; `| head` is not an error."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(EXIT_OK)


# -- the capture: one or several files, read the same way by every subcommand -------------------

CAPTURE_HELP = ("pcap or pcapng files, directories of them or globs, read as one capture "
                "merged by time (rotated sets, several sensors); .gz, .xz and .zst are read as "
                "they are; '-' reads a capture from standard input")


def _window(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= v < 3600:
        raise argparse.ArgumentTypeError(f"seconds between 0 and 3600: {text}")
    return v


def add_capture_arguments(parser: Any, help: str = CAPTURE_HELP) -> None:
    """The positional CAPTURE... and ``--dedup-window``; open them with :func:`open_input`."""
    parser.add_argument("capture", nargs="+", metavar="CAPTURE", help=help)
    add_dedup_option(parser)


def add_dedup_option(parser: Any) -> None:
    """``--dedup-window`` and ``--time-shift``, for commands whose captures are not one
    positional list (``diff``): :func:`open_input` reads them."""
    parser.add_argument("--dedup-window", type=_window, default=None, metavar="SECONDS",
                        help="several sensors: a TCP segment seen by two of them less than "
                             "this apart is analysed once (default 0.1; more when their "
                             "clocks disagree by more)")
    parser.add_argument("--time-shift", type=_shift, action="append", default=None,
                        metavar="PATTERN=SECONDS",
                        help="several files: add SECONDS (may be negative) to the timestamps "
                             "of the files whose name or path matches PATTERN (a glob), as "
                             "editcap -t does, before they are merged: a sensor whose clock "
                             "is off (CAPTURE-SENSOR-CLOCKS says by how much); repeatable")


def _shift(text: str) -> tuple[str, float]:
    pattern, sep, seconds = text.rpartition("=")
    if not sep or not pattern:
        raise argparse.ArgumentTypeError(f"PATTERN=SECONDS, e.g. 'pacs-*.pcap=-0.25': {text!r}")
    try:
        v = float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {seconds!r}") from None
    if not abs(v) < 1e9:
        raise argparse.ArgumentTypeError(f"seconds out of range: {seconds}")
    return pattern, v


# Start-up (docs/performance.md): a run imports some 200 modules whose objects (functions,
# classes, tables) live until exit, and collecting garbage among them while they load cost
# about 3% of a short run's instructions, finding none. main() pauses the collector; settle()
# resumes it once the command has what it needs (open_input calls it before the first byte
# is read, the live command before it opens an interface, main when the command returns),
# the objects made by then frozen out of the collector's sight (once per process).
_collector = {"paused": False, "frozen": False}


def pause_collector() -> None:
    """Start-up begins: no garbage collection until :func:`settle` (if it was on)."""
    if gc.isenabled():
        gc.disable()
        _collector["paused"] = True


def settle() -> None:
    """Start-up is over: collection resumes (what exists now frozen, the first time)."""
    if _collector["paused"]:
        _collector["paused"] = False
        if not _collector["frozen"]:
            _collector["frozen"] = True
            gc.freeze()
        gc.enable()


def open_input(args: argparse.Namespace, prog: str = "dicomsniff") -> Any:
    """The one way subcommands open their capture: ``args.capture`` (files, directories,
    globs, ``-``) as a :class:`~dicomsniff.sources.merge.CaptureSet`.

    Raises CaptureError, its message one line per unusable file (the later ones already
    prefixed with ``prog:``), when nothing can be read. Files that cannot be read while others
    can are said here on stderr, one line each; :func:`finish_input` says those found damaged
    on the way."""
    from ..sources.capture import CaptureError
    from ..sources.merge import DEFAULT_DEDUP_WINDOW, open_capture

    settle()
    window = getattr(args, "dedup_window", None)
    try:
        capture = open_capture(args.capture, dedup_window=DEFAULT_DEDUP_WINDOW
                               if window is None else window,
                               time_shift=getattr(args, "time_shift", None) or ())
    except CaptureError as exc:
        raise CaptureError(f"\n{prog}: ".join(str(exc).splitlines())) from None
    if not capture.single:
        _say(capture.problems, prog)
        capture.problems_said = len(capture.problems)
    return capture


def reopener(args: argparse.Namespace) -> Any:
    """For commands that read the capture more than once (show, the TUI): a
    :class:`~dicomsniff.sources.merge.CaptureRef` that opens it the same way each time
    (standard input must be copied to a file first)."""
    from ..sources.merge import DEFAULT_DEDUP_WINDOW, CaptureRef

    window = getattr(args, "dedup_window", None)
    return CaptureRef(args.capture, DEFAULT_DEDUP_WINDOW if window is None else window,
                      getattr(args, "time_shift", None) or ())


def finish_input(capture: Any, prog: str = "dicomsniff") -> bool:
    """After the analysis of several files: say the files found damaged on the way, one line
    each, and tell whether any file had a problem (exit status 3). One file's damage is the
    command's own message, as before."""
    if capture is None or capture.single:
        return False
    _say(capture.problems[capture.problems_said:], prog)
    capture.problems_said = len(capture.problems)
    return bool(capture.problems)


def capture_name(args: argparse.Namespace) -> str:
    """The capture in one name, for messages and titles: the file, or the first and a count."""
    if getattr(args, "capture_label", None):
        return args.capture_label
    specs = args.capture if isinstance(args.capture, list) else [args.capture]
    if specs == ["-"]:
        return "standard input"
    return specs[0] if len(specs) == 1 else f"{specs[0]} (+{len(specs) - 1} more)"


def _say(lines: list[str], prog: str) -> None:
    for line in lines:
        sys.stderr.write(f"{prog}: {line}\n")
    if lines:
        sys.stderr.flush()


class Progress:
    """A rich progress bar on standard error for captures over 4 MiB, on a terminal only.

    ``capture`` is a path or a CaptureSet (its files' total size on disk). ``callback`` is the
    ``progress(done, total)`` to hand the analysis (None: no bar)."""

    def __init__(self, capture: Any, disabled: bool, label: str) -> None:
        self.bar: Any = None
        self.task: Any = None
        if isinstance(capture, list):
            capture = capture[0] if len(capture) == 1 else None
        if disabled or capture == "-" or capture is None or not sys.stderr.isatty():
            return
        try:
            total = capture.size if hasattr(capture, "size") else os.path.getsize(capture)
        except OSError:
            return
        if total <= 4 << 20:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress("[progress.description]{task.description}", BarColumn(),
                                DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=True,
                                # Lines for stdout go around the bar only when they would
                                # share its terminal; a redirected stdout must get them itself.
                                redirect_stdout=sys.stdout.isatty())
        self.task = self.bar.add_task(label, total=total)
        self.bar.start()

    def update(self, done: int, _total: int) -> None:
        self.bar.update(self.task, completed=done)

    @property
    def callback(self) -> Any:
        return self.update if self.bar is not None else None

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
