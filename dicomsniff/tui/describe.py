"""The detail pane's words: a message, its command sets, the association's negotiation.

Rich renderables only (no textual), every wire string inside ``Text``.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dissectors.ul import pdu
from dissectors.ul.pdu import PDU_NAMES
from dissectors.wiretext import shorten

from ..model import Association, Side, Transaction
from ..report.text import findings_list, transactions_table
from ..uids import uid_name
from . import framenames
from .refs import Ref
from .rows import clock, date, duration, size

CATEGORY_STYLE = {"Success": "green", "Warning": "yellow", "Failure": "bold red",
                  "Pending": "blue", "Cancel": "magenta"}
RUN_ROWS = 200
_TITLES = {
    "associate-rq": PDU_NAMES[pdu.A_ASSOCIATE_RQ], "associate-ac": PDU_NAMES[pdu.A_ASSOCIATE_AC],
    "associate-rj": PDU_NAMES[pdu.A_ASSOCIATE_RJ], "release-rq": PDU_NAMES[pdu.A_RELEASE_RQ],
    "release-rp": PDU_NAMES[pdu.A_RELEASE_RP], "abort": PDU_NAMES[pdu.A_ABORT],
    "negotiation": "Negotiation", "finding": "Finding", "note": "Note"}


def _kv(rows: list[tuple[str, Any]]) -> Table:
    t = Table(box=None, show_header=False, pad_edge=False, expand=False)
    t.add_column(style="dim", no_wrap=True)
    t.add_column()
    for k, v in rows:
        t.add_row(k, v if isinstance(v, Text) else Text("-" if v is None else str(v)))
    return t


def uid_text(uid: str | None) -> Text:
    if not uid:
        return Text("-", "dim")
    name = uid_name(uid)
    t = Text(name or uid)
    if name:
        t.append(f"  {uid}", style="dim")
    return t


def association_line(a: Association) -> Text:
    t = Text()
    t.append(f"#{a.id} ", style="bold")
    t.append(shorten(a.calling_ae or "?"), style="bold cyan")
    t.append(f" {a.client} -> ")
    t.append(shorten(a.called_ae or "?"), style="bold cyan")
    t.append(f" {a.server}  ")
    t.append(a.outcome, style="bold")
    if a.source or a.reason:
        t.append(f" ({a.source}: {a.reason})")
    return t


def command_table(cmd: dict[str, Any] | None, title: str) -> RenderableType:
    if not cmd:
        return Text(f"{title}: not seen", style="dim")
    t = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
              show_edge=False, pad_edge=False)
    t.add_column("element")
    t.add_column("value")
    for k, v in cmd.items():
        val = Text(f"0x{v:04X} ({v})" if k in ("Status", "CommandField") and isinstance(v, int)
                   else str(v))
        if isinstance(v, str) and uid_name(v):
            val.append(f"  {uid_name(v)}", style="dim")
        t.add_row(Text(k), val)
    return t


def _status(t: Transaction) -> Text:
    if t.status is None:
        return Text("no final response", style="yellow")
    s = Text(f"0x{t.status:04X} {t.status_category}", style=CATEGORY_STYLE.get(
        t.status_category or "", ""))
    if t.status_meaning:
        s.append(f": {t.status_meaning}")
    return s


def transaction_rows(t: Transaction, t0: float | None) -> list[tuple[str, Any]]:
    def at(ts: float | None) -> str:
        if ts is None:
            return "-"
        rel = f" (+{ts - t0:.3f} s)" if t0 is not None else ""
        return f"{clock(ts)}{rel}"

    rows: list[tuple[str, Any]] = [
        ("message ID", t.message_id), ("sent by", t.sent_by),
        ("context", f"{t.context_id}  " + (uid_name(t.transfer_syntax) or t.transfer_syntax
                                           or "")),
        ("SOP class", uid_text(t.sop_class)), ("SOP instance", t.sop_instance),
        ("status", _status(t)),
    ]
    if t.priority:
        rows.append(("priority", t.priority))
    if t.move_destination:
        rows.append(("move destination", Text(t.move_destination)))
    if t.suboperations:
        rows.append(("sub-operations", ", ".join(f"{k} {'-' if v is None else v}" for k, v in
                                                 t.suboperations.items())))
    if t.error_comment:
        rows.append(("error comment", Text(t.error_comment)))
    if t.event_type is not None:
        rows.append(("event type", t.event_type))
    if t.action_type is not None:
        rows.append(("action type", t.action_type))
    rows += [
        ("request", f"{framenames.frame(t.request_frame)} at {at(t.request_time)}"),
        ("responses", f"{t.pending} pending, frames "
                      f"{', '.join(map(str, t.response_frames[:12]))}"
                      + (" ..." if len(t.response_frames) > 12 else "")),
        ("final response", at(t.response_time)), ("latency", duration(t.latency)),
        ("data set", (size(t.dataset_bytes) + (f" ({size(t.dataset_missing)} missing)"
                                               if t.dataset_missing else " (partial)"
                                               if t.dataset_partial else "")
                      + (f", frames {t.dataset_frames[0]}-{t.dataset_frames[1]}"
                         if t.dataset_frames else "")) if t.dataset_bytes else "none"),
    ]
    if t.response_dataset_bytes:
        rows.append(("response data sets", size(t.response_dataset_bytes)))
    if t.cancel_frame is not None:
        rows.append(("cancelled", f"C-CANCEL-RQ in {framenames.frame(t.cancel_frame)}"))
    return rows


def message(ref: Ref) -> RenderableType:
    """The Message tab: what the selected arrow or note is."""
    a = ref.association
    parts: list[RenderableType] = []
    t = ref.transaction
    if t is not None:
        which = {"request": "RQ", "response": "RSP", "cancel": "C-CANCEL-RQ"}.get(ref.kind, "")
        title = Text(f"{t.command}-{which}" if which != "C-CANCEL-RQ" else which, style="bold")
        if ref.kind == "response" and ref.response_index is not None:
            final = ref.response_index == len(t.response_frames) - 1 and t.done
            title.append(f"  response {ref.response_index + 1} of {len(t.response_frames)}"
                         + (" (final)" if final else " (pending)"), style="dim")
    else:
        title = Text(_TITLES.get(ref.kind, ref.kind), style="bold")
    if ref.frame is not None:
        title.append(f"  {framenames.frame(ref.frame)}", style="dim")
    parts.append(title)
    if a is not None:
        parts.append(association_line(a))
    if ref.count > 1:
        parts.append(Text(f"collapsed: this arrow stands for {ref.count} messages "
                          "(press c to draw each one)", style="yellow"))
    parts.append(Text("\n".join(ref.lines), style="italic"))
    if t is not None:
        parts.append(_kv(transaction_rows(t, a.start if a else None)))
        parts.append(command_table(t.request_command, "Request command set"))
        parts.append(command_table(t.response_command, "Final response command set"))
        if len(ref.run) > 1:
            parts.append(Text(f"The {len(ref.run)} exchanges of this run", style="bold"))
            parts.append(transactions_table(ref.run[:RUN_ROWS], framenames.describe))
    elif a is not None:
        parts.append(_kv(_association_rows(a, ref.kind)))
    if ref.findings:
        parts.append(findings_list(ref.findings))
    return Group(*parts)


def _association_rows(a: Association, kind: str) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("start", f"{date(a.start)} {clock(a.start)} UTC"),
        ("duration", duration(a.duration)),
        ("frames", f"{a.first_frame}-{a.last_frame}"),
        ("bytes", f"{size(a.bytes['requestor'])} from the requestor, "
                  f"{size(a.bytes['acceptor'])} from the acceptor"),
        ("outcome", Text(a.outcome + (f": {a.source}: {a.reason}" if a.reason else ""))),
    ]
    if kind in ("associate-rq", "associate-ac", "associate-rj", "negotiation"):
        rows.append(("contexts", f"{sum(c.accepted for c in a.contexts.values())} of "
                                 f"{len(a.contexts)} accepted (Negotiation tab)"))
    if a.abort:
        rows.append(("abort", ", ".join(f"{k} {v}" for k, v in a.abort.items())))
    if a.midstream:
        rows.append(("note", Text("the capture started inside this association", "yellow")))
    return rows


def _side(label: str, s: Side) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        (f"{label} max PDU", s.max_pdu),
        (f"{label} implementation", Text(" ".join(shorten(x) for x in (
            s.implementation_class_uid, s.implementation_version_name) if x) or "-")),
    ]
    if s.async_invoked is not None:
        rows.append((f"{label} async ops", f"invoked {s.async_invoked}, performed "
                                           f"{s.async_performed}"))
    for r in s.roles:
        rows.append((f"{label} role", Text(f"{uid_name(r['sop_class']) or r['sop_class']}: "
                                           f"SCU {r['scu_role']} SCP {r['scp_role']}")))
    for x in s.extended:
        rows.append((f"{label} extended", Text(f"{uid_name(x['sop_class']) or x['sop_class']}"
                                               f" {shorten(x['info'] or '')}")))
    if s.user_identity:
        ui = s.user_identity
        rows.append((f"{label} user identity", Text(
            str(ui.get("type_text") or "server response")
            + (f", user {shorten(ui['username'])}" if ui.get("username") else ""))))
    return rows


def negotiation(a: Association | None) -> RenderableType:
    """The Negotiation tab: every presentation context and what each side announced."""
    if a is None:
        return Text("no association selected", style="dim")
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in ("ctx", "abstract syntax", "proposed transfer syntaxes", "result", "accepted"):
        t.add_column(col)
    used = {x.context_id for x in a.transactions}
    for c in a.contexts.values():
        res = (Text("no answer", "dim") if c.result is None else
               Text("accepted", "green") if c.result == 0 else
               Text(_context_result(c.result), "red"))
        ctx = Text(str(c.id), style="bold" if c.id in used else "")
        t.add_row(ctx, uid_text(c.abstract_syntax),
                  Text("\n".join(uid_name(x) or x for x in c.transfer_syntaxes)), res,
                  Text(uid_name(c.transfer_syntax) or c.transfer_syntax or "-"))
    head = association_line(a)
    info = _kv([("application context", a.application_context),
                ("protocol version", a.protocol_version),
                *_side("requestor", a.requestor), *_side("acceptor", a.acceptor)])
    used_note = Text(f"{len(a.contexts)} presentation contexts; bold: used by a message",
                     style="dim")
    return Group(head, info, used_note, t)


def _context_result(code: int) -> str:
    from dissectors.ul.reasons import context_result

    return context_result(code)
