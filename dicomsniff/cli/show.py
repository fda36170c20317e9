"""``dicomsniff show``: one transaction's command sets and data sets as trees, or every C-FIND's
responses checked against its query.

Only argparse is imported at start-up; pydicom, rich and the analysis load when it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .. import inflate
from .args import (
    EXIT_DAMAGED,
    EXIT_OK,
    Progress,
    add_capture_arguments,
    add_object_options,
    capture_name,
    deidentifier,
    fail,
    keylog_from,
    limits_from,
    open_input,
    positive_int,
    reopener,
)

SHOW_EPILOG = """\
examples:
  dicomsniff show find.pcap --transaction 1
      a C-FIND: the request's command set and identifier, then every response's
  dicomsniff show night.pcapng --transaction 57 --anonymize
      the same with patient-identifying attributes removed (PS3.15 basic profile)
  dicomsniff show mpps.pcap --transaction 2
      an MPPS N-SET, with its key attributes (patient, procedure, study, status, series
      and images produced) summarised and marked '*'
  dicomsniff show night.pcapng --check-queries
      every C-FIND's responses checked against its query: missing return keys
      (QUERY-KEY-MISSING) and values outside what was asked (QUERY-VALUE-MISMATCH)
  dicomsniff show night.pcapng --check-queries --json > queries.jsonl

Transaction ids are those of 'dicomsniff analyze' (and its --json "id"). Trees look like
dcmdump's: (gggg,eeee) VR [value] # Keyword; pixel data shows its size, never decoded.

exit status: 0 shown; 2 file unusable, bad usage or unknown transaction id; 3 capture
damaged part-way; 130 interrupted.
"""


def add_parser(subparsers: Any) -> None:
    """Register ``show``."""
    s = subparsers.add_parser(
        "show", help="print a transaction's command sets and data sets as trees",
        description="Print the command sets and data sets of one DIMSE transaction as "
                    "dcmdump-like trees (queries, worklists, MPPS, storage commitment, "
                    "print...), or check C-FIND responses against their queries.",
        epilog=SHOW_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_capture_arguments(s)
    s.add_argument("--transaction", type=positive_int, metavar="ID",
                   help="the transaction to show (ids as in 'dicomsniff analyze')")
    s.add_argument("--check-queries", action="store_true",
                   help="check every C-FIND's responses against its query (with "
                        "--transaction: that C-FIND only)")
    s.add_argument("--json", action="store_true",
                   help="with --check-queries: JSON Lines finding records, as analyze's")
    add_object_options(s)
    s.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """``show``: one transaction's messages, or the query check."""
    inflate.apply_option(args)
    from ..objects.anonymize import AnonymizeUnavailable
    from ..sources.capture import CaptureError

    if args.transaction is None and not args.check_queries:
        return fail("show needs --transaction ID or --check-queries (see "
                     "'dicomsniff show --help')")
    if args.json and not args.check_queries:
        return fail("--json goes with --check-queries")
    try:
        deid = deidentifier(args.anonymize and not args.check_queries)
    except AnonymizeUnavailable as exc:
        return fail(str(exc))
    args.capture_label = capture_name(args)
    args.capture, cleanup = _seekable(args.capture)
    try:  # the capture must open before anything else is said
        open_input(args).close()
    except CaptureError as exc:
        cleanup()
        return fail(str(exc))
    source = reopener(args)
    try:
        if args.check_queries:
            return check_queries(args, source)
        return show_transaction(args, source, deid)
    finally:
        cleanup()


def _seekable(capture: list[str]) -> tuple[list[str], Any]:
    """Files that can be read twice: standard input is first copied to a temporary file."""
    if capture != ["-"]:
        return capture, lambda: None
    import shutil
    import tempfile

    fd, path = tempfile.mkstemp(prefix="dicomsniff-stdin-", suffix=".pcap")
    with os.fdopen(fd, "wb") as fh:
        shutil.copyfileobj(sys.stdin.buffer, fh, 1 << 20)
    return [path], lambda: os.unlink(path)


def _one(args: argparse.Namespace) -> str | None:
    """The file to size a progress bar by (one file only)."""
    return args.capture[0] if len(args.capture) == 1 else None


