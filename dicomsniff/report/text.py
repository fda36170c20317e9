"""The terminal report (rich): one block per association, findings, and the service summary.

Every value that came from the wire is wrapped in ``Text`` (never parsed as rich markup), and
the dissectors already escaped control characters, so an AE title like ``[red]`` or an ANSI
escape sequence prints as the characters it is.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dissectors.ul.reasons import context_result

from ..model import Association, Finding, Side, Transaction
from ..uids import uid_name
from ..units import duration, size

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
CATEGORY_STYLE = {"Success": "green", "Warning": "yellow", "Failure": "bold red",
                  "Pending": "blue", "Cancel": "magenta", None: "dim"}
OUTCOME_STYLE = {"released": "green", "aborted": "bold red", "rejected": "bold red",
                 "closed": "yellow", "incomplete": "dim"}


def T(value: Any, style: str = "") -> Text:
    """Wire data as plain text: never interpreted as markup."""
    return Text("-" if value is None else str(value), style=style)


def _time(ts: float | None) -> str:
    if ts is None:
        return "-"
    try:
        when = _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
    except (ValueError, OverflowError, OSError):  # a capture's clock can say anything
        return f"{ts:.3f} s"
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _uid(uid: str | None) -> Text:
    if not uid:
        return T(None, "dim")
    name = uid_name(uid)
    t = Text()
    if name:
        t.append(name)
        t.append(f"\n{uid}", style="dim")
    else:
        t.append(uid)
    return t


def _side_text(label: str, s: Side) -> Text:
    t = Text()
    t.append(f"{label}: ", style="bold")
    t.append(f"max PDU {s.max_pdu if s.max_pdu is not None else '-'}")
    t.append("; implementation ")
    t.append(s.implementation_class_uid or "-")
    if s.implementation_version_name:
        t.append(f" {s.implementation_version_name}")
    if s.async_invoked is not None:
        t.append(f"; async window invoked {s.async_invoked} performed {s.async_performed}")
    for r in s.roles:
        name = uid_name(r["sop_class"]) or r["sop_class"]
        t.append(f"; role {name} SCU={r['scu_role']} SCP={r['scp_role']}")
    for x in s.extended:
        name = uid_name(x["sop_class"]) or x["sop_class"]
        t.append(f"; extended negotiation {name} info={x['info'] or '-'}")
    for x in s.common_extended:
        name = uid_name(x["sop_class"]) or x["sop_class"]
        t.append(f"; common extended negotiation {name}")
    ui = s.user_identity
    if ui:
        if "type" in ui:
            t.append(f"; user identity {ui['type_text']}")
            if ui.get("username"):
                t.append(f" user {ui['username']}")
            t.append(", positive response requested" if ui.get("response_requested")
                     else ", no response requested")
        else:
            t.append(f"; user identity server response ({ui.get('length')} bytes)")
    return t


def association_block(a: Association, *, verbose: bool = False) -> Panel:
    head = Text()
    head.append(f"#{a.id} ", style="bold")
    head.append(a.calling_ae or "?", style="bold cyan")
    head.append(f" {a.client}")
    head.append(" -> ")
    head.append(a.called_ae or "?", style="bold cyan")
    head.append(f" {a.server}  ")
    head.append(a.outcome.upper(), style=OUTCOME_STYLE.get(a.outcome, ""))
    if a.outcome in ("rejected", "aborted"):
        who = f" by {a.abort['by']}" if a.abort else ""
        head.append(f"{who} ({a.source}: {a.reason})")
    parts: list[Any] = []
    info = Text(f"start {_time(a.start)}  duration {duration(a.duration)}  frames "
                f"{a.first_frame}-{a.last_frame}  bytes {size(a.bytes['requestor'])} / "
                f"{size(a.bytes['acceptor'])}", style="dim")
    if a.midstream:
        info.append("  (capture started inside this association)", style="yellow")
    parts.append(info)
    parts.append(_side_text("Requestor", a.requestor))
    parts.append(_side_text("Acceptor", a.acceptor))
    used = {t.context_id for t in a.transactions}
    shown = [c for c in a.contexts.values()
             if verbose or c.id in used or c.result != 0 or len(a.contexts) <= 8]
    if shown:
        ct = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
        for col in ("ctx", "abstract syntax", "proposed transfer syntaxes", "result",
                    "accepted"):
            ct.add_column(col)
        for c in shown:
            proposed = Text("\n".join(uid_name(x) or x for x in c.transfer_syntaxes))
            if c.result is None:
                res = T("no answer", "dim")
            elif c.result == 0:
                res = T("accepted", "green")
            else:
                res = T(context_result(c.result), "red")
            ct.add_row(str(c.id), _uid(c.abstract_syntax), proposed, res,
                       T(uid_name(c.transfer_syntax) or c.transfer_syntax))
        parts.append(ct)
    hidden = len(a.contexts) - len(shown)
    if hidden:
        parts.append(Text(f"{hidden} more accepted presentation context(s) not used "
                          "(--all-contexts lists them)", style="dim"))
    if a.transactions:
        parts.append(transactions_table(a.transactions))
    if a.findings:
        parts.append(findings_list(a.findings))
    return Panel(Group(*parts), title=head, title_align="left", box=box.ROUNDED)


def transactions_table(txns: list[Transaction]) -> Table:
    tt = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col, just in (("frame", "right"), ("msg", "right"), ("command", "left"),
                      ("SOP class / instance", "left"), ("status", "left"),
                      ("pend", "right"), ("time", "right"), ("bytes", "right")):
        tt.add_column(col, justify=just)  # type: ignore[arg-type]
    for t in txns:
        cmd = Text(t.command)
        if t.sent_by == "acceptor":
            cmd.append(" <-", style="dim")
        if t.priority:
            cmd.append(f"\nprio {t.priority}", style="dim")
        if t.move_destination:
            cmd.append(f"\nto {t.move_destination}")
        sop = Text(uid_name(t.sop_class) or t.sop_class or "-")
        if t.sop_instance:
            sop.append(f"\n{t.sop_instance}", style="dim")
        if t.status is None:
            st = T("no response", "dim")
        else:
            st = Text(f"0x{t.status:04X} ", style=CATEGORY_STYLE.get(t.status_category, ""))
            st.append(t.status_meaning or t.status_category or "")
        if t.suboperations:
            so = t.suboperations
            st.append(f"\nsub-ops: {so.get('completed')} ok, {so.get('failed')} failed, "
                      f"{so.get('warning')} warn, {so.get('remaining')} left", style="dim")
        if t.cancel_frame:
            st.append(f"\ncancelled (frame {t.cancel_frame})", style="magenta")
        if t.error_comment:
            st.append(f"\n{t.error_comment}", style="dim")
        nbytes = t.dataset_bytes + t.response_dataset_bytes
        tt.add_row(str(t.request_frame), str(t.message_id), cmd, sop, st,
                   str(t.pending) if t.pending else "", duration(t.latency),
                   size(nbytes) + (" partial" if t.dataset_partial else "") if nbytes else "")
    return tt


def findings_list(findings: list[Finding]) -> Table:
    ft = Table(box=None, show_header=False, pad_edge=False)
    ft.add_column("sev")
    ft.add_column("what")
    for f in findings:
        line = Text()
        line.append(f.code, style="bold")
        line.append(f"  {f.message}")
        extra = []
        if f.frame is not None:
            extra.append(f"frame {f.frame}")
        if f.section:
            extra.append(f.section)
        if extra:
            line.append(f"  [{', '.join(extra)}]", style="dim")
        ft.add_row(T(f.severity.upper(), SEVERITY_STYLE.get(f.severity, "")), line)
    return ft


def summary_table(rows: list[dict[str, Any]]) -> Table:
    st = Table(title="Service response time (per performing AE and command)",
               box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("AE (address)", "command", "count", "failures", "warnings", "no answer",
                "min", "median", "p95", "max", "MB"):
        st.add_column(col, justify="left" if col in ("AE (address)", "command") else "right")
    for r in rows:
        st.add_row(T(r["ae"]), r["command"], str(r["count"]),
                   Text(str(r["failures"]), style="bold red" if r["failures"] else ""),
                   str(r["warnings"]), str(r["unanswered"]),
                   duration(r["latency_min"]), duration(r["latency_median"]),
                   duration(r["latency_p95"]), duration(r["latency_max"]), f"{r['mb']:.2f}")
    return st


def headline(stats: Any, n_assoc: int, outcomes: dict[str, int]) -> Text:
    t = Text()
    t.append(f"{n_assoc} association(s)", style="bold")
    if outcomes:
        t.append(" (" + ", ".join(f"{v} {k}" for k, v in sorted(outcomes.items())) + ")")
    t.append(f" in {stats.frames} frames; findings: ")
    sev = stats.by_severity
    for i, s in enumerate(("error", "warning", "info")):
        if i:
            t.append(", ")
        t.append(f"{sev.get(s, 0)} {s}", style=SEVERITY_STYLE[s] if sev.get(s) else "dim")
    return t


def print_report(console: Console, associations: list[Association],
                 capture_findings: list[Finding], summary_rows: list[dict[str, Any]],
                 stats: Any, outcomes: dict[str, int], *, findings_only: bool = False,
                 all_contexts: bool = False) -> None:
    console.print(headline(stats, len(associations), outcomes))
    from .digest import digest_table  # one line per finding code, worst first

    digest = digest_table([*capture_findings, *(f for a in associations for f in a.findings)])
    if digest is not None:
        console.print(digest)
    worst = sorted((f for a in associations for f in a.findings),
                   key=lambda f: ("error", "warning", "info").index(f.severity))
    if capture_findings:
        console.print(Text("Capture", style="bold"))
        console.print(findings_list(capture_findings))
    if findings_only:
        if worst:
            console.print(findings_list(worst))
        return
    for a in associations:
        console.print(association_block(a, verbose=all_contexts))
    if summary_rows:
        console.print(summary_table(summary_rows))
