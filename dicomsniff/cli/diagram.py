"""``dicomsniff diagram``: a UML sequence diagram of what crossed the wire.

Only argparse is imported at start-up (every subcommand module loads with the CLI); the
analysis and the writers load when the command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from .args import (
    EXIT_DAMAGED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    add_capture_arguments,
    add_limit_options,
    add_port_option,
    add_rule_options,
    add_tls_option,
    capture_name,
    fail,
    finish_input,
    keylog_from,
    limits_from,
    open_input,
    positive_int,
    rules_from,
)

FORMATS = ("plantuml", "mermaid", "svg", "png")
EXTENSIONS = {".svg": "svg", ".png": "png", ".puml": "plantuml", ".plantuml": "plantuml",
              ".pu": "plantuml", ".uml": "plantuml", ".mmd": "mermaid", ".mermaid": "mermaid"}

EPILOG = """\
examples:
  dicomsniff diagram move.pcap -o move.svg
      every association of the capture in one SVG: the C-MOVE, the sub-association the
      archive opens to the move destination, its C-STOREs, the final C-MOVE-RSP
  dicomsniff diagram night.pcapng --command C-MOVE -o move.puml
      only C-MOVEs, with the associations carrying their sub-operations (PlantUML)
  dicomsniff diagram night.pcapng --between CT01 ARCHIVE --timing -o ct.mmd
      what CT01 and ARCHIVE said to each other, with times and latencies (Mermaid)
  dicomsniff diagram night.pcapng --association 12 --level pdu --no-collapse -o a12.svg
      association #12 (the id 'dicomsniff analyze' shows) PDU by PDU, nothing collapsed
  dicomsniff diagram night.pcapng --ae MODALITY --format svg > modality.svg

The format comes from --format or the extension of -o (.svg; .puml .plantuml .pu .uml;
.mmd .mermaid); PlantUML when writing to standard output without --format. Runs of the same
exchange collapse into one arrow with a count and a status summary; failures are red, warnings
orange. Different selections combine (all must hold); a repeated one widens (any of them).