def _console() -> Any:
    from rich.console import Console

    out = sys.stdout
    return Console(file=out, highlight=False, soft_wrap=True,
                   width=None if out.isatty() else 200)


def _find(args: argparse.Namespace, source: str) -> Any:
    """The transaction asked for, or an exit code and a message on standard error."""
    from ..objects.collect import TransactionNotFound, locate
    from ..sources.capture import CaptureError

    bar = Progress(_one(args), args.no_progress, "finding the transaction")
    try:
        t, a = locate(source, args.transaction, ports=args.port, progress=bar.callback)
    except CaptureError as exc:
        return fail(str(exc))
    except TransactionNotFound as exc:
        have = (f"the capture has transactions #1-#{exc.last}" if exc.last
                else "the capture has no DIMSE transaction")
        return fail(f"{capture_name(args)}: no transaction #{exc.wanted}: {have} (ids as in "
                     "'dicomsniff analyze')")
    finally:
        bar.stop()
    if args.association and a.id not in args.association:
        return fail(f"transaction #{t.id} belongs to association #{a.id}, not to the "
                     "--association asked for")
    return t, a


def show_transaction(args: argparse.Namespace, source: str, deid: Any) -> int:
    from ..objects.collect import collect
    from ..objects.show import print_transaction

    found = _find(args, source)
    if isinstance(found, int):
        return found
    t, a = found
    bar = Progress(_one(args), args.no_progress, "reading its data sets")
    try:
        col = collect(source, t, a, ports=args.port, progress=bar.callback)
    finally:
        bar.stop()
    print_transaction(_console(), col, deid)
    if col.reader_error:
        return fail(f"{capture_name(args)}: capture damaged: {col.reader_error}", EXIT_DAMAGED)
    return EXIT_OK


def check_queries(args: argparse.Namespace, source: str) -> int:
    from ..analysis.run import analyze_source
    from ..model import Finding
    from ..objects.analyzer import ObjectAnalyzer
    from ..objects.filters import Filters
    from ..objects.queries import QueryChecker
    from ..sources.capture import CaptureError

    only = None
    if args.transaction is not None:
        found = _find(args, source)
        if isinstance(found, int):
            return found
        only = found[0]
        if only.command != "C-FIND":
            return fail(f"transaction #{only.id} is a {only.command}, not a C-FIND")
    findings: list[Finding] = []

    def emit(f: Finding) -> None:
        if args.json:
            sys.stdout.write(json.dumps(f.to_record()) + "\n")
        else:
            findings.append(f)

    checker = QueryChecker(emit, Filters.of(args.association, args.ae), only,
                           redact=args.anonymize)
    analyzer = ObjectAnalyzer(checker, ports=args.port, keep=False, limits=limits_from(args),
                              tls_keylog=keylog_from(args))
    analyzer.on_transaction.append(checker.on_transaction)
    bar = Progress(_one(args), args.no_progress, "checking queries")
    try:
        damaged = analyze_source(source, analyzer, bar.callback).reader_error
    except CaptureError as exc:
        return fail(str(exc))
    finally:
        bar.stop()
    _report(args, checker, findings)
    if damaged:
        return fail(f"{capture_name(args)}: capture damaged: {damaged} (what came before was "
                     "checked)", EXIT_DAMAGED)
    return EXIT_OK


def _report(args: argparse.Namespace, checker: Any, findings: list[Any]) -> None:
    if args.json:
        sys.stdout.write(json.dumps({"type": "summary", "queries": checker.queries,
                                     "responses": checker.responses,
                                     "findings": checker.findings}) + "\n")
        return
    from rich.text import Text

    from ..report.text import findings_list

    console = _console()
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: (order.get(f.severity, 3), f.frame or 0))
    if findings:
        console.print(findings_list(findings))
    console.print(Text(f"{checker.queries} C-FIND quer{'y' if checker.queries == 1 else 'ies'}"
                       f" checked, {checker.responses} response identifier"
                       f"{'' if checker.responses == 1 else 's'}, {len(findings) or 'no'} "
                       f"finding{'' if len(findings) == 1 else 's'}"))
