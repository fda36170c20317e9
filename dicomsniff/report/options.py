"""analyze's output options: which associations and transactions (the selection words of
``live`` and ``diagram``), CSV tables, local time. Only argparse is imported at start-up.
"""

from __future__ import annotations

import argparse
from typing import Any

STATUSES = ("success", "warning", "failure", "pending", "cancel", "none")
CSV_TABLES = ("transactions", "findings", "associations", "tls")


def _time(text: str) -> str:
    """Checked here (a one-line usage error), read in :func:`selection_from` (which knows
    whether --localtime applies)."""
    from .selection import parse_time

    try:
        parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _association_id(text: str) -> int:
    try:
        v = int(text.lstrip("#"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an association id: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"not an association id: {text!r}")
    return v


def add_selection_options(p: Any) -> None:
    """``--ae``, ``--association``, ``--command``, ``--status``, ``--since``, ``--until``."""
    g = p.add_argument_group("selection (the report, --json and --csv keep what matches)")
    g.add_argument("--ae", action="append", default=[], metavar="TITLE",
                   help="associations where TITLE is the calling or called AE (repeatable; "
                        "case-insensitive)")
    g.add_argument("--association", type=_association_id, action="append", default=[],
                   metavar="ID", help="association ID, as numbered in the report (repeatable)")
    g.add_argument("--command", action="append", default=[], metavar="CMD",
                   help="transactions of this command, e.g. C-STORE, C-MOVE (repeatable)")
    g.add_argument("--status", action="append", default=[], choices=STATUSES,
                   help="transactions whose final status is in this category; none: "
                        "never answered (repeatable)")
    g.add_argument("--since", type=_time, metavar="TIME",
                   help="from TIME: 2026-11-25T02:10:00 (UTC unless --localtime, or with an "
                        "offset), a time of day 02:10 on the capture's first day, or +90s / "
                        "+10m after the capture's first packet")
    g.add_argument("--until", type=_time, metavar="TIME", help="up to TIME (same forms)")


def add_format_options(p: Any) -> None:
    """``--csv TABLE`` and ``--localtime``."""
    p.add_argument("--csv", choices=CSV_TABLES, metavar="TABLE",
                   help="write one table as CSV instead of the report: transactions, "
                        "findings, associations or tls (one row per TLS connection)")
    p.add_argument("--localtime", action="store_true",
                   help="show times in this machine's time zone (with its offset) instead "
                        "of UTC; also how --since/--until read a date-time without offset")


def selection_from(args: argparse.Namespace) -> Any:
    """The :class:`~dicomsniff.report.selection.AnalyzeSelection` the options ask for."""
    from .selection import AnalyzeSelection, parse_time

    local = bool(getattr(args, "localtime", False))
    since = parse_time(args.since, local=local) if args.since else None
    until = parse_time(args.until, local=local) if args.until else None
    return AnalyzeSelection(aes=args.ae, ids=args.association, commands=args.command,
                            statuses=args.status, since=since, until=until, local=local)
