"""Command line: ``dicomsniff analyze CAPTURE`` and friends.

Exit codes (documented in README.md and --help):
  0  analysed (whatever was found, unless --fail-on says otherwise)
  1  findings at or above the --fail-on severity
  2  the file cannot be analysed at all (missing, unreadable, not a capture) or bad usage
  3  the capture is damaged part-way (truncated, corrupt block): everything before the damage
     was analysed and reported
 130 interrupted (Ctrl-C); what was read so far is reported
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from .analysis.engine import Limits
    from .analysis.rules import RuleConfig

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_UNUSABLE = 2
EXIT_DAMAGED = 3
EXIT_INTERRUPTED = 130

ANALYZE_EPILOG = """\
examples:
  dicomsniff analyze night.pcapng
      every association, its negotiation and DIMSE transactions, findings, and the
      service response time table
  dicomsniff analyze night.pcapng --findings-only
      just what went wrong, worst first
  dicomsniff analyze capture.pcap --port 4100 --port 4101
      also treat these ports as DICOM (DICOM is detected on any port by its first bytes)
  dicomsniff analyze night.pcapng --json > night.jsonl
      JSON Lines for scripts: association, transaction, finding and summary records
  dicomsniff analyze night.pcapng --fail-on error
      exit status 1 when any error finding exists (for CI pipelines)

exit status: 0 analysed; 1 findings at --fail-on level; 2 file unusable or bad usage;
3 capture damaged part-way (what came before was analysed); 130 interrupted.
"""


# Other subcommands live in their own modules. Each has ``add_parser(subparsers, parser_class)``
# that adds its parser and sets ``handler`` (a callable taking the parsed args, returning the
# exit code) with ``set_defaults``. Keep their top-level imports light: they load at startup.
COMMAND_MODULES: tuple[str, ...] = (
    "dicomsniff.export.diagram_cmd",
    "dicomsniff.live_cmd",
    "dicomsniff.objects.cli",
    "dicomsniff.tui.cli",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: one line, exit 2
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_UNUSABLE)


def _positive_int(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text}")
    return v


def _port(text: str) -> int:
    v = _positive_int(text)
    if v > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return v


# -- options shared by the commands that build an Analyzer ----------------------------------


def add_limit_options(parser: argparse.ArgumentParser, title: str = "limits (memory stays "
                      "bounded whatever the capture holds)") -> None:
    """``--max-streams``, ``--max-tcp-buffer``, ``--max-findings``, ``--max-associate-pdu``:
    read back with :func:`limits_from`."""
    lim = parser.add_argument_group(title)
    lim.add_argument("--max-streams", type=_positive_int, default=10_000, metavar="N",
                     help="DICOM connections tracked at once; the oldest is evicted beyond "
                          "(default 10000)")
    lim.add_argument("--max-tcp-buffer", type=_positive_int, default=4 << 20, metavar="BYTES",
                     help="out-of-order bytes held per TCP direction before a hole is declared "
                          "a gap (default 4 MiB)")
    lim.add_argument("--max-findings", type=_positive_int, default=100_000, metavar="N",
                     help="findings kept in memory; more are counted (default 100000)")
    lim.add_argument("--max-associate-pdu", type=_positive_int, default=1 << 20,
                     metavar="BYTES",
                     help="largest A-ASSOCIATE PDU buffered (default 1 MiB)")


def add_rule_options(parser: argparse.ArgumentParser) -> None:
    """``--slow-factor``, ``--slow-min``, ``--idle-threshold``, ``--disable-rule``: read back
    with :func:`rules_from`."""
    rules = parser.add_argument_group("findings rules ('python3 -m dicomsniff.analysis.rules' "
                                      "lists every finding code)")
    rules.add_argument("--slow-factor", type=_positive_float, default=10.0, metavar="X",
                       help="a response X times slower than the median of the same command to "
                            "the same AE is DIMSE-SLOW-RESPONSE (default 10)")
    rules.add_argument("--slow-min", type=_positive_float, default=1.0, metavar="SECONDS",
                       help="... and only when it took at least this long (default 1)")
    rules.add_argument("--idle-threshold", type=_positive_float, default=30.0,
                       metavar="SECONDS",
                       help="an open association with no DIMSE operation for this long is "
                            "PERF-IDLE (default 30)")
    rules.add_argument("--disable-rule", action="append", default=[], metavar="CODE",
                       help="never raise findings with this code (repeatable)")


def limits_from(args: argparse.Namespace) -> Limits:
    """The :class:`~dicomsniff.analysis.engine.Limits` of :func:`add_limit_options`' options."""
    from .analysis.engine import Limits

    return Limits(max_streams=args.max_streams, max_tcp_buffer=args.max_tcp_buffer,
                  max_findings=args.max_findings, max_associate_pdu=args.max_associate_pdu)


