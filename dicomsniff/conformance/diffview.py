"""Change records as a table (terminal, Markdown, CSV, xlsx): names instead of UIDs."""

from __future__ import annotations

from typing import IO, Any

from dissectors.dimse.status import meaning

from .views import Table, sop_label, ts_label


def _value(rec: dict[str, Any], v: Any) -> str:
    what = rec["what"]
    if isinstance(v, bool):
        return "yes" if v else "no"
    if v is None:
        return "-"
    if isinstance(v, list):
        if not v:
            return "(none)"
        if "transfer syntax" in what:
            return ", ".join(ts_label(x) for x in v)
        if what.startswith("final statuses"):
            return ", ".join(f"{c} {meaning(int(c, 16), rec.get('command'), rec.get('sop_class'))}"
                             for c in v)
        if "accepted with" in what:
            return ", ".join(ts_label(x) for x in v)
        return ", ".join(str(x) for x in v)
    return str(v)


def changes_table(changes: list[dict[str, Any]], group: bool = False) -> Table:
    """One row per change; with ``group`` (terminal, Markdown) the same change for several SOP
    classes of one AE is one row ('CT Image Storage and 60 more')."""
    rows: list[list[Any]] = []
    seen: dict[tuple[Any, ...], list[Any]] = {}
    for c in changes:
        sop = sop_label(c["sop_class"]) if c.get("sop_class") else "-"
        row = [c["ae"] or "-", c["peer"] or "-", c["what"], sop, _value(c, c["before"]),
               _value(c, c["after"])]
        key = (row[0], row[1], row[2], row[4], row[5])
        if group and sop != "-" and key in seen:
            seen[key].append(sop)
            continue
        seen[key] = [sop]
        rows.append(row)
    if group:
        for r in rows:
            sops = seen[(r[0], r[1], r[2], r[4], r[5])]
            if len(sops) > 1:
                r[3] = ", ".join(sops[:2]) + (f" and {len(sops) - 2} more" if len(sops) > 2
                                              else "")
    return Table("Changes", ["AE", "peer", "what", "SOP class", "before", "after"], rows)


def write_markdown_diff(out: IO[str], before: list[str], after: list[str], table: Table) -> None:
    from .render import md, md_table

    out.write("# What changed\n\n")
    out.write(f"Before: {', '.join(md(b) for b in before)}. "
              f"After: {', '.join(md(a) for a in after)}.\n\n")
    if not table.rows:
        out.write("No change.\n")
        return
    md_table(out, table.columns, table.rows)


def print_diff(console: Any, before: list[str], after: list[str], table: Table) -> None:
    from rich.text import Text

    from .render import _rich_table

    console.print(Text(f"before: {', '.join(before)}\nafter:  {', '.join(after)}", style="dim"))
    if not table.rows:
        console.print(Text("no change", style="green"))
        return
    console.print(_rich_table(table.columns, table.rows))
    console.print(Text(f"{len(table.rows)} change(s)", style="bold yellow"))
