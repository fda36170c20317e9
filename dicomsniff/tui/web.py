"""DICOMweb in the TUI: the columns of the transactions list and the detail of one exchange.

Plain rich, no textual: the screen (:mod:`.screens.web`) puts these in a table and a pane.
Every string from the wire reaches here escaped by the DICOMweb reader (``safe_text``) and
goes into ``Text`` as plain characters, never markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text

from dissectors.wiretext import shorten

from .. import units
from ..model import Finding
from ..uids import uid_name
from .rows import SEVERITY_STYLE, Column
from .store import FAILURE, OPEN, SUCCESS, WARNING, Store

STATE_STYLE = {SUCCESS: "green", WARNING: "yellow", FAILURE: "bold red", OPEN: "cyan"}

WEB_COLUMNS = (
    Column("id", "#", 5, "right"),
    Column("time", "Time (UTC)", 12),
    Column("conn", "Conn", 5, "right"),
    Column("service", "Service", 9),
    Column("action", "Action", 22),
    Column("status", "Status", 6, "right"),
    Column("latency", "Latency", 9, "right"),
    Column("bytes", "Bytes", 8, "right"),
    Column("findings", "Find", 4, "right"),
    Column("target", "Target", 20, flex=True),
    Column("agent", "User agent", 18),
)


def state(txn: Any, findings: list[Finding]) -> str:
    """The row's colour: failure (4xx/5xx, an error finding), warning (202, failed or
    unanswered, a warning finding), success, or open."""
    sev = {f.severity for f in findings}
    if txn.status is None:
        return WARNING
    if txn.status >= 400 or txn.failed or "error" in sev:
        return FAILURE
    if txn.status_category == "Warning" or "warning" in sev:
        return WARNING
    return SUCCESS


def web_cells(txn: Any, store: Store) -> tuple[list[Text], str]:
    found = store.web_findings(txn)
    st = state(txn, found)
    worst = next((s for s in ("error", "warning", "info")
                  if any(f.severity == s for f in found)), "")
    conn = store.web_connections.get(txn.connection)
    agent = txn.user_agent or (conn.user_agent if conn is not None else None)
    return [
        Text(str(txn.id)),
        Text(units.clock(txn.request_time)),
        Text(f"#{txn.connection}"),
        Text(txn.command, style="bold"),
        Text(txn.action),
        Text(str(txn.status) if txn.status is not None else "-", style=STATE_STYLE[st]),
        Text(units.duration_short(txn.latency)),
        Text(units.size_short(txn.request_bytes + txn.response_bytes)
             if txn.request_bytes + txn.response_bytes else "-"),
        Text(str(len(found)) if found else "", style=SEVERITY_STYLE.get(worst, "")),
        Text(txn.short_target),
        Text(shorten(agent or "-")),
    ], st


def web_sort_key(column: str, store: Store) -> Callable[[Any], Any]:
    keys: dict[str, Callable[[Any], Any]] = {
        "id": lambda t: t.id,
        "time": lambda t: (t.request_time, t.id),
        "conn": lambda t: (t.connection, t.id),
        "service": lambda t: (t.command, t.id),
        "action": lambda t: (t.action, t.id),
        "status": lambda t: (t.status if t.status is not None else 999, t.id),
        "latency": lambda t: (t.latency if t.latency is not None else -1.0, t.id),
        "bytes": lambda t: t.request_bytes + t.response_bytes,
        "findings": lambda t: len(store.web_findings(t)),
        "target": lambda t: t.target,
        "agent": lambda t: t.user_agent or "",
    }
    return keys[column]


def haystack(txn: Any) -> str:
    """What search looks in: service, action, target, status, UIDs, the server's words."""
    return " ".join(str(x) for x in (txn.command, txn.action, txn.method, txn.target,
                                     txn.status, txn.status_meaning, txn.user_agent,
                                     txn.error_text, *(i.get("sop_instance") for i in
                                                       txn.instances)) if x)


def _line(t: Text, label: str, value: Any, style: str = "") -> None:
    if value is None or value == "" or value == []:
        return
    t.append(f"{label:<16}", style="dim")
    t.append(str(value) + "\n", style=style)


