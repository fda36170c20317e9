"""The two modes of ``dicomsniff show``: one transaction as trees, or the query check."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..cli import limits_from

EXIT_OK, EXIT_UNUSABLE, EXIT_DAMAGED = 0, 2, 3


def _fail(message: str, code: int = EXIT_UNUSABLE) -> int:
    sys.stderr.write(f"dicomsniff: {message}\n")
    return code


def _console() -> Any:
    from rich.console import Console

    out = sys.stdout
    return Console(file=out, highlight=False, soft_wrap=True,
                   width=None if out.isatty() else 200)


def _find(args: argparse.Namespace, source: str) -> Any:
    """The transaction asked for, or an exit code and a message on standard error."""
    from ..sources.capture import CaptureError
    from .cli import _Progress
    from .collect import TransactionNotFound, locate

    bar = _Progress(args.capture, args.no_progress, "finding the transaction")
    try:
        t, a = locate(source, args.transaction, ports=args.port, progress=bar.callback)
    except CaptureError as exc:
        return _fail(str(exc))
    except TransactionNotFound as exc:
        have = (f"the capture has transactions #1-#{exc.last}" if exc.last
                else "the capture has no DIMSE transaction")
        return _fail(f"{args.capture}: no transaction #{exc.wanted}: {have} (ids as in "
                     "'dicomsniff analyze')")
    finally:
        bar.stop()
    if args.association and a.id not in args.association:
        return _fail(f"transaction #{t.id} belongs to association #{a.id}, not to the "
                     "--association asked for")
    return t, a


def show_transaction(args: argparse.Namespace, source: str, deid: Any) -> int:
    from .cli import _Progress
    from .collect import collect
    from .show import print_transaction

    found = _find(args, source)
    if isinstance(found, int):
        return found
    t, a = found
    bar = _Progress(args.capture, args.no_progress, "reading its data sets")
    try:
        col = collect(source, t, a, ports=args.port, progress=bar.callback)
    finally:
        bar.stop()
    print_transaction(_console(), col, deid)
    if col.reader_error:
        return _fail(f"{args.capture}: capture damaged: {col.reader_error}", EXIT_DAMAGED)
    return EXIT_OK


def check_queries(args: argparse.Namespace, source: str) -> int:
    from ..analysis.run import analyze_source
    from ..model import Finding
    from ..sources.capture import CaptureError
    from .analyzer import ObjectAnalyzer
    from .cli import _Progress
    from .filters import Filters
    from .queries import QueryChecker

    only = None
    if args.transaction is not None:
        found = _find(args, source)
        if isinstance(found, int):
            return found
        only = found[0]
        if only.command != "C-FIND":
            return _fail(f"transaction #{only.id} is a {only.command}, not a C-FIND")
    findings: list[Finding] = []

    def emit(f: Finding) -> None:
        if args.json:
            sys.stdout.write(json.dumps(f.to_record()) + "\n")
        else:
            findings.append(f)

    checker = QueryChecker(emit, Filters.of(args.association, args.ae), only,
                           redact=args.anonymize)
    analyzer = ObjectAnalyzer(checker, ports=args.port, keep=False, limits=limits_from(args))
    analyzer.on_transaction.append(checker.on_transaction)
    bar = _Progress(args.capture, args.no_progress, "checking queries")
    try:
        damaged = analyze_source(source, analyzer, bar.callback).reader_error
    except CaptureError as exc:
        return _fail(str(exc))
    finally:
        bar.stop()
    _report(args, checker, findings)
    if damaged:
        return _fail(f"{args.capture}: capture damaged: {damaged} (what came before was "
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
