"""``dicomsniff export-objects``: every object sent with C-STORE, STOW-RS or retrieved with
WADO, as a Part 10 file.

Only argparse is imported at start-up (every subcommand module loads with the CLI); pydicom,
rich and the analysis load when a command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .. import inflate
from .args import (
    EXIT_DAMAGED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Progress,
    add_capture_arguments,
    add_object_options,
    capture_name,
    deidentifier,
    fail,
    finish_input,
    keylog_from,
    limits_from,
    open_input,
)

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
  dicomsniff export-objects dicomweb.pcap objects/
      DICOMweb too: each instance of a STOW-RS request and of a WADO-RS or WADO-URI
      response, as sent: A0004_192.0.2.1-to-192.0.2.2_1.2.826.0.1.3680043.dcm

selection (combine; repeat one to widen it):
  --association ID   association (or HTTP connection) ID as numbered by 'dicomsniff analyze'
  --ae TITLE         associations where TITLE is the calling or called AE (case-insensitive);
                     DIMSE only: HTTP has no AE titles
  --sop-class X      a SOP Class UID, or part of its name ("CT Image", "Secondary Capture")

files: the data set bytes exactly as sent, behind File Meta Information giving the SOP
class and instance of the C-STORE command, the transfer syntax accepted for its
presentation context and the sender's AE title (0002,0016). A data set cut by a gap in
the capture is written as NAME.partial.dcm, with a warning on standard error. Names use
only A-Z a-z 0-9 . _ - and never replace an existing file (NAME-2.dcm instead). One line
per object on standard output: file, SOP class, transfer syntax, size, C-STORE status.
A DICOMweb instance is a PS3.10 file already: it is written byte for byte as its part of
the multipart body carried it, and its status is the HTTP status (for STOW-RS with what
the origin server said of that instance: stored, failed...).

exit status: 0 exported; 2 file unusable, bad usage or OUTDIR not writable; 3 capture
damaged part-way (what came before is exported); 130 interrupted (data sets in progress
are written as .partial.dcm).
"""

def add_parser(subparsers: Any) -> None:
    """Register ``export-objects``."""
    e = subparsers.add_parser(
        "export-objects", help="write every C-STORE data set and DICOMweb instance as a "
                               "DICOM Part 10 file",
        description="Write every data set carried by C-STORE (including C-MOVE and C-GET "
                    "sub-operations), and every instance of a STOW-RS request or a WADO "
                    "response, as a DICOM Part 10 file, byte for byte as sent.",
        epilog=EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_capture_arguments(e)
    e.add_argument("outdir", metavar="OUTDIR", help="directory for the files (created if "
                                                    "missing)")
    e.add_argument("--sop-class", action="append", default=[], metavar="UID_OR_NAME",
                   help="only objects of this SOP class: a UID, or part of its name "
                        "(repeatable)")
    add_object_options(e)
    e.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Analyse the capture once, streaming each C-STORE data set into OUTDIR."""
    import time

    from ..analysis.http import session as web_session
    from ..analysis.run import analyze_source
    from ..objects.analyzer import ObjectAnalyzer
    from ..objects.anonymize import AnonymizeUnavailable
    from ..objects.export import Exported, Exporter, ExportError
    from ..objects.filters import Filters
    from ..objects.report import object_line, size_text
    from ..objects.web import WebObjects
    from ..sources.capture import CaptureError

    inflate.apply_option(args)
    outdir = os.path.abspath(args.outdir)
    try:  # a capture that cannot be read leaves no empty OUTDIR behind
        capture = open_input(args)
    except CaptureError as exc:
        return fail(str(exc))
    if why := prepare_outdir(outdir):
        capture.close()
        return fail(why)
    try:
        deid = deidentifier(args.anonymize)
    except AnonymizeUnavailable as exc:
        capture.close()
        return fail(str(exc))

    def done(info: Exported) -> None:
        sys.stdout.write(object_line(info, outdir) + "\n")

    exporter = Exporter(outdir, Filters.of(args.association, args.ae, args.sop_class),
                        deid=deid, done=done,
                        warn=lambda s: sys.stderr.write(f"dicomsniff: warning: {s}\n"))
    analyzer = ObjectAnalyzer(exporter, ports=args.port, keep=False, limits=limits_from(args),
                              tls_keylog=keylog_from(args))
    analyzer.on_transaction.append(exporter.on_transaction)
    analyzer.on_association.append(exporter.on_association)
    WebObjects(exporter).attach(web_session(analyzer))
    bar = Progress(capture, args.no_progress, "exporting")
    started = time.monotonic()
    damaged, interrupted = None, False
    try:
        damaged = analyze_source(capture, analyzer, bar.callback).reader_error
    except CaptureError as exc:
        return fail(str(exc))
    except ExportError as exc:
        exporter.abandon()
        return fail(f"{exc.strerror}; export stopped")
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
        return fail("interrupted; data sets in progress were written as partial",
                     EXIT_INTERRUPTED)
    if not capture.single:
        return EXIT_DAMAGED if finish_input(capture) else EXIT_OK
    if damaged:
        return fail(f"{capture_name(args)}: capture damaged: {damaged} (what came before was "
                     "exported)", EXIT_DAMAGED)
    return EXIT_OK


def prepare_outdir(outdir: str) -> str | None:
    """Create OUTDIR if needed and prove it takes files; why not, or None."""
    from ..objects.names import create_exclusive

    try:
        os.makedirs(outdir, exist_ok=True)
        fd, probe = create_exclusive(outdir, f"dicomsniff-probe-{os.getpid()}", ".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write to {outdir}: {exc.strerror or exc}"
    return None
