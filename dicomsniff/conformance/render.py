"""Writers for the conformance views: terminal (rich), Markdown, CSV, xlsx (openpyxl).

Wire strings (AE titles, UIDs) arrive with control characters already escaped by the
dissectors; here they are kept from being read as markup: rich cells are ``Text`` (never
console markup), Markdown cells escape the characters tables and emphasis use, and a
CSV cell that would start a formula (``=``, ``+``, ``-``, ``@``) gets a leading quote and an
xlsx text cell is typed as a string, so an AE title like ``=HYPERLINK(...)`` stays text in
Excel and LibreOffice.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import IO, Any

from .facts import Facts
from .views import Table, choice_notes, counts, sop_label

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_MD_SPECIAL = re.compile(r"([\\|*_`<>\[\]])")


def safe_cell(value: Any) -> Any:
    """A value for a spreadsheet: numbers as they are, text never a formula."""
    if isinstance(value, str) and len(value) > 1 and value.startswith(_FORMULA):
        return "'" + value
    return value


def write_csv(out: IO[str], table: Table) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(table.columns)
    for row in table.rows:
        w.writerow([safe_cell(c) if c is not None else "" for c in row])


def write_xlsx(path: str, tables: Iterable[Table]) -> None:
    """A workbook with one sheet per table: bold frozen header, filters, sensible widths.

    Text cells are typed as strings explicitly: openpyxl would otherwise store a value that
    starts with ``=`` as a formula."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    for t in tables:
        name = re.sub(r"[\[\]:*?/\\]", " ", t.title)[:31]
        while name in used:
            name = name[:28] + f" {len(used)}"
        used.add(name)
        ws = wb.create_sheet(name)
        ws.append(t.columns)
        for c in ws[1]:
            c.font = Font(bold=True)
        widths = [len(c) for c in t.columns]
        for row in t.rows:
            ws.append(row)
            for i, cell in enumerate(ws[ws.max_row]):
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # a wire string is never a formula
                    widths[i] = max(widths[i], min(60, len(cell.value)))
                elif cell.value is not None:
                    widths[i] = max(widths[i], len(str(cell.value)))
        for i, w in enumerate(widths):
            ws.column_dimensions[ws.cell(1, i + 1).column_letter].width = w + 2
        ws.freeze_panes = "A2"
        if t.rows:
            ws.auto_filter.ref = ws.dimensions
    wb.save(path)


# -- Markdown -------------------------------------------------------------------------------


def md(value: Any) -> str:
    text = "" if value is None else str(value)
    return _MD_SPECIAL.sub(r"\\\1", text.replace("\n", " "))


def md_table(out: IO[str], columns: list[str], rows: list[list[Any]]) -> None:
    out.write("| " + " | ".join(md(c) for c in columns) + " |\n")
    out.write("|" + "---|" * len(columns) + "\n")
    for r in rows:
        out.write("| " + " | ".join(md(c) for c in r) + " |\n")
    out.write("\n")


def _rows_of(table: Table, ae: str) -> tuple[list[str], list[list[Any]]]:
    return table.columns[1:], [r[1:] for r in table.rows if r[0] == ae]


COLLAPSE_MIN = 4


def collapse_unused(a: Any, rows: list[list[Any]], used: set[str] | None = None
                    ) -> list[list[Any]]:
    """Rows (SOP class first) of SOP classes that carried no DIMSE request and are alike in
    every other column become one row ('119 other SOP classes, not used'): dcmtk's storescu
    proposes about 128 presentation contexts, and a list of them hides what was used."""
    if used is None:
        used = {sop_label(s.sop_class) for s in a.services.values() if s.scu or s.scp}
    groups: dict[tuple[Any, ...], list[list[Any]]] = {}
    out: list[list[Any]] = []
    for r in rows:
        if r[0] in used or r[0] == "-":
            out.append(r)
        else:
            groups.setdefault(tuple(r[1:]), []).append(r)
    for rest, members in groups.items():
        if len(members) < COLLAPSE_MIN:
            out += members
        else:
            out.append([f"{len(members)} other SOP classes, not used ("
                        f"{', '.join(m[0] for m in members[:2])}, ...)", *rest])
    return out


_COLLAPSED = ("accepted", "proposed", "negotiation")


def _drop_empty(cols: list[str], rows: list[list[Any]]) -> tuple[list[str], list[list[Any]]]:
    """Columns with nothing to say in any row (0, '-', empty) are left out of the terminal."""
    keep = [i for i in range(len(cols))
            if any(r[i] not in (None, "", 0, "-") for r in rows)] if rows else []
    return [cols[i] for i in keep], [[r[i] for i in keep] for r in rows]