exit status: 0 drawn; 2 file unusable, bad usage, a selection that matches nothing or an
output that cannot be written; 3 capture damaged part-way (what came before is drawn);
130 interrupted.
"""


def _command(text: str) -> str:
    from ..export.selection import COMMANDS

    name = text.strip().upper()
    if name not in COMMANDS:
        raise argparse.ArgumentTypeError(f"unknown DIMSE command {text!r} (one of "
                                         f"{', '.join(COMMANDS)})")
    return name


def add_parser(subparsers: Any) -> None:
    """Register ``diagram``."""
    p = subparsers.add_parser(
        "diagram", help="draw a UML sequence diagram (SVG, PlantUML, Mermaid)",
        description="Draw a UML sequence diagram of the DICOM associations in a capture:\n"
                    "one lifeline per application entity; every A-ASSOCIATE, DIMSE request\n"
                    "and response (status in words), A-RELEASE and A-ABORT in capture order;\n"
                    "failures and findings highlighted.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_capture_arguments(p)
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the diagram to FILE (default: standard output)")
    p.add_argument("--format", choices=FORMATS,
                   help="output format (default: from the extension of -o)")
    sel = p.add_argument_group("selection (default: the whole capture)")
    sel.add_argument("--association", type=positive_int, action="append", default=[],
                     metavar="ID", help="only association ID, as numbered by 'dicomsniff "
                                        "analyze' (repeatable: any of them)")
    sel.add_argument("--ae", action="append", default=[], metavar="TITLE",
                     help="only associations where TITLE is the calling or called AE "
                          "(repeatable: any of them; case-insensitive)")
    sel.add_argument("--between", nargs=2, metavar=("T1", "T2"),
                     help="only associations between AE titles T1 and T2, either way")
    sel.add_argument("--command", type=_command, action="append", default=[],
                     metavar="COMMAND",
                     help="only these DIMSE exchanges, e.g. C-MOVE (repeatable: any of "
                          "them); a C-MOVE "
                          "brings its sub-association, a storage commitment N-ACTION the "
                          "association of its N-EVENT-REPORT")
    look = p.add_argument_group("drawing")
    look.add_argument("--level", choices=("dimse", "pdu"), default="dimse",
                      help="dimse: requests and responses (default); pdu: every PDU")
    look.add_argument("--no-collapse", action="store_true",
                      help="draw every exchange (default: runs of 3 or more collapse)")
    look.add_argument("--timing", action="store_true",
                      help="show the time of each message and the latency of responses")
    look.add_argument("--max-messages", type=positive_int, default=300, metavar="N",
                      help="cut the diagram off after N messages, with a note (default 300)")
    add_port_option(p)
    add_tls_option(p)
    p.set_defaults(handler=run)
    add_limit_options(p)
    add_rule_options(p)


def output_format(fmt: str | None, path: str | None) -> str:
    """The format asked for, else the one the file name says; ValueError if it says none."""
    if fmt:
        return fmt
    if path is None or path == "-":
        return "plantuml"
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        raise ValueError(f"cannot tell the diagram format from {path!r}: use --format "
                         f"{'|'.join(FORMATS)} or an extension ({', '.join(EXTENSIONS)})")
    return EXTENSIONS[ext]


def _writable(path: str) -> str | None:
    """Why ``path`` cannot be written, checked before a long analysis; None if it can."""
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return f"cannot write {path}: it is a directory"
    if not os.path.isdir(parent):
        return f"cannot write {path}: no such directory {parent}"
    if not os.access(parent if not os.path.exists(path) else path, os.W_OK):
        return f"cannot write {path}: permission denied"
    return None


def _renderer(fmt: str) -> Callable[[Any], str]:
    from ..export import mermaid, plantuml, svg

    return {"plantuml": plantuml.render, "mermaid": mermaid.render, "svg": svg.render}[fmt]


def run(args: argparse.Namespace) -> int:
    """The ``diagram`` handler: analyse, select, build, render, write."""
    from ..analysis.run import analyze_source
    from ..export.selection import SelectionError, select
    from ..export.sequence import Options, build
    from ..export.wirelog import RecordingAnalyzer
    from ..sources.capture import CaptureError

    try:
        fmt = output_format(args.format, args.output)
    except ValueError as exc:
        return fail(str(exc))
    to_file = args.output is not None and args.output != "-"
    if to_file and (why := _writable(args.output)):
        return fail(why)
    # PDUs are kept for the associations asked for only; --command may add related ones.
    only = args.association if args.association and not args.command else None
    analyzer = RecordingAnalyzer(ports=args.port, pdata=args.level == "pdu", only=only,
                                 limits=limits_from(args), rules=rules_from(args),
                                 tls_keylog=keylog_from(args))
    from ..analysis.http import session

    web = session(analyzer)  # DICOMweb requests are arrows too
    interrupted, damaged = False, None
    try:
        capture = open_input(args)
        damaged = analyze_source(capture, analyzer).reader_error
    except CaptureError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        interrupted = True
        analyzer.finish()
    filters = bool(args.association or args.ae or args.between or args.command)
    try:
        if not analyzer.associations and web.closed and not filters:
            from ..export.selection import Selection

            sel = Selection([])  # DICOMweb only: its connections are the diagram
        else:
            sel = select(analyzer.associations, ids=args.association, aes=args.ae,
                         between=args.between, commands=args.command)
    except SelectionError as exc:
        return fail(f"{capture_name(args)}: {exc}")
    name = capture_name(args)
    name = name if name == "standard input" else os.path.basename(name)
    capture_findings = [f for f in analyzer.findings if f.association is None]
    diagram = build(sel.associations, log=analyzer.log, selection=sel,
                    options=Options(level=args.level, collapse=not args.no_collapse,
                                    timing=args.timing, max_messages=args.max_messages),
                    capture_findings=capture_findings, title=f"dicomsniff: {name}",
                    web=[] if filters else web.closed,
                    where=None if capture.single else capture.describe)
    if fmt == "png":  # dicomsniff's SVG rasterised whole (PlantUML's PNGs stop at 4096 px)
        from ..export import png

        if not to_file and sys.stdout.isatty():
            return fail("a PNG is not for a terminal: give -o FILE.png (or redirect)")
        data: str | bytes = png.render(diagram)
    else:
        data = _renderer(fmt)(diagram)
    try:
        if to_file:
            with open(args.output, "wb" if isinstance(data, bytes) else "w",
                      **({} if isinstance(data, bytes) else {"encoding": "utf-8"})) as out:
                out.write(data)
        elif isinstance(data, bytes):
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            sys.stdout.write(data)
            sys.stdout.flush()
    except OSError as exc:
        return fail(f"cannot write {args.output or 'standard output'}: "
                     f"{exc.strerror or exc}")
    if diagram.cut:
        fail(f"diagram cut off after {args.max_messages} messages ({diagram.cut} more); "
              "narrow the selection or raise --max-messages", EXIT_OK)
    if interrupted:
        return fail("interrupted; the diagram covers what was read", EXIT_INTERRUPTED)
    if not capture.single:
        return EXIT_DAMAGED if finish_input(capture) else EXIT_OK
    if damaged:
        return fail(f"{capture_name(args)}: capture damaged: {damaged} (the diagram covers "
                     "what came before)", EXIT_DAMAGED)
    return EXIT_OK