def rules_from(args: argparse.Namespace) -> RuleConfig:
    """The :class:`~dicomsniff.analysis.rules.RuleConfig` of :func:`add_rule_options`'
    options."""
    from .analysis.rules import RuleConfig

    return RuleConfig(slow_factor=args.slow_factor, slow_min=args.slow_min,
                      idle_threshold=args.idle_threshold,
                      disabled=frozenset(c.upper() for c in args.disable_rule))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dicomsniff",
                description="Passive DICOM network protocol analyzer: who associated with "
                            "whom, what was negotiated, every DIMSE request and response, "
                            "and what broke the rules.",
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="Run 'dicomsniff COMMAND --help' for a command's options and examples.")
    from . import __version__

    p.add_argument("--version", action="version", version=f"dicomsniff {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    a = sub.add_parser("analyze", help="analyse a pcap/pcapng capture file",
                       description="Read a pcap or pcapng capture and tell its DICOM story: "
                                   "associations, negotiation, DIMSE transactions with their "
                                   "statuses and timing, findings, and a response time summary.",
                       epilog=ANALYZE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("capture", help="pcap or pcapng file ('-' reads a capture from standard input)")
    a.add_argument("--json", action="store_true",
                   help="write JSON Lines (one record per line) instead of the report")
    a.add_argument("--port", type=_port, action="append", default=[], metavar="PORT",
                   help="treat TCP PORT as DICOM even where the bytes don't prove it "
                        "(repeatable)")
    a.add_argument("--findings-only", action="store_true",
                   help="print only the findings (worst first)")
    a.add_argument("--fail-on", choices=("error", "warning", "info"), default=None,
                   help="exit with status 1 if a finding of this severity or worse exists")
    a.add_argument("--all-contexts", action="store_true",
                   help="list every presentation context (default: those used or rejected)")
    a.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    a.add_argument("-o", "--output", metavar="FILE",
                   help="write the report or JSON Lines to FILE instead of standard output")
    add_limit_options(a)
    add_rule_options(a)
    a.set_defaults(handler=cmd_analyze)
    for modname in COMMAND_MODULES:
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        mod.add_parser(sub, _Parser)
    return p


def _open_output(path: str | None) -> IO[str]:
    if path is None:
        return sys.stdout
    try:
        return open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        sys.stderr.write(f"dicomsniff: cannot write {path}: {exc.strerror}\n")
        raise SystemExit(EXIT_UNUSABLE) from None


def cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis.engine import Analyzer
    from .analysis.run import analyze_source
    from .analysis.summary import Summary
    from .sources.capture import CaptureError

    analyzer = Analyzer(ports=args.port, limits=limits_from(args), keep=not args.json,
                        rules=rules_from(args))
    summary = Summary()
    analyzer.on_association.append(summary.add)
    out = _open_output(args.output)
    writer = None
    if args.json:
        from .report.jsonl import JsonLinesWriter

        writer = JsonLinesWriter(out, findings_only=args.findings_only)
        analyzer.on_association.append(writer.association)
        analyzer.on_finding.append(writer.finding)

    source = sys.stdin.buffer if args.capture == "-" else args.capture
    progress = None
    bar = None
    show_bar = (not args.no_progress and sys.stderr.isatty() and args.capture != "-")
    if show_bar:
        try:
            size = os.path.getsize(args.capture)
        except OSError:
            size = 0
        if size > 4 << 20:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            bar = Progress("[progress.description]{task.description}", BarColumn(),
                           DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                           console=Console(stderr=True), transient=True)
            task = bar.add_task("reading", total=size)
            bar.start()

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done)

    interrupted = False
    try:
        result = analyze_source(source, analyzer, progress)
    except CaptureError as exc:
        if bar is not None:
            bar.stop()
        sys.stderr.write(f"dicomsniff: {exc}\n")
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        interrupted = True
        analyzer.finish()
        result = None
    finally:
        if bar is not None:
            bar.stop()

    stats = analyzer.stats
    rows = summary.table()
    if writer is not None:
        writer.summary({"frames": stats.frames, "bytes": stats.bytes,
                        "associations": summary.associations, "outcomes": summary.outcomes,
                        "findings": stats.findings, "by_severity": stats.by_severity,
                        "findings_dropped": stats.findings_dropped,
                        "ignored_connections": stats.ignored_connections,
                        "evicted_connections": stats.evicted,
                        "capture_error": result.reader_error if result else None,
                        "interrupted": interrupted,
                        "services": rows})
    else:
        from rich.console import Console

        from .report.text import print_report

        console = Console(file=out, highlight=False, soft_wrap=False,
                          width=None if out.isatty() else _file_width())
        console.on_broken_pipe = _quiet_broken_pipe  # type: ignore[method-assign]
        capture_findings = [f for f in analyzer.findings if f.association is None]
        print_report(console, analyzer.associations, capture_findings, rows, stats,
                     summary.outcomes, findings_only=args.findings_only,
                     all_contexts=args.all_contexts)
    if out is not sys.stdout:
        out.close()
    else:
        out.flush()
    if interrupted:
        sys.stderr.write("dicomsniff: interrupted; the report covers what was read\n")
        return EXIT_INTERRUPTED
    if result is not None and result.reader_error:
        sys.stderr.write(f"dicomsniff: {args.capture}: capture damaged: {result.reader_error}"
                         f" (the {result.packets} frames before it were analysed)\n")
        return EXIT_DAMAGED
    if args.fail_on:
        order = ("error", "warning", "info")
        worst = order[: order.index(args.fail_on) + 1]
        if any(stats.by_severity.get(s, 0) for s in worst):
            return EXIT_FINDINGS
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_UNUSABLE
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_UNUSABLE
    try:
        return handler(args)
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error worth a traceback.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return EXIT_OK


def _quiet_broken_pipe() -> None:
    """rich's default exits 1 when the reader goes away; `| head` is not an error."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(EXIT_OK)


def _file_width() -> int:
    """Width of the report written to a file or pipe: $COLUMNS when set (as a terminal's
    would be), else 160. Nothing is cut at any width; this only decides where lines wrap."""
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return 160


def entry() -> None:
    """Console entry point: a closed pipe (``| head``) ends the program quietly, status 0."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        code = EXIT_OK
    sys.exit(code)


if __name__ == "__main__":
    entry()
