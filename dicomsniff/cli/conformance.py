"""``dicomsniff conformance CAPTURE...``: what each AE really does, from the wire; gap analysis.

The work is in :mod:`dicomsniff.conformance` (facts, requirements, views, writers); this module
parses the command line, shared with ``dicomsniff diff`` (:mod:`.diff`). Only argparse is
imported at start-up.

Exit status: 0 done; 1 a requirement not met with ``--fail-on-gap``; 2 a capture or
requirements file that cannot be used, or bad usage (one line on stderr); 3 a capture damaged
part-way (what came before the damage was analysed).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from typing import IO, Any

from .args import (
    EXIT_DAMAGED,
    EXIT_OK,
    EXIT_UNUSABLE,
    Progress,
    add_dedup_option,
    add_limit_options,
    add_port_option,
    add_rule_options,
    add_tls_option,
    keylog_from,
    limits_from,
    open_input,
    quiet_broken_pipe,
    rules_from,
)

EXIT_GAP = 1
FORMATS = ("text", "markdown", "csv", "xlsx")

CONFORMANCE_EPILOG = """\
examples:
  dicomsniff conformance night.pcapng
      per AE title: addresses, implementation, what it proposed and accepted (transfer
      syntaxes in order of preference, the one chosen, refusals and why), roles, DIMSE
      commands with statuses and latencies; a compatibility table per SCU -> SCP pair
  dicomsniff conformance mon.pcapng tue.pcapng --format markdown > conformance.md
  dicomsniff conformance night.pcapng --format xlsx -o conformance.xlsx
      a workbook with a sheet per view (AEs, services, proposed, accepted, DIMSE,
      negotiation, compatibility, requirements)
  dicomsniff conformance night.pcapng --require-template needs.csv
      write what was observed as a requirements file to edit
  dicomsniff conformance night.pcapng --require needs.csv --fail-on-gap
      gap analysis: each row met, refused (with the reason) or not_observed, with the
      association and frame as evidence; exit 1 when a row is not met

requirements file (CSV or xlsx), one row per requirement after a header row:
  ae,role,sop_class,transfer_syntax
  ARCHIVE,SCP,CTImageStorage,JPEGLosslessSV1
  CT01,SCU,1.2.840.10008.5.1.4.1.1.2,
  (SOP class and transfer syntax as UID, pydicom keyword or the standard's name; an empty
  transfer syntax means any)

