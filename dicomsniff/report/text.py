"""The terminal report (rich): one block per association, findings, and the service summary.

Every value that came from the wire is wrapped in ``Text`` (never parsed as rich markup), and
the dissectors already escaped control characters, so an AE title like ``[red]`` or an ANSI
escape sequence prints as the characters it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from dissectors.ul.reasons import context_result
from dissectors.wiretext import shorten

from .. import units
from ..model import Association, Finding, Side, Transaction
from ..uids import uid_name
from ..units import duration, size

#: a frame number -> "file#n" (its file and number there) when the capture is several files
Where = Callable[[int | None], "str | None"]

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
CATEGORY_STYLE = {"Success": "green", "Warning": "yellow", "Failure": "bold red",
                  "Pending": "blue", "Cancel": "magenta", None: "dim"}
OUTCOME_STYLE = {"released": "green", "aborted": "bold red", "rejected": "bold red",
                 "closed": "yellow", "incomplete": "dim"}


def T(value: Any, style: str = "") -> Text:
    """Wire data as plain text: never interpreted as markup."""
    return Text("-" if value is None else str(value), style=style)


_time = units.timestamp


def _uid(uid: str | None) -> Text:
    if not uid:
        return T(None, "dim")
    name = uid_name(uid)
    t = Text()
    if name:
        t.append(name)
        t.append(f"\n{shorten(uid)}", style="dim")
    else:
        t.append(shorten(uid))
    return t


def _names(uids: list[str], limit: int = 3) -> str:
    names = [uid_name(u) or shorten(u) for u in uids]
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f", +{more} more" if more > 0 else "")


def _roles_text(roles: list[dict[str, Any]], verbose: bool) -> str:
    """Role selection, one phrase per (SCU, SCP) combination: a C-GET SCU proposes SCP role
    for every storage SOP class it accepts, ~120 of them, which listed one by one fill a page."""
    if verbose:
        return "; ".join(f"role {uid_name(r['sop_class']) or r['sop_class']} "
                         f"SCU={r['scu_role']} SCP={r['scp_role']}" for r in roles)
    groups: dict[tuple[Any, Any], list[str]] = {}
    for r in roles:
        groups.setdefault((r["scu_role"], r["scp_role"]), []).append(r["sop_class"])
    return "; ".join(f"role selection SCU={scu} SCP={scp} for {len(u)} SOP class"
                     f"{'es' if len(u) != 1 else ''} ({_names(u)})"
                     for (scu, scp), u in groups.items())


def _side_text(label: str, s: Side, verbose: bool = False) -> Text:
    t = Text()
    t.append(f"{label}: ", style="bold")
    t.append(f"max PDU {s.max_pdu if s.max_pdu is not None else '-'}")
    t.append("; implementation ")
    t.append(shorten(s.implementation_class_uid or "-"))
    if s.implementation_version_name:
        t.append(f" {shorten(s.implementation_version_name)}")
    if s.async_invoked is not None:
        t.append(f"; async window invoked {s.async_invoked} performed {s.async_performed}")
    if s.roles:
        t.append("; " + _roles_text(s.roles, verbose))
    for x in s.extended:
        name = uid_name(x["sop_class"]) or x["sop_class"]
        t.append(f"; extended negotiation {shorten(name)} info={shorten(x['info'] or '-')}")
    for x in s.common_extended:
        name = uid_name(x["sop_class"]) or x["sop_class"]
        t.append(f"; common extended negotiation {name}")
    ui = s.user_identity
    if ui:
        if "type" in ui:
            t.append(f"; user identity {ui['type_text']}")
            if ui.get("username"):
                t.append(f" user {shorten(ui['username'])}")
            t.append(", positive response requested" if ui.get("response_requested")
                     else ", no response requested")
        else:
            t.append(f"; user identity server response ({ui.get('length')} bytes)")
    return t


def association_title(a: Association) -> Text:
    head = Text()
    head.append(f"#{a.id} ", style="bold")
    head.append(shorten(a.calling_ae or "?"), style="bold cyan")
    head.append(f" {a.client}")
    head.append(" -> ")
    head.append(shorten(a.called_ae or "?"), style="bold cyan")
    head.append(f" {a.server}  ")
    head.append(a.outcome.upper(), style=OUTCOME_STYLE.get(a.outcome, ""))
    if a.outcome in ("rejected", "aborted"):
        who = f" by {a.abort['by']}" if a.abort else ""
        head.append(f"{who} ({a.source}: {a.reason})")
    move = a.move_transaction
    if move is not None:
        head.append(f"  C-STOREs of C-MOVE txn {move}", style="dim")
    return head


def _contexts(a: Association, verbose: bool) -> list[Any]:
    """The contexts used or refused; the rest counted in one line."""
    used = {t.context_id for t in a.transactions}
    shown = [c for c in a.contexts.values()
             if verbose or c.id in used or (c.result is not None and c.result != 0)
             or (len(a.contexts) <= 8 and c.result is not None)]
    parts: list[Any] = []
    if shown:
        parts.append(Stacked([_context_row(c) for c in shown], header=Text(
            "ctx  abstract syntax / proposed transfer syntaxes -> result", style="bold")))
    rest = [c for c in a.contexts.values() if c not in shown]
    unused = sum(1 for c in rest if c.result == 0)
    unanswered = [c for c in rest if c.result is None]
    words = []
    if unused:
        words.append(f"{unused} accepted presentation context(s) not used")
    if unanswered:
        names = _names([c.abstract_syntax or "?" for c in unanswered])
        words.append(f"{len(unanswered)} presentation context(s) proposed ({names})"
                     if a.outcome == "rejected" else
                     f"{len(unanswered)} proposed, never answered ({names})")
    if words:
        parts.append(Text("; ".join(words) + " (--all-contexts lists them)", style="dim"))
    return parts


def _context_row(c: Any) -> tuple[Text, Text]:
    body = Text()
    name = uid_name(c.abstract_syntax) if c.abstract_syntax else None
    if name:
        body.append(name)
        body.append(f"\n{shorten(c.abstract_syntax)}", style="dim")
    else:
        body.append(shorten(c.abstract_syntax or "-"))
    body.append("\nproposed: " + ", ".join(uid_name(x) or shorten(x)
                                           for x in c.transfer_syntaxes), style="dim")
    body.append("\n-> ")
    if c.result is None:
        body.append("no answer", style="dim")
    elif c.result == 0:
        body.append("accepted", style="green")
        body.append(f": {uid_name(c.transfer_syntax) or shorten(c.transfer_syntax or '-')}")
    else:
        body.append(context_result(c.result), style="red")
    return Text(str(c.id)), body


class Stacked:
    """Rows of (key, body): a narrow right-aligned key column, the body wrapping beside it.

    Used instead of wide tables so that at 80 columns nothing is cut: a body line wraps at
    spaces, and codes and UIDs (single words, at most 64 characters) stay whole.
    """

    def __init__(self, rows: list[tuple[Text, Text]], header: Text | None = None,
                 key_width: int = 6) -> None:
        self.rows, self.header, self.key_width = rows, header, key_width

    def __rich_console__(self, console: Console, options: Any):
        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", no_wrap=True, width=self.key_width)
        grid.add_column(overflow="fold")
        if self.header is not None:
            yield self.header
        for key, body in self.rows:
            grid.add_row(key, body)
        yield grid


def _frames(first: int | None, last: int | None, where: Where | None) -> str:
    """``12-40``, or with several files ``12-40 (ct_01.pcap#7 - ct_02.pcap#3)``."""
    text = f"{first}-{last}"
    if where is not None:
        a, b = where(first), where(last)
        if a or b:
            text += f" ({a or '?'} - {b or '?'})"
    return text


def association_block(a: Association, *, verbose: bool = False, local: bool = False,
                      transactions: list[Transaction] | None = None,
                      where: Where | None = None) -> Group:
    """``transactions``: the ones to list (a selection), default all; ``where(frame)`` names a
    frame's file (a capture of several files)."""
    txns = a.transactions if transactions is None else transactions
    parts: list[Any] = []
    info = Text(f"start {_time(a.start, local)}  duration {duration(a.duration)}  frames "
                f"{_frames(a.first_frame, a.last_frame, where)}  bytes "
                f"{size(a.bytes['requestor'])} / {size(a.bytes['acceptor'])}", style="dim")
    if a.midstream:
        info.append("  (capture started inside this association)", style="yellow")
    parts.append(info)
    if a.tls is not None:
        from .tls import association_tls_line

        parts.append(association_tls_line(a.tls))
    parts.append(_side_text("Requestor", a.requestor, verbose))
    if a.outcome != "rejected" or a.acceptor.max_pdu is not None:
        parts.append(_side_text("Acceptor", a.acceptor, verbose))
    parts.extend(_contexts(a, verbose))
    if txns:
        parts.append(transactions_table(txns, where))
    if len(txns) < len(a.transactions):
        parts.append(Text(f"{len(a.transactions) - len(txns)} more transaction(s) not "
                          "selected", style="dim"))
    if a.findings:
        parts.append(findings_list(a.findings, where=where))
    body = Padding(Group(*parts), (0, 0, 0, 2), expand=False)
    return Group(Rule(style="dim"), association_title(a), body)


def status_text(t: Transaction) -> Text:
    if t.status is None:
        return T("no response", "dim")
    st = Text(f"0x{t.status:04X} ", style=CATEGORY_STYLE.get(t.status_category, ""))
    st.append(t.status_meaning or t.status_category or "")
    return st


def suboperations_text(so: dict[str, Any]) -> str:
    """'20 ok, 0 failed, 0 warn[, 3 left]': Number of Remaining Sub-operations is optional in
    the final response (PS3.4 C.4.2.1.6), so it is left out when absent."""
    words = [f"{so.get('completed', 0) or 0} ok", f"{so.get('failed', 0) or 0} failed",
             f"{so.get('warning', 0) or 0} warn"]
    if so.get("remaining") is not None:
        words.append(f"{so['remaining']} left")
    return "sub-ops: " + ", ".join(words)


def transaction_body(t: Transaction, where: Where | None = None) -> Text:
    """A transaction in a few lines that wrap at spaces: id, command, status, time, bytes;
    SOP class; SOP instance UID alone on its line; sub-operations, links, comments.
    ``where(frame)``: a capture of several files says the request's file and frame there."""
    b = Text()
    b.append(f"txn {t.id}  ", style="dim")
    b.append(t.command, style="bold")
    if t.sent_by == "acceptor":
        b.append(" <-", style="dim")
    b.append(f"  msg {t.message_id}  ", style="dim")
    b.append_text(status_text(t))
    if t.pending:
        b.append(f"  {t.pending} pending", style="blue")
    b.append(f"  {duration(t.latency)}")
    nbytes = t.dataset_bytes + t.response_dataset_bytes
    if nbytes:
        b.append(f"  {size(nbytes)}")
        if t.dataset_missing:
            b.append(f" ({size(t.dataset_missing)} missing)", style="yellow")
        elif t.dataset_partial:
            b.append(" (partial)", style="yellow")
    b.append("\n" + (uid_name(t.sop_class) or shorten(t.sop_class or "-")))
    if t.priority:
        b.append(f"  prio {t.priority}", style="dim")
    if t.move_destination:
        b.append(f"  to {shorten(t.move_destination)}")
    if t.sop_instance:
        b.append(f"\n{shorten(t.sop_instance)}", style="dim")
    extra = []
    if t.suboperations:
        extra.append(suboperations_text(t.suboperations))
    subs = t.sub_associations
    if subs:
        extra.append("sub-association " + ", ".join(f"#{i}" for i in subs))
    if extra:
        b.append("\n" + "; ".join(extra), style="dim")
    if t.cancel_frame:
        named = where(t.cancel_frame) if where is not None else None
        b.append(f"\ncancelled (frame {t.cancel_frame}" + (f", {named})" if named else ")"),
                 style="magenta")
    named = where(t.request_frame) if where is not None and t.request_frame else None
    if named:
        b.append(f"\nrequest in {named}", style="dim")
    if t.error_comment:
        b.append(f"\n{shorten(t.error_comment)}", style="dim")
    return b


def transactions_table(txns: list[Transaction], where: Where | None = None) -> Stacked:
    rows = [(Text("-" if t.request_frame is None else str(t.request_frame)),
             transaction_body(t, where)) for t in txns]
    return Stacked(rows, header=Text(" frame transaction (txn N: show --transaction N)",
                                     style="bold"))


def findings_list(findings: list[Finding], *, association: bool = False,
                  where: Where | None = None) -> Table:
    """Severity, then code (whole, first word), message, frame and section; with
    ``association`` each line names its association (for lists outside the blocks); with
    ``where`` each frame names its file (a capture of several files)."""
    ft = Table.grid(padding=(0, 1))
    ft.add_column(no_wrap=True)
    ft.add_column(overflow="fold")
    for f in findings:
        line = Text()
        if association:
            line.append("capture " if f.association is None else f"#{f.association} ",
                        style="bold cyan")
        line.append(f.code, style="bold")
        line.append(f"  {f.shown}")
        extra = []
        if f.frame is not None:
            named = where(f.frame) if where is not None else None
            extra.append(f"frame {f.frame} ({named})" if named else f"frame {f.frame}")
        if f.section:
            extra.append(f.section)
        if extra:
            line.append(f"  [{', '.join(extra)}]", style="dim")
        ft.add_row(T(f.severity.upper(), SEVERITY_STYLE.get(f.severity, "")), line)
    return ft


class SummaryTable:
    """Service response time: the wide table, or at narrow widths one small table per AE
    with the counts in one column, so that 80 columns hold it."""

    WIDE = 124

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __rich_console__(self, console: Console, options: Any):
        title = "Service response time (per performing AE and command)"
        if options.max_width >= self.WIDE:
            st = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
            for col in ("AE (address)", "command", "count", "failures", "warnings",
                        "no answer", "min", "median", "p95", "max", "MB"):
                st.add_column(col, justify="left" if col in ("AE (address)", "command")
                              else "right", no_wrap=True)
            for r in self.rows:
                st.add_row(T(r["ae"]), r["command"], str(r["count"]),
                           Text(str(r["failures"]), style="bold red" if r["failures"] else ""),
                           str(r["warnings"]), str(r["unanswered"]),
                           duration(r["latency_min"]), duration(r["latency_median"]),
                           duration(r["latency_p95"]), duration(r["latency_max"]),
                           f"{r['mb']:.2f}")
            yield st
            return
        yield Text(title, style="italic")
        yield Text("fail/warn/lost: failures, warnings, requests never answered", style="dim")
        by_ae: dict[str, list[dict[str, Any]]] = {}
        for r in self.rows:
            by_ae.setdefault(r["ae"], []).append(r)
        for ae, rows in by_ae.items():
            yield T(ae, "bold")
            st = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                       padding=(0, 1, 0, 0))
            st.add_column("  command", no_wrap=True)
            for col in ("count", "fail/warn/lost", "min", "median", "p95", "max", "MB"):
                st.add_column(col, justify="right", no_wrap=True)
            for r in rows:
                fwl = Text(f"{r['failures']}/{r['warnings']}/{r['unanswered']}",
                           style="bold red" if r["failures"] else "")
                st.add_row("  " + r["command"], str(r["count"]), fwl, duration(r["latency_min"]),
                           duration(r["latency_median"]), duration(r["latency_p95"]),
                           duration(r["latency_max"]), f"{r['mb']:.2f}")
            yield st


