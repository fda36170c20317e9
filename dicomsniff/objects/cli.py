"""``dicomsniff export-objects`` and ``dicomsniff show``: the objects that crossed the wire.

Only argparse is imported at start-up (every subcommand module loads with the CLI); pydicom,
rich and the analysis load when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .. import inflate
from ..cli import _port, _positive_int, add_limit_options, limits_from

EXIT_OK, EXIT_UNUSABLE, EXIT_DAMAGED, EXIT_INTERRUPTED = 0, 2, 3, 130

EXPORT_EPILOG = """\
examples:
  dicomsniff export-objects night.pcapng objects/
      every object sent with C-STORE (C-MOVE and C-GET sub-operations included) as a
      DICOM Part 10 file: A0003_CT01-to-ARCHIVE_1.2.840.113619.2.5.1.dcm
  dicomsniff export-objects night.pcapng rejected/ --ae CT01 --sop-class "CT Image"
      only what associations of AE CT01 carried, only CT Image Storage objects
  dicomsniff export-objects night.pcapng a12/ --association 12
      only association #12 (the id 'dicomsniff analyze' shows)
  dicomsniff export-objects night.pcapng share/ --anonymize
      de-identified (PS3.15 basic profile), safe to attach to a ticket

selection (combine; repeat one to widen it):
  --association ID   association ID as numbered by 'dicomsniff analyze'
  --ae TITLE         associations where TITLE is the calling or called AE (case-insensitive)
  --sop-class X      a SOP Class UID, or part of its name ("CT Image", "Secondary Capture")

files: the data set bytes exactly as sent, behind File Meta Information giving the SOP
class and instance of the C-STORE command, the transfer syntax accepted for its
presentation context and the sender's AE title (0002,0016). A data set cut by a gap in
the capture is written as NAME.partial.dcm, with a warning on standard error. Names use
only A-Z a-z 0-9 . _ - and never replace an existing file (NAME-2.dcm instead). One line
per object on standard output: file, SOP class, transfer syntax, size, C-STORE status.