exit status: 0 done; 1 a requirement not met (with --fail-on-gap); 2 file unusable or bad
usage; 3 a capture damaged part-way (what came before was analysed).
"""



def add_common_options(p: argparse.ArgumentParser) -> None:
    """Output format, --json, -o, ports, limits and rules: conformance and diff alike."""
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text (the terminal view, default), markdown (for a ticket or a "
                        "conformance document), csv (one view, see --view), xlsx (a workbook, "
                        "a sheet per view; needs -o or a redirected output)")
    p.add_argument("--json", action="store_true",
                   help="JSON Lines records instead (the contract in docs/conformance.md)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    add_port_option(p)
    add_tls_option(p)  # DICOM over TLS and DICOMweb over HTTPS, decrypted
    add_dedup_option(p)
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    add_limit_options(p)
    add_rule_options(p)


def add_parser(sub: Any) -> None:
    """Register ``conformance``."""
    c = sub.add_parser(
        "conformance", help="what each AE really does, from the wire; gap analysis",
        description="Derive each AE title's conformance from one or more captures: what it "
                    "proposed and accepted, with which transfer syntaxes, roles and "
                    "negotiation items, which DIMSE services it used with which statuses; "
                    "check it against a requirements file (gap analysis).",
        epilog=CONFORMANCE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("captures", nargs="+", metavar="CAPTURE",
                   help="pcap or pcapng files, directories or globs (several are read as one "
                        "capture, merged by time)")
    c.add_argument("--require", metavar="FILE",
                   help="requirements (CSV or xlsx: ae, role, sop_class, transfer_syntax)")
    c.add_argument("--fail-on-gap", action="store_true",
                   help="exit 1 when a requirement is not met (with --require)")
    c.add_argument("--require-template", metavar="FILE",
                   help="write what was observed as a requirements file (.csv or .xlsx)")
    c.add_argument("--view", choices=("aes", "services", "proposed", "accepted", "dimse",
                                      "negotiation", "compatibility", "requirements"),
                   help="the table --format csv writes (default: requirements with "
                        "--require, else services)")
    c.add_argument("--all-contexts", action="store_true",
                   help="text and markdown: list every SOP class (default: those never used "
                        "and answered alike are one row)")
    add_common_options(c)
    c.set_defaults(handler=cmd_conformance)


# -- shared plumbing --------------------------------------------------------------------------


def err(msg: str) -> None:
    sys.stderr.write(f"dicomsniff: {msg}\n")


def build(paths: list[str], args: argparse.Namespace) -> tuple[Any, list[str], list[str]]:
    """Facts of a set of captures with the command line's ports, limits and rules, opened as
    every subcommand opens its capture (:func:`.args.open_input`: files, directories, globs,
    compressed, several sensors; unreadable files among several said at once, one line each).

    Returns (facts, problem lines still to say, every problem). Raises FileProblem (one line
    per file) when nothing can be read."""
    from ..conformance.run import FileProblem, build_facts
    from ..sources.capture import CaptureError

    keylog = keylog_from(args)  # before the captures open: a bad key log is one line, exit 2
    opened = argparse.Namespace(capture=list(paths), dedup_window=args.dedup_window,
                                time_shift=args.time_shift)
    try:
        capture = open_input(opened)
    except CaptureError as exc:
        raise FileProblem(str(exc)) from None
    bar = Progress(capture, args.no_progress, "reading")
    try:
        facts, problems = build_facts(capture, ports=args.port, limits=limits_from(args),
                                      rules=rules_from(args), progress=bar.callback,
                                      tls_keylog=keylog)
    finally:
        bar.stop()
    if capture.single:
        return facts, problems, problems
    unsaid = capture.problems[capture.problems_said:]
    capture.problems_said = len(capture.problems)
    return facts, unsaid, list(capture.problems)


def open_text(path: str | None) -> IO[str]:
    if path is None:
        return sys.stdout
    return open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by caller


def write_xlsx_to(path: str | None, tables: list[Any]) -> None:
    from ..conformance.render import write_xlsx

    if path is not None:
        write_xlsx(path, tables)
        return
    buf = io.BytesIO()
    write_xlsx(buf, tables)  # type: ignore[arg-type]
    sys.stdout.buffer.write(buf.getvalue())
    sys.stdout.buffer.flush()


def console_for(out: IO[str]) -> Any:
    from rich.console import Console

    console = Console(file=out, highlight=False, soft_wrap=False,
                      width=None if out.isatty() else 100)
    console.on_broken_pipe = quiet_broken_pipe  # type: ignore[method-assign]
    return console


def check_output(args: argparse.Namespace) -> str | None:
    if args.format == "xlsx" and not args.json and args.output is None and sys.stdout.isatty():
        return "--format xlsx writes a binary workbook: give -o FILE.xlsx (or redirect stdout)"
    return None


# -- conformance ------------------------------------------------------------------------------


def cmd_conformance(args: argparse.Namespace) -> int:
    from ..conformance.run import FileProblem
    from ..conformance.views import ae_records, all_tables, pair_records, web_records

    problem = check_output(args)
    if problem is None and args.fail_on_gap and not args.require:
        problem = "--fail-on-gap needs --require FILE"
    if problem is None and args.view == "requirements" and not args.require:
        problem = "--view requirements needs --require FILE"
    if problem:
        err(problem)
        return EXIT_UNUSABLE
    reqs = None
    if args.require:
        from ..conformance.requirements import RequirementsError, read_requirements

        try:
            reqs = read_requirements(args.require)
        except RequirementsError as exc:
            err(str(exc))
            return EXIT_UNUSABLE
    try:
        facts, unsaid, damaged = build(args.captures, args)
    except FileProblem as exc:
        err(str(exc))
        return EXIT_UNUSABLE
    if reqs is not None:
        from ..conformance.requirements import evaluate

        evaluate(reqs, facts)
    if args.require_template:
        from ..conformance.requirements import write_template

        try:
            n = write_template(args.require_template, facts)
        except OSError as exc:
            err(f"cannot write {args.require_template}: {exc.strerror or exc}")
            return EXIT_UNUSABLE
        sys.stderr.write(f"dicomsniff: wrote {n} observed requirement(s) to "
                         f"{args.require_template}\n")
    note = _note(facts)
    try:
        if args.json:
            out = open_text(args.output)
            for rec in ae_records(facts) + pair_records(facts) + web_records(facts):
                out.write(json.dumps(rec) + "\n")
            for r in reqs or ():
                out.write(json.dumps(r.to_record()) + "\n")
            summary = {"type": "summary", "files": facts.files,
                       "associations": facts.associations, "aes": len(facts.aes),
                       "pairs": len(facts.pairs), "unattributed": facts.unattributed,
                       "dropped": facts.dropped, "capture_errors": damaged,
                       "dicomweb_requests": facts.web.transactions,
                       "dicomweb_servers": len(facts.web.servers)}
            if reqs is not None:
                summary["requirements"] = _status_counts(reqs)
            out.write(json.dumps(summary) + "\n")
        elif args.format == "xlsx":
            write_xlsx_to(args.output, list(all_tables(facts, reqs).values()))
            out = None
        else:
            tables = all_tables(facts, reqs)
            out = open_text(args.output)
            if args.format == "csv":
                from ..conformance.render import write_csv

                view = args.view or ("requirements" if reqs is not None else "services")
                write_csv(out, tables[view])
            elif args.format == "markdown":
                from ..conformance.render import write_markdown

                write_markdown(out, facts, tables, note, args.all_contexts)
            else:
                from ..conformance.render import print_terminal

                print_terminal(console_for(out), facts, tables, note, args.all_contexts)
    except OSError as exc:
        err(f"cannot write {args.output}: {exc.strerror or exc}")
        return EXIT_UNUSABLE
    if out is not None and out is not sys.stdout:
        out.close()
    for d in unsaid:
        err(d)
    if damaged:
        return EXIT_DAMAGED
    if args.fail_on_gap and reqs is not None and (n_gaps := sum(r.status != "met"
                                                                 for r in reqs)):
        err(f"{n_gaps} of {len(reqs)} requirement(s) not met")
        return EXIT_GAP
    return EXIT_OK


def _status_counts(reqs: list[Any]) -> dict[str, int]:
    out = {"met": 0, "refused": 0, "not_observed": 0}
    for r in reqs:
        out[r.status] += 1
    return out


def _note(facts: Any) -> str | None:
    parts = []
    if facts.unattributed:
        parts.append(f"{facts.unattributed} association(s) began before the capture: their AE "
                     "titles are unknown, so they are not attributed")
    if facts.dropped:
        parts.append(f"{facts.dropped} association(s) beyond the AE-title cap were not counted")
    return "; ".join(parts) or None
