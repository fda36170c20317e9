"""``show --transaction ID``: one transaction's messages, command sets and data sets as trees."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from dissectors.dimse.command import COMMAND_NAMES, is_response
from dissectors.dimse.status import format_status
from dissectors.wiretext import shorten as cut
from dissectors.wiretext import shown as wire

from ..model import Association, Transaction
from ..uids import uid_name
from .collect import Collected, Shown
from .decoding import decode
from .dump import command_lines, dataset_lines, safe
from .highlights import keys_for, summary

_IDENTIFIER = {"C-FIND", "C-MOVE", "C-GET"}


def _sender(a: Association, side: int) -> tuple[str, str]:
    calling, called = a.calling_ae or "?", a.called_ae or "?"
    return (calling, called) if side == 0 else (called, calling)


def header(t: Transaction, a: Association, uid_map: Any = None) -> list[Text]:
    req = 0 if t.sent_by == "requestor" else 1
    src, dst = _sender(a, req)
    name = uid_name(t.sop_class)
    lines = [Text(f"transaction #{t.id}: {t.command}, association #{a.id} "
                  f"{safe(src)} -> {safe(dst)}", style="bold"),
             Text(f"  SOP class    {name or '-'} ({wire(t.sop_class or '-')})")]
    if t.sop_instance:
        inst = uid_map(t.sop_instance) if uid_map is not None else t.sop_instance
        lines.append(Text(f"  SOP instance {wire(inst)}"))
    ts = uid_name(t.transfer_syntax) or wire(t.transfer_syntax or "transfer syntax not seen")
    lines.append(Text(f"  context      {t.context_id}, {ts}"))
    status = ("no final response" if t.status is None or t.status_category == "Pending"
              else format_status(t.status, t.command, t.sop_class))
    extra = f", {t.pending} pending response{'s' if t.pending != 1 else ''}" if t.pending else ""
    lat = f", latency {t.latency * 1000:.1f} ms" if t.latency is not None else ""
    lines.append(Text(f"  status       {status}{extra}{lat}"))
    if t.error_comment:
        lines.append(Text(f"  error        {wire(t.error_comment)}"))
    return lines


def message_lines(col: Collected, n: int, shown: Shown, deid: Any = None,
                  of: int = 0) -> list[Text]:
    """One message: title, command set, data set (decoded, de-identified if asked)."""
    t, a, m = col.transaction, col.association, shown.message
    cname = COMMAND_NAMES.get(m.command_field, f"command {m.command_field:#06x}")
    src, dst = _sender(a, shown.side)
    title = f"{cname}{f' {n} of {of}' if of > 1 else ''}, frame {m.frame}, " \
            f"{safe(src)} -> {safe(dst)}"
    status = m.command.get("Status")
    if is_response(m.command_field) and isinstance(status, int):
        title += f", status {format_status(status, t.command, t.sop_class)}"
    out = [Text(""), Text(title, style="bold cyan"), Text(" command set", style="bold")]
    uid_map = deid.uid if deid is not None else None
    out += command_lines(m.command, t.command, t.sop_class, uid_map)
    if not m.expects_dataset:
        return out
    what = "identifier" if t.command in _IDENTIFIER else "data set"
    if shown.data is None:
        out.append(Text(f" {what}: not captured", style="yellow"))
        return out
    ds, problem, ts = decode(shown.data, t.transfer_syntax, t.sop_class)
    note = f" {what}, {shown.data.size} bytes, {uid_name(ts) or cut(ts or '?')}"
    if t.transfer_syntax is None:
        note += " (guessed: the capture lacks the negotiation)"
    out.append(Text(note, style="bold"))
    if shown.data.partial:
        out.append(Text(" incomplete: bytes of this data set are missing from the capture",
                        style="yellow"))
    if ds is not None and deid is not None:
        deid.dataset(ds)
    if ds is not None:
        event = m.command.get("EventTypeID")
        for s in summary(t.sop_class, cname, ds, event if isinstance(event, int) else None):
            out.append(Text(" " + safe(s), style="green"))
        out += dataset_lines(ds, keys_for(t.sop_class, uid_name(t.sop_class)))
    if problem:
        out.append(Text(f" {safe(problem)}", style="yellow"))
    return out


def print_transaction(console: Console, col: Collected, deid: Any = None) -> None:
    uid_map = deid.uid if deid is not None else None
    for ln in header(col.transaction, col.association, uid_map):
        console.print(ln)
    if deid is not None:
        console.print(Text("  (de-identified with the PS3.15 basic profile: values are not "
                           "those on the wire)", style="dim"))
    responses = [s for s in col.messages if is_response(s.message.command_field)]
    for shown in col.messages:
        n = responses.index(shown) + 1 if shown in responses else 0
        for ln in message_lines(col, n, shown, deid, len(responses) if n else 0):
            console.print(ln)
        if shown.data is not None:
            shown.data.discard()
    if not col.messages:
        console.print(Text("no message of this transaction was found again in the capture",
                           style="yellow"))
