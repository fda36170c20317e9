"""DICOMweb in the terminal report: one block per HTTP connection, like an association's.

Built from :mod:`dicomsniff.report.text`'s pieces (``T``, ``Stacked``, ``findings_list``), so a
DICOMweb request reads like a DIMSE one: id, service, status with its meaning, time, bytes,
then what was asked and what came back in PS3.18 words. Wire strings are already escaped by the
dissector and are wrapped in ``Text``, never parsed as markup.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.padding import Padding
from rich.rule import Rule
from rich.text import Text

from ..dicomweb.model import HttpConnectionInfo, WebTransaction
from ..model import Finding
from ..uids import uid_name
from ..units import duration, size
from .text import CATEGORY_STYLE, Stacked, T, _time, findings_list

MAX_LINES = 6  # instances, parts or query words listed per transaction


def connection_title(c: HttpConnectionInfo) -> Text:
    head = Text()
    head.append(f"#{c.id} ", style="bold")
    h2 = getattr(c, "http2", None)
    head.append("HTTP/2 " if h2 else "HTTP ", style="bold magenta")
    head.append(c.client)
    head.append(" -> ")
    head.append(c.server)
    head.append(f"  {c.requests} request{'s' if c.requests != 1 else ''}  ")
    head.append((c.outcome or "open").upper(), style="dim")
    if h2:
        head.append(f"  ({h2})", style="dim")
    return head


def status_text(t: WebTransaction) -> Text:
    if t.status is None:
        return T("no response", "dim")
    st = Text(f"{t.status} ", style=CATEGORY_STYLE.get(t.status_category, ""))
    st.append(t.status_meaning)
    return st


def _uids(t: WebTransaction) -> list[tuple[str, str]]:
    return [(u, w) for u, w in ((t.study, "study"), (t.series, "series"),
                                (t.instance, "sop"), (t.workitem, "workitem")) if u]


def transaction_body(t: WebTransaction) -> Text:
    """A DICOMweb transaction in a few lines that wrap at spaces."""
    b = Text()
    b.append(f"txn {t.id}  ", style="dim")
    b.append(t.command, style="bold")
    b.append(f"  {t.action}  ")
    b.append_text(status_text(t))
    b.append(f"  {duration(t.latency)}")
    moved = t.request_bytes + t.response_bytes
    if moved:
        b.append(f"  {size(moved)}")
    if t.bytes_missing:
        b.append(f" ({size(t.bytes_missing)} missing)", style="yellow")
    uids = _uids(t)
    path = t.short_target  # UIDs on their own lines: a path of three UIDs does not fit 80
    b.append(f"\n{t.method} ", style="dim")
    b.append(T(path if len(path) <= 160 else path[:157] + "...", "dim"))
    for uid, what in uids:
        b.append(f"\n{what} {uid}", style="dim")
    if t.frames:
        b.append(f"\nframes {', '.join(map(str, t.frames[:20]))}", style="dim")
    for q in t.query[:MAX_LINES]:
        b.append(f"\n  {q}")
    if t.accept and t.command in ("WADO-RS", "WADO-URI"):
        b.append(f"\nAccept: {t.accept[0][:200]}", style="dim")
    if t.results is not None:
        b.append(f"\n{t.results} result{'s' if t.results != 1 else ''}")
    if t.transfer_syntax:
        b.append(f"\ntransfer syntax {uid_name(t.transfer_syntax) or t.transfer_syntax}")
    if t.parts and t.command != "STOW-RS" and not t.instances:
        b.append(f"\n{len(t.parts)} part(s): " + ", ".join(
            f"{p['media_type'] or '?'} {size(p['bytes'])}" for p in t.parts[:MAX_LINES]))
    for i in t.instances[:MAX_LINES]:
        cls = i.get("sop_class")
        line = f"\n{i.get('outcome') or 'seen'}: {uid_name(cls) or cls or '?'}"
        reason = i.get("failure_reason") or i.get("warning_reason")
        if reason:
            line += f", {reason}"
        b.append(line, style="red" if i.get("outcome") == "failed" else "")
        b.append(f"\n{i.get('sop_instance') or '?'}", style="dim")
    if len(t.instances) > MAX_LINES:
        b.append(f"\n  ... {len(t.instances) - MAX_LINES} more instance(s)", style="dim")
    if t.error_text:
        b.append(f"\nserver: {t.error_text}", style="dim")
    for w in t.warnings[:2]:
        b.append(f"\nwarning: {w}", style="yellow")
    return b


def connection_block(c: HttpConnectionInfo, txns: list[WebTransaction],
                     findings: list[Finding]) -> Group:
    parts: list[Any] = []
    info = Text(f"start {_time(c.start)}  duration {duration(c.duration)}  frames "
                f"{c.first_frame}-{c.last_frame}  bytes {size(c.bytes['client'])} / "
                f"{size(c.bytes['server'])}", style="dim")
    parts.append(info)
    who = Text()
    who.append("User agent ", style="bold")
    who.append(T(c.user_agent))
    who.append("   Server ", style="bold")
    who.append(T(c.server_software))
    parts.append(who)
    if txns:
        rows = [(Text(str(t.request_frame)), transaction_body(t)) for t in txns]
        parts.append(Stacked(rows, header=Text(" frame transaction", style="bold")))
    if findings:
        parts.append(findings_list(findings))
    return Group(Rule(style="dim"), connection_title(c), Padding(Group(*parts), (0, 0, 0, 2),
                                                                 expand=False))


class WebPart:
    """The DICOMweb part of the report, for ``print_report(..., others=WebPart(session))``:
    a headline, the findings, and one block per HTTP connection keyed by start time."""

    def __init__(self, web: Any) -> None:
        closed = web.closed
        n = sum(len(c.txns) for c in closed)
        self.headline = (f"{len(closed)} HTTP connection(s) with {n} DICOMweb/HTTP request(s)"
                         if closed else None)
        self.findings = [f for c in closed for f in c.found]
        self.blocks = [(c.info.start or 0.0, c.info.id,
                        lambda c=c: connection_block(c.info, c.txns, c.found)) for c in closed]
