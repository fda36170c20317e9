"""``dicomsniff analyze CAPTURE``: the DICOM story of a capture file, as a report or JSON Lines.

Only argparse is imported at start-up; the analysis loads when the command runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

from ..report.options import add_format_options, add_selection_options, selection_from
from .args import (
    EXIT_DAMAGED,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNUSABLE,
    Progress,
    add_limit_options,
    add_port_option,
    add_rule_options,
    fail,
    limits_from,
    open_output,
    quiet_broken_pipe,
    rules_from,
)

EPILOG = """\
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
  dicomsniff analyze night.pcapng --ae CT01 --status failure --since 02:00 --until 03:00
      only CT01's failed operations between 2 and 3 o'clock (UTC; --localtime for local)
  dicomsniff analyze night.pcapng --csv transactions > night.csv
      one table for a spreadsheet (or findings, associations)

exit status: 0 analysed; 1 findings at --fail-on level; 2 file unusable or bad usage;
3 capture damaged part-way (what came before was analysed); 130 interrupted.
"""


def add_parser(subparsers: Any) -> None:
    """Register ``analyze``."""
    a = subparsers.add_parser(
        "analyze", help="analyse a pcap/pcapng capture file",
        description="Read a pcap or pcapng capture and tell its DICOM story: associations, "
                    "negotiation, DIMSE transactions with their statuses and timing, "
                    "findings, and a response time summary.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("capture", help="pcap or pcapng file ('-' reads a capture from standard input)")
    a.add_argument("--json", action="store_true",
                   help="write JSON Lines (one record per line) instead of the report")
    add_port_option(a)
    a.add_argument("--findings-only", action="store_true",
                   help="print only the findings (worst first)")
    a.add_argument("--fail-on", choices=("error", "warning", "info"), default=None,
                   help="exit with status 1 if a finding of this severity or worse exists")
    a.add_argument("--all-contexts", action="store_true",
                   help="list every presentation context (default: those used or rejected)")
    a.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    a.add_argument("-o", "--output", metavar="FILE",
                   help="write the report or JSON Lines to FILE instead of standard output")
    add_format_options(a)
    add_selection_options(a)
    add_limit_options(a)
    add_rule_options(a)
    a.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The ``analyze`` handler."""
    from ..analysis.engine import Analyzer
    from ..analysis.run import analyze_source
    from ..analysis.summary import Summary
    from ..sources.capture import CaptureError

    if args.json and args.csv:
        return fail("--json and --csv: choose one")
    sel = selection_from(args)
    streamed = args.json or args.csv is not None
    analyzer = Analyzer(ports=args.port, limits=limits_from(args), keep=not streamed,
                        rules=rules_from(args))
    from ..analysis.http import session

    summary = Summary()
    analyzer.on_association.append(summary.add)
    web = session(analyzer)  # DICOMweb: HTTP connections told in the same story
    web.on_transaction.append(summary.add_web)
    web.on_connection.append(summary.add_http_connection)
    out = open_output(args.output)
    writer = None
    if args.json:
        from ..report.jsonl import JsonLinesWriter

        writer = JsonLinesWriter(out, findings_only=args.findings_only, selection=sel)

        def json_association(a: Any) -> None:
            sel.first_time(analyzer.stats.first_ts)  # for relative and time-of-day bounds
            writer.association(a)

        analyzer.on_association.append(json_association)
        analyzer.on_finding.append(writer.finding)
        if sel.empty:  # the selection options select associations
            web.on_connection.append(writer.http_connection)
    elif args.csv:
        from ..report.csvout import CsvWriter

        table = CsvWriter(out, args.csv, local=args.localtime)

        def csv_association(a: Any) -> None:
            sel.first_time(analyzer.stats.first_ts)
            if sel.association(a):
                table.association(a, sel.transactions(a))

        analyzer.on_association.append(csv_association)
        analyzer.on_finding.append(lambda f: table.finding(f) if f.association is None
                                   else None)

    source = sys.stdin.buffer if args.capture == "-" else args.capture
    bar = Progress(args.capture, args.no_progress, "reading")
    interrupted = 0  # the signal that stopped the reading
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        result = analyze_source(source, analyzer, bar.callback)
    except CaptureError as exc:
        bar.stop()
        sys.stderr.write(f"dicomsniff: {exc}\n")
        return EXIT_UNUSABLE
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM through _terminated
        interrupted = exc.args[0] if exc.args and isinstance(exc.args[0], int) else \
            signal.SIGINT
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the report of what was read first
        analyzer.finish()
        result = None
    finally:
        bar.stop()
        if not interrupted:
            signal.signal(signal.SIGTERM, previous)

    stats = analyzer.stats
    rows = summary.table()
    if writer is not None:
        writer.summary({"frames": stats.frames, "bytes": stats.bytes,
                        "associations": summary.associations, "outcomes": summary.outcomes,
                        "http_connections": summary.http_connections,
                        "findings": stats.findings, "by_severity": stats.by_severity,
                        "findings_dropped": stats.findings_dropped,
                        "ignored_connections": stats.ignored_connections,
                        "evicted_connections": stats.evicted,
                        "capture_error": result.reader_error if result else None,
                        "interrupted": bool(interrupted),
                        "services": rows})
    elif args.csv:
        pass  # the rows went out as each association ended
    else:
        from rich.console import Console

        from ..report.dicomweb import WebPart
        from ..report.text import print_report

        console = Console(file=out, highlight=False, soft_wrap=False,
                          width=None if out.isatty() else _file_width())
        console.on_broken_pipe = quiet_broken_pipe  # type: ignore[method-assign]
        capture_findings = [f for f in analyzer.findings if f.association is None]
        sel.first_time(stats.first_ts)
        print_report(console, analyzer.associations, capture_findings, rows, stats,
                     summary.outcomes, findings_only=args.findings_only,
                     all_contexts=args.all_contexts, local=args.localtime, selection=sel,
                     others=WebPart(web) if sel.empty else None)
    if out is not sys.stdout:
        out.close()
    else:
        out.flush()
    if interrupted:
        name = "SIGTERM" if interrupted == signal.SIGTERM else "interrupted"
        sys.stderr.write(f"dicomsniff: {name}; the report covers the {stats.frames} frames "
                         "read\n")
        return EXIT_INTERRUPTED if interrupted != signal.SIGTERM else 128 + signal.SIGTERM
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


def _terminated(signum: int, _frame: object) -> None:
    """SIGTERM (a service manager stopping us, ``timeout``): stop reading as Ctrl-C does, so
    the report, or the JSON summary record, still covers what was read."""
    raise KeyboardInterrupt(signum)


def _file_width() -> int:
    """Width of the report written to a file or pipe: $COLUMNS when set (as a terminal's
    would be), else 160. Nothing is cut at any width; this only decides where lines wrap."""
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return 160
