"""Exports of a selection of associations: a sequence diagram, JSON Lines, the packets.

The diagram goes through :mod:`dicomsniff.export` (the ``dicomsniff diagram`` writers), the
JSON records are those of ``analyze --json`` (association, its transactions, its findings), and
the packets are read again from the capture and written as pcap.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..model import Association
from .frames import Check, export_pcap

FORMATS = {  # name -> (label, extension)
    "svg": ("SVG sequence diagram", ".svg"),
    "plantuml": ("PlantUML sequence diagram", ".puml"),
    "mermaid": ("Mermaid sequence diagram", ".mmd"),
    "json": ("JSON Lines (analyze --json records)", ".jsonl"),
    "pcap": ("packets of the associations (pcap)", ".pcap"),
}
_BY_EXTENSION = {".svg": "svg", ".puml": "plantuml", ".plantuml": "plantuml", ".pu": "plantuml",
                 ".uml": "plantuml", ".mmd": "mermaid", ".mermaid": "mermaid", ".json": "json",
                 ".jsonl": "json", ".pcap": "pcap"}


def format_for(path: str, default: str) -> str:
    """The format a file name asks for (its extension), else ``default``."""
    return _BY_EXTENSION.get(os.path.splitext(path)[1].lower(), default)


def default_name(capture: str | None, associations: Sequence[Association], fmt: str) -> str:
    """'move-a1-2.svg' next to where the user started: capture name and association ids."""
    stem = os.path.splitext(os.path.basename(capture or "dicomsniff"))[0]
    ids = sorted(a.id for a in associations)
    part = "-".join(map(str, ids[:4])) + ("-etc" if len(ids) > 4 else "")
    return f"{stem}-a{part}{FORMATS[fmt][1]}"


def export(fmt: str, path: str, associations: Sequence[Association], *,
           capture: str | None, log: Any = None, collapse: bool = True,
           check: Check | None = None) -> str:
    """Write the selection; returns a one-line description of what was written.

    Raises OSError when the file cannot be written, ValueError when the selection is empty
    or the packets cannot be read again (no capture file).
    """
    if not associations:
        raise ValueError("nothing selected")
    assocs = sorted(associations, key=lambda a: a.id)
    if fmt in ("svg", "plantuml", "mermaid"):
        from ..export import mermaid, plantuml, svg
        from ..export.sequence import Message, Options, build

        name = os.path.basename(capture) if capture else "live capture"
        from .framenames import describe

        d = build(assocs, log=log, options=Options(collapse=collapse, timing=True,
                                                   max_messages=5000),
                  title=f"dicomsniff: {name}", where=describe)
        render = {"svg": svg.render, "plantuml": plantuml.render, "mermaid": mermaid.render}
        text = render[fmt](d)
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
        arrows = sum(isinstance(i, Message) for i in d.items)
        return f"{FORMATS[fmt][0]} of {len(assocs)} association(s), {arrows} messages"
    if fmt == "json":
        from ..report.jsonl import JsonLinesWriter

        with open(path, "w", encoding="utf-8") as out:
            w = JsonLinesWriter(out)
            for a in assocs:
                w.association(a)
        return f"{w.records} JSON records of {len(assocs)} association(s)"
    if fmt == "pcap":
        if capture is None:
            raise ValueError("no capture file to read the packets from")
        n, skipped = export_pcap(capture, assocs, path, check=check)
        more = f" ({skipped} of another link type left out)" if skipped else ""
        return f"{n} packets of {len(assocs)} association(s){more}"
    raise ValueError(f"unknown format {fmt!r}")
