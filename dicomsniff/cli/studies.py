"""``dicomsniff studies``: one timeline per study, across associations, AEs and captures.

Only argparse is imported at start-up; the analysis loads when the command runs
(dicomsniff/journey/command.py).
"""

from __future__ import annotations

import argparse
from typing import Any

from .. import inflate
from .args import add_limit_options, add_port_option, add_rule_options, positive_int

EPILOG = """\
examples:
  dicomsniff studies night.pcapng                    one timeline per study
  dicomsniff studies modality.pcap archive.pcap      several captures, merged by time
  dicomsniff studies night.pcapng --study JACC0001   one study (UID, accession or patient)
  dicomsniff studies night.pcapng --json > s.jsonl   {"type": "study"} records

Per study: scheduled (the worklist item and which AE fetched it), performed (MPPS status
transitions), stored (instances per series, to which AE, with their statuses), committed
(requested, succeeded, failed with the reason), available (IAN), and what does not add up
(findings STUDY-*; print sessions and UPS workitems follow, with PRINT-* and UPS-*).
Frame numbers count across the merged captures, in time order. docs/studies.md has more.
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "studies", help="follow each study across worklist, MPPS, storage, commitment, IAN",
        description="Follow each study across associations, AEs and services: the worklist "
                    "item, the MPPS, the C-STOREs, storage commitment and Instance "
                    "Availability Notification, and what does not add up; print sessions "
                    "and UPS workitems too.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("captures", nargs="+", metavar="CAPTURE",
                   help="pcap or pcapng files, directories or globs (several are merged by "
                        "time); '-' reads standard input")
    p.add_argument("--json", action="store_true",
                   help="write JSON Lines: one study record per study, then print sessions, "
                        "workitems, the journey's findings and a summary")
    p.add_argument("--study", metavar="KEY", action="append", default=[],
                   help="only studies whose Study Instance UID, Accession Number or Patient ID "
                        "is KEY (repeatable)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--max-studies", type=positive_int, default=10_000, metavar="N",
                   help="studies followed at once (default 10000); beyond, the oldest is "
                        "judged early (STUDY-CAP)")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    add_port_option(p)
    add_limit_options(p)
    add_rule_options(p)
    inflate.add_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..journey.command import run as studies

    return studies(args)
