"""``dicomsniff diff BEFORE AFTER``: what changed between two captures or two sets of captures.

The comparison is :mod:`dicomsniff.conformance.diff`; options, outputs and plumbing are shared
with ``dicomsniff conformance`` (:mod:`.conformance`). Exit status: 0 no change; 1 changes
found (like diff(1)); 2 a capture that cannot be used, or bad usage; 3 a capture damaged
part-way.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .args import EXIT_DAMAGED, EXIT_OK, EXIT_UNUSABLE
from .conformance import (
    add_common_options,
    build,
    check_output,
    console_for,
    err,
    open_text,
    write_xlsx_to,
)

DIFF_EPILOG = """\
examples:
  dicomsniff diff before.pcapng after.pcapng
      what changed per AE and per SCU -> SCP pair: SOP classes and transfer syntaxes
      proposed, accepted or refused, chosen transfer syntax, max PDU, implementation
      version, status mix and failure rate, latency p50/p95 beyond noise, finding codes
  dicomsniff diff last-week/ this-week/
      two sets of captures (every capture file in each directory)
  dicomsniff diff --before mon.pcap tue.pcap --after wed.pcap --json
      one {"type": "change", ...} record per change

exit status: 0 no change; 1 changes found (like diff); 2 file unusable or bad usage;
3 a capture damaged part-way.
"""


def add_parser(sub: Any) -> None:
    """Register ``diff``."""
    d = sub.add_parser(
        "diff", help="what changed between two captures or two sets of captures",
        description="Compare the conformance facts of two captures (or sets): per AE and per "
                    "SCU -> SCP pair, what is new, gone or different.",
        epilog=DIFF_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("sets", nargs="*", metavar="CAPTURE",
                   help="BEFORE AFTER: two captures (a file, a directory or a glob each)")
    d.add_argument("--before", nargs="+", metavar="CAPTURE", help="the 'before' set")
    d.add_argument("--after", nargs="+", metavar="CAPTURE", help="the 'after' set")
    d.add_argument("--latency-factor", type=float, default=1.5, metavar="X",
                   help="a latency p50/p95 change counts when it is X times or more "
                        "(default 1.5) ...")
    d.add_argument("--latency-min", type=float, default=0.010, metavar="SECONDS",
                   help="... and at least this many seconds (default 0.010) ...")
    d.add_argument("--min-samples", type=int, default=5, metavar="N",
                   help="... with at least N responses on each side (default 5)")
    d.add_argument("--rate-points", type=float, default=5.0, metavar="PP",
                   help="a failure rate change counts from PP percentage points (default 5)")
    add_common_options(d)
    d.set_defaults(handler=cmd_diff)




# -- diff -------------------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace) -> int:
    from ..conformance.diff import Thresholds, diff
    from ..conformance.run import FileProblem

    problem = check_output(args)
    if problem is None:
        if args.before or args.after:
            if args.sets or not (args.before and args.after):
                problem = "give BEFORE AFTER, or --before FILES... --after FILES..., not both"
        elif len(args.sets) != 2:
            problem = "give two captures (or directories): BEFORE AFTER"
    if problem is None and not (args.latency_factor >= 1 and args.latency_min >= 0
                                and args.min_samples >= 1 and args.rate_points >= 0):
        problem = ("--latency-factor must be >= 1; --latency-min, --rate-points >= 0; "
                   "--min-samples >= 1")
    if problem:
        err(problem)
        return EXIT_UNUSABLE
    before = args.before or [args.sets[0]]
    after = args.after or [args.sets[1]]
    try:
        fb, unsaid_b, damaged_b = build(before, args)
        fa, unsaid_a, damaged_a = build(after, args)
    except FileProblem as exc:
        err(str(exc))
        return EXIT_UNUSABLE
    th = Thresholds(args.latency_factor, args.latency_min, args.min_samples, args.rate_points)
    changes = diff(fb, fa, th)
    from ..conformance.diffview import changes_table

    try:
        if args.json:
            out = open_text(args.output)
            for rec in changes:
                out.write(json.dumps(rec) + "\n")
        elif args.format == "xlsx":
            write_xlsx_to(args.output, [changes_table(changes)])
            out = None
        else:
            out = open_text(args.output)
            table = changes_table(changes, group=args.format != "csv")
            if args.format == "csv":
                from ..conformance.render import write_csv

                write_csv(out, table)
            elif args.format == "markdown":
                from ..conformance.diffview import write_markdown_diff

                write_markdown_diff(out, before, after, table)
            else:
                from ..conformance.diffview import print_diff

                print_diff(console_for(out), before, after, table)
    except OSError as exc:
        err(f"cannot write {args.output}: {exc.strerror or exc}")
        return EXIT_UNUSABLE
    if out is not None and out is not sys.stdout:
        out.close()
    for d in unsaid_b + unsaid_a:
        err(d)
    if damaged_b or damaged_a:
        return EXIT_DAMAGED
    return 1 if changes else EXIT_OK