def _pair_sections(facts: Facts, comp: Table, every_context: bool
                   ) -> list[tuple[str, list[str], list[list[Any]]]]:
    """The compatibility view one SCU -> SCP pair at a time, unused SOP classes collapsed."""
    out = []
    for key in sorted(facts.pairs):
        p = facts.pairs[key]
        rows = [r[2:] for r in comp.rows if (r[0], r[1]) == key]
        if not every_context:
            used = {sop_label(sop) for sop, s in p.services.items() if s.commands}
            used.add("(association)")
            rows = collapse_unused(None, rows, used)
        head = (f"{key[0]} -> {key[1]}: {p.associations} association(s), "
                f"{counts(p.outcomes)}")
        out.append((head, comp.columns[2:], rows))
    return out


def grouped_notes(a: Any) -> list[str]:
    """Transfer syntax choices, one line per distinct choice with the SOP classes it hit."""
    by_note: dict[str, list[str]] = {}
    for s in sorted(a.services.values(), key=lambda s: sop_label(s.sop_class)):
        for note in choice_notes(s):
            by_note.setdefault(note, []).append(sop_label(s.sop_class))
    out = []
    for note, sops in by_note.items():
        who = ", ".join(sops[:3]) + (f" and {len(sops) - 3} more" if len(sops) > 3 else "")
        out.append(f"{who}: {note}")
    return out


def write_markdown(out: IO[str], facts: Facts, tables: dict[str, Table],
                   note: str | None = None, every_context: bool = False) -> None:
    out.write("# Conformance observed on the wire\n\n")
    out.write(f"Captures: {', '.join(md(f) for f in facts.files)}. "
              f"{facts.associations} associations, {len(facts.aes)} AE titles"
              + (f", {facts.web.transactions} DICOMweb requests to {len(facts.web.servers)} "
                 "origin server(s)" if facts.web.transactions else "") + ".\n\n")
    if note:
        out.write(md(note) + "\n\n")
    for title in sorted(facts.aes):
        a = facts.aes[title]
        out.write(f"## {md(title)}\n\n")
        for label, value in _ae_lines(a):
            out.write(f"- **{label}**: {md(value)}\n")
        out.write("\n")
        for key, heading in (("accepted", "As acceptor (SCP side)"),
                             ("proposed", "As requestor (SCU side)"),
                             ("dimse", "DIMSE"), ("negotiation", "Negotiation")):
            cols, rows = _rows_of(tables[key], title)
            if key in _COLLAPSED and not every_context:
                rows = collapse_unused(a, rows)
            if rows:
                out.write(f"### {heading}\n\n")
                md_table(out, cols, rows)
    pairs = _pair_sections(facts, tables["compatibility"], every_context)
    if pairs:
        out.write("## Compatibility (SCU -> SCP)\n\n")
        for head, cols, rows in pairs:
            out.write(f"### {md(head)}\n\n")
            md_table(out, cols, rows)
    if "dicomweb" in tables:
        out.write("## DICOMweb (origin servers and the services they answered)\n\n")
        md_table(out, tables["dicomweb"].columns, tables["dicomweb"].rows)
    if "requirements" in tables:
        out.write("## Requirements\n\n")
        md_table(out, tables["requirements"].columns, tables["requirements"].rows)


def _ae_lines(a: Any) -> list[tuple[str, str]]:
    lines = []
    if a.addresses:
        lines.append(("accepted associations at", ", ".join(sorted(a.addresses))))
    if a.hosts:
        lines.append(("requested associations from", ", ".join(sorted(a.hosts))))
    for (cu, vn), n in a.implementations.most_common():
        lines.append(("implementation", f"{cu or '-'} {vn or ''}".strip() + f" ({n})"))
    lines.append(("as requestor", f"{a.as_requestor}"
                  + (f" ({counts(a.outcomes['requestor'])})" if a.as_requestor else "")))
    lines.append(("as acceptor", f"{a.as_acceptor}"
                  + (f" ({counts(a.outcomes['acceptor'])})" if a.as_acceptor else "")))
    if a.rejections["acceptor"]:
        lines.append(("rejected associations", counts(a.rejections["acceptor"])))
    if a.rejections["requestor"]:
        lines.append(("was rejected", counts(a.rejections["requestor"])))
    for side in ("requestor", "acceptor"):
        if a.max_pdu[side]:
            lines.append((f"max PDU as {side}", counts(a.max_pdu[side])))
    if a.peers:
        lines.append(("peers", counts(a.peers)))
    if a.services_dropped:
        lines.append(("not counted", f"{a.services_dropped} contexts beyond the SOP class cap"))
    return lines


# -- terminal -------------------------------------------------------------------------------