exit status: 0 exported; 2 file unusable, bad usage or OUTDIR not writable; 3 capture
damaged part-way (what came before is exported); 130 interrupted (data sets in progress
are written as .partial.dcm).
"""

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


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--association", type=_positive_int, action="append", default=[],
                   metavar="ID", help="only association ID (repeatable)")
    p.add_argument("--ae", action="append", default=[], metavar="TITLE",
                   help="only associations where TITLE is the calling or called AE "
                        "(repeatable; case-insensitive)")
    p.add_argument("--anonymize", action="store_true",
                   help="remove patient-identifying attributes (PS3.15 basic profile, "
                        "dicom-anonymizer); UIDs are replaced consistently within the run")
    p.add_argument("--port", type=_port, action="append", default=[], metavar="PORT",
                   help="treat TCP PORT as DICOM even where the bytes don't prove it "
                        "(repeatable)")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    add_limit_options(p)
    inflate.add_option(p)


def add_parser(subparsers: Any, parser_class: type[argparse.ArgumentParser] | None = None
               ) -> None:
    """Register ``export-objects`` and ``show`` (the CLI calls this for COMMAND_MODULES)."""
    e = subparsers.add_parser(
        "export-objects", help="write every C-STORE data set as a DICOM Part 10 file",
        description="Write every data set carried by C-STORE (including C-MOVE and C-GET "
                    "sub-operations) as a DICOM Part 10 file, byte for byte as sent.",
        epilog=EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("capture", help="pcap or pcapng file ('-' reads a capture from standard "
                                   "input)")
    e.add_argument("outdir", metavar="OUTDIR", help="directory for the files (created if "
                                                    "missing)")
    e.add_argument("--sop-class", action="append", default=[], metavar="UID_OR_NAME",
                   help="only objects of this SOP class: a UID, or part of its name "
                        "(repeatable)")
    _common(e)
    e.set_defaults(handler=run_export)

    s = subparsers.add_parser(
        "show", help="print a transaction's command sets and data sets as trees",
        description="Print the command sets and data sets of one DIMSE transaction as "
                    "dcmdump-like trees (queries, worklists, MPPS, storage commitment, "
                    "print...), or check C-FIND responses against their queries.",
        epilog=SHOW_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("capture", help="pcap or pcapng file ('-' reads a capture from standard "
                                   "input)")
    s.add_argument("--transaction", type=_positive_int, metavar="ID",
                   help="the transaction to show (ids as in 'dicomsniff analyze')")
    s.add_argument("--check-queries", action="store_true",
                   help="check every C-FIND's responses against its query (with "
                        "--transaction: that C-FIND only)")
    s.add_argument("--json", action="store_true",
                   help="with --check-queries: JSON Lines finding records, as analyze's")
    _common(s)
    s.set_defaults(handler=run_show)


def _fail(message: str, code: int = EXIT_UNUSABLE) -> int:
    sys.stderr.write(f"dicomsniff: {message}\n")
    return code


class _Progress:
    """A rich progress bar on standard error for captures over 4 MiB, on a terminal only."""

    def __init__(self, capture: str, disabled: bool, label: str) -> None:
        self.bar: Any = None
        self.task: Any = None
        if disabled or capture == "-" or not sys.stderr.isatty():
            return
        try:
            size = os.path.getsize(capture)
        except OSError:
            return
        if size <= 4 << 20:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.bar = Progress("[progress.description]{task.description}", BarColumn(),
                            DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True,
                            # Lines for stdout go around the bar only when they would share
                            # its terminal; a redirected stdout must get them itself.
                            redirect_stdout=sys.stdout.isatty())
        self.task = self.bar.add_task(label, total=size)
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


def _deidentifier(wanted: bool) -> Any:
    if not wanted:
        return None
    from .anonymize import Deidentifier

    return Deidentifier()


def run_export(args: argparse.Namespace) -> int:
    """Analyse the capture once, streaming each C-STORE data set into OUTDIR."""
    import time

    from ..analysis.run import analyze_source
    from ..sources.capture import CaptureError, CaptureReader
    from .analyzer import ObjectAnalyzer
    from .anonymize import AnonymizeUnavailable
    from .export import Exported, Exporter, ExportError
    from .filters import Filters
    from .report import object_line, size_text

    inflate.apply_option(args)
    outdir = os.path.abspath(args.outdir)
    if args.capture != "-":
        try:  # a capture that cannot be read leaves no empty OUTDIR behind
            CaptureReader(args.capture).close()
        except CaptureError as exc:
            return _fail(str(exc))
    if why := prepare_outdir(outdir):
        return _fail(why)
    try:
        deid = _deidentifier(args.anonymize)
    except AnonymizeUnavailable as exc:
        return _fail(str(exc))

    def done(info: Exported) -> None:
        sys.stdout.write(object_line(info, outdir) + "\n")

    exporter = Exporter(outdir, Filters.of(args.association, args.ae, args.sop_class),
                        deid=deid, done=done,
                        warn=lambda s: sys.stderr.write(f"dicomsniff: warning: {s}\n"))
    analyzer = ObjectAnalyzer(exporter, ports=args.port, keep=False, limits=limits_from(args))
    analyzer.on_transaction.append(exporter.on_transaction)
    analyzer.on_association.append(exporter.on_association)
    source = sys.stdin.buffer if args.capture == "-" else args.capture
    bar = _Progress(args.capture, args.no_progress, "exporting")
    started = time.monotonic()
    damaged, interrupted = None, False
    try:
        damaged = analyze_source(source, analyzer, bar.callback).reader_error
    except CaptureError as exc:
        return _fail(str(exc))
    except ExportError as exc:
        exporter.abandon()
        return _fail(f"{exc.strerror}; export stopped")
    except KeyboardInterrupt:
        interrupted = True
        analyzer.finish()
    finally:
        bar.stop()
    st = exporter.stats
    elapsed = max(time.monotonic() - started, 1e-6)
    sys.stdout.flush()
    sys.stderr.write(f"dicomsniff: {st.objects} object{'s' if st.objects != 1 else ''} "
                     f"({size_text(st.bytes)}) exported to {outdir} in {elapsed:.1f} s"
                     + (f"; {st.partial} partial" if st.partial else "")
                     + (f"; {st.skipped} not written" if st.skipped else "")
                     + (f"; selection: {exporter.filters.describe()}"
                        if exporter.filters.describe() != "everything" else "") + "\n")
    if interrupted:
        return _fail("interrupted; data sets in progress were written as partial",
                     EXIT_INTERRUPTED)
    if damaged:
        return _fail(f"{args.capture}: capture damaged: {damaged} (what came before was "
                     "exported)", EXIT_DAMAGED)
    return EXIT_OK


def prepare_outdir(outdir: str) -> str | None:
    """Create OUTDIR if needed and prove it takes files; why not, or None."""
    from .names import create_exclusive

    try:
        os.makedirs(outdir, exist_ok=True)
        fd, probe = create_exclusive(outdir, f"dicomsniff-probe-{os.getpid()}", ".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write to {outdir}: {exc.strerror or exc}"
    return None


def run_show(args: argparse.Namespace) -> int:
    """``show``: one transaction's messages, or the query check."""
    inflate.apply_option(args)
    from .anonymize import AnonymizeUnavailable

    if args.transaction is None and not args.check_queries:
        return _fail("show needs --transaction ID or --check-queries (see "
                     "'dicomsniff show --help')")
    if args.json and not args.check_queries:
        return _fail("--json goes with --check-queries")
    try:
        deid = _deidentifier(args.anonymize and not args.check_queries)
    except AnonymizeUnavailable as exc:
        return _fail(str(exc))
    from .show_cmd import check_queries, show_transaction

    source, cleanup = _seekable(args.capture)
    try:
        if args.check_queries:
            return check_queries(args, source)
        return show_transaction(args, source, deid)
    finally:
        cleanup()


def _seekable(capture: str) -> tuple[str, Any]:
    """A path that can be read twice: standard input is first copied to a temporary file."""
    if capture != "-":
        return capture, lambda: None
    import shutil
    import tempfile

    fd, path = tempfile.mkstemp(prefix="dicomsniff-stdin-", suffix=".pcap")
    with os.fdopen(fd, "wb") as fh:
        shutil.copyfileobj(sys.stdin.buffer, fh, 1 << 20)
    return path, lambda: os.unlink(path)