def summary_table(rows: list[dict[str, Any]]) -> SummaryTable:
    return SummaryTable(rows)


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
                 all_contexts: bool = False, local: bool = False,
                 selection: Any = None, others: Any = None,
                 where: Where | None = None, tls_sessions: Any = ()) -> None:
    """``selection`` (report/selection.py): the associations and transactions to show.
    ``others``: another protocol's part of the story (report/dicomweb.py's ``WebPart``): its
    headline, its findings and its blocks, told in time order with the associations.
    ``where(frame)`` names a frame's file (a capture of several files).
    ``tls_sessions``: analysis/tls.py TLSSession records; those without an association get
    a block of their own in time order (their findings are not capture findings)."""
    chosen = ""
    if selection is not None and not selection.empty:
        total = len(associations)
        associations = [a for a in associations if selection.association(a)]
        outcomes = {}
        for a in associations:
            outcomes[a.outcome] = outcomes.get(a.outcome, 0) + 1
        chosen = f"selected {len(associations)} of {total}: {selection.describe()}"
    console.print(headline(stats, len(associations), outcomes))
    if chosen:
        console.print(Text(chosen, style="dim"))
    tls_alone = [s for s in tls_sessions if s.association is None]
    tls_findings = [f for s in tls_alone for f in s.findings]
    capture_findings = [f for f in capture_findings if f.tls is None]
    if tls_sessions:
        from .tls import TLSCounts

        counts = TLSCounts()
        for s in tls_sessions:
            counts.add(s)
        console.print(counts.headline())
    from .digest import digest_table  # one line per finding code, worst first

    if others is not None and others.headline:
        console.print(others.headline)
    web_findings = list(others.findings) if others is not None else []
    digest = digest_table([*capture_findings, *tls_findings,
                           *(f for a in associations for f in a.findings), *web_findings])
    if digest is not None:
        console.print(digest)
    worst = sorted([*(f for a in associations for f in a.findings), *web_findings],
                   key=lambda f: ("error", "warning", "info").index(f.severity))
    if capture_findings:
        console.print(Text("Capture", style="bold"))
        console.print(findings_list(capture_findings, where=where))
    if findings_only:
        if worst:
            console.print(findings_list(worst, association=True, where=where))
        if tls_findings:
            console.print(Text("TLS connections", style="bold"))
            console.print(findings_list(tls_findings, where=where))
        return
    blocks: list[tuple[float, int, Any]] = [
        (a.start or 0.0, a.id, lambda a=a: association_block(
            a, verbose=all_contexts, local=local,
            transactions=selection.transactions(a) if selection is not None else None,
            where=where))
        for a in associations]
    if others is not None:
        blocks += others.blocks
    if tls_alone:
        from .tls import tls_block

        def listed(found: list[Finding]) -> Any:
            return findings_list(found, where=where)

        blocks += [(s.start or 0.0, s.id, lambda s=s: tls_block(s, listed)) for s in tls_alone]
    for _start, _id, block in sorted(blocks, key=lambda b: (b[0], b[1])):
        console.print(block())
    if summary_rows:
        console.print(summary_table(summary_rows))