def _rich_table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> Any:
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    t = RichTable(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  show_edge=False, title_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*[Text("" if v is None else str(v), style=_style(v)) for v in r])
    return t


_STATUS_STYLE = {"met": "green", "refused": "red", "not_observed": "yellow"}


def _style(v: Any) -> str:
    return _STATUS_STYLE.get(v, "") if isinstance(v, str) else ""


def print_terminal(console: Any, facts: Facts, tables: dict[str, Table],
                   note: str | None = None, every_context: bool = False) -> None:
    from rich.rule import Rule
    from rich.text import Text

    head = Text(f"{len(facts.aes)} AE titles, {facts.associations} associations"
                + (f", {facts.web.transactions} DICOMweb requests to "
                   f"{len(facts.web.servers)} origin server(s)" if facts.web.transactions
                   else "") + f" in {len(facts.files)} capture(s)", style="bold")
    console.print(head)
    if note:
        console.print(Text(note, style="dim"))
    if "requirements" in tables:  # the gap analysis is the answer: it alone, not scrolled away
        req = tables["requirements"]
        console.print()
        console.print(_requirements_table(req))
        console.print(Text(f"requirements: {counts(_status_counts(req))}", style="bold"))
        console.print(Text("(the conformance behind it: run without --require, or use "
                           "--format markdown or xlsx, which hold both)", style="dim"))
        return
    for title in sorted(facts.aes):
        a = facts.aes[title]
        console.print()
        console.print(Rule(Text(title, style="bold cyan"), align="left"))
        for label, value in _ae_lines(a):
            line = Text(f"  {label}: ", style="dim")
            line.append(value)
            console.print(line)
        for key, heading in (("accepted", "As acceptor"), ("proposed", "As requestor"),
                             ("dimse", "DIMSE"), ("negotiation", "Negotiation")):
            cols, rows = _rows_of(tables[key], title)
            if key in _COLLAPSED and not every_context:
                rows = collapse_unused(a, rows)
            if key == "accepted":
                cols, rows = cols[:-1], [r[:-1] for r in rows]  # choices: as lines below
            if key == "dimse":  # one latency column: the table fits 80 columns
                cols = [*cols[:6], "latency p50 / p95 / max"]
                rows = [[*r[:6], f"{r[6]} / {r[7]} / {r[8]}"] for r in rows]
            cols, rows = _drop_empty(cols, rows)
            if rows:
                console.print(_rich_table(cols, rows, heading))
        for n in grouped_notes(a):
            console.print(Text("  " + n, style="yellow" if "never" in n else ""))
    pairs = _pair_sections(facts, tables["compatibility"], every_context)
    if pairs:
        console.print()
        console.print(Rule(Text("Compatibility (SCU -> SCP)", style="bold"), align="left"))
        for head, cols, rows in pairs:
            console.print(_rich_table(*_drop_empty(cols, rows), head))
    if "dicomweb" in tables:
        console.print()
        console.print(Rule(Text("DICOMweb", style="bold cyan"), align="left"))
        by_server: dict[str, list[list[Any]]] = {}
        for r in tables["dicomweb"].rows:
            by_server.setdefault(r[0], []).append(r)
        for server, rows in by_server.items():
            line = Text(f"  origin server {server}", style="bold")
            line.append(f"  software: {rows[0][1]}  user agents: "
                        f"{'; '.join(sorted({r[4] for r in rows}))}", style="dim")
            console.print(line)
            console.print(_rich_table(
                ["service", "transaction", "requests", "HTTP statuses",
                 "latency p50 / p95 / max", "media types"],
                [[r[2], r[3], r[5], r[6], f"{r[7]} / {r[8]} / {r[9]}", r[10]] for r in rows]))


def _requirements_table(req: Table) -> Any:
    """One requirement per row: its status, then what was required and, below, why and
    where (the reason and the evidence), so that it reads in 80 columns."""
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    t = RichTable(title="Requirements", title_justify="left", title_style="bold",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    t.add_column("status", no_wrap=True)
    t.add_column("AE, role, SOP class, transfer syntax / why, evidence", overflow="fold")
    for ae, role, sop, ts, status, reason, evidence in req.rows:
        what = Text(f"{ae} {role} {sop}, {ts}")
        detail = "; ".join(x for x in (reason, evidence if evidence != "-" else "") if x)
        if detail:
            what.append("\n" + detail, style="dim")
        t.add_row(Text(status, style=_style(status)), what)
    return t


def _status_counts(req: Table) -> dict[str, int]:
    out: dict[str, int] = {}
    i = req.columns.index("status")
    for r in req.rows:
        out[r[i]] = out.get(r[i], 0) + 1
    return out