def describe(txn: Any, conn: Any, findings: list[Finding]) -> Text:
    """One exchange in full: request, response, timing, instances, findings."""
    t = Text()
    if txn is None:
        t.append("nothing selected", style="dim")
        return t
    st = state(txn, findings)
    t.append(f"{txn.command}  ", style="bold")
    t.append(f"{txn.action}\n", style="bold")
    t.append("Request\n", style="bold underline")
    _line(t, "line", f"{txn.method} {txn.short_target} HTTP/{txn.http_version}")
    if conn is not None:
        _line(t, "connection", f"#{conn.id} {conn.client} -> {conn.server}"
              + (f" ({conn.http2}: HTTP/2)" if getattr(conn, "http2", None) else ""))
    _line(t, "user agent", txn.user_agent)
    for label, uid in (("study", txn.study), ("series", txn.series),
                       ("instance", txn.instance), ("workitem", txn.workitem)):
        _line(t, label, uid)
    if txn.frames:
        _line(t, "frames", ", ".join(map(str, txn.frames)))
    for i, q in enumerate(txn.query):
        _line(t, "query" if i == 0 else "", q)
    for i, a in enumerate(txn.accept):
        _line(t, "accept" if i == 0 else "", a)
    _line(t, "content type", txn.request_content_type)
    _line(t, "body", units.size(txn.request_bytes) if txn.request_bytes else None)
    _line(t, "frame", txn.request_frame)
    t.append("Response\n", style="bold underline")
    if txn.status is None:
        t.append("no response seen\n", style="yellow")
    else:
        _line(t, "status", f"{txn.status} {txn.reason_phrase or ''}".rstrip(),
              STATE_STYLE[st])
        _line(t, "meaning", txn.status_meaning)
        _line(t, "category", txn.status_category)
    if txn.informational:
        _line(t, "interim", ", ".join(map(str, txn.informational)))
    _line(t, "content type", txn.response_content_type)
    _line(t, "body", units.size(txn.response_bytes) if txn.response_bytes else None)
    _line(t, "transfer syntax", uid_name(txn.transfer_syntax) or txn.transfer_syntax)
    _line(t, "results", txn.results)
    _line(t, "server says", txn.error_text, "yellow")
    for w in txn.warnings:
        _line(t, "warning", w, "yellow")
    if txn.bytes_missing:
        _line(t, "missing", f"{txn.bytes_missing} bytes not in the capture", "yellow")
    _line(t, "frames", ", ".join(map(str, txn.response_frames)))
    t.append("Timing\n", style="bold underline")
    _line(t, "request", units.clock(txn.request_time))
    _line(t, "response", units.clock(txn.response_time) if txn.response_time else None)
    _line(t, "latency", units.duration(txn.latency) if txn.latency is not None else None)
    if txn.response_end_time is not None:
        _line(t, "total", units.duration(txn.response_end_time - txn.request_time))
    if txn.instances:
        t.append(f"Instances ({len(txn.instances)})\n", style="bold underline")
        for i in txn.instances[:200]:
            outcome = i.get("outcome") or "seen"
            style = ("bold red" if outcome == "failed" else
                     "yellow" if outcome in ("stored with warning", "not in response") else "")
            t.append(f"  {outcome:<20}", style=style)
            t.append(f"{uid_name(i.get('sop_class')) or i.get('sop_class') or '?'}  "
                     f"{i.get('sop_instance') or '?'}")
            reason = i.get("failure_reason") or i.get("warning_reason")
            if reason:
                t.append(f"  {reason}", style=style)
            t.append("\n")
        if len(txn.instances) > 200:
            t.append(f"  and {len(txn.instances) - 200} more\n", style="dim")
    if findings:
        t.append(f"Findings ({len(findings)})\n", style="bold underline")
        for f in findings:
            t.append(f"  {f.severity.upper():<8}", style=SEVERITY_STYLE.get(f.severity, ""))
            t.append(f"{f.code}", style="bold")
            t.append(f"  frame {f.frame}" + (f"  {f.section}" if f.section else ""),
                     style="dim")
            t.append(f"\n    {f.message}\n")
    return t
