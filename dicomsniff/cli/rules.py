"""``dicomsniff rules``: the catalogue of finding codes (what --disable-rule takes)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .args import EXIT_OK, EXIT_UNUSABLE, fail, quiet_broken_pipe

EPILOG = """\
examples:
  dicomsniff rules                  every code: severity, the standard's section, meaning
  dicomsniff rules SLOW             the codes containing SLOW
  dicomsniff rules --markdown       a Markdown table, for documents
"""


def add_parser(subparsers: Any) -> None:
    """Register ``rules``."""
    p = subparsers.add_parser(
        "rules", help="list every finding code, its severity and the standard's section",
        description="The catalogue of findings: each code (stable: what --disable-rule "
                    "takes), its default severity, the section of the standard and what it "
                    "means.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("only", nargs="?", metavar="TEXT",
                   help="only the codes containing TEXT (case-insensitive)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..report.rules import print_catalogue, print_markdown

    if args.markdown:
        print_markdown(sys.stdout, args.only)
        sys.stdout.flush()
        return EXIT_OK
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=False)
    console.on_broken_pipe = quiet_broken_pipe  # type: ignore[method-assign]
    if not print_catalogue(console, args.only):
        return fail(f"no finding code contains {args.only!r}", EXIT_UNUSABLE)
    return EXIT_OK
