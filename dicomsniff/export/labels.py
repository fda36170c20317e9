"""Words for the arrows and notes of a diagram: statuses, contexts, events, durations.

Kept apart from the layout so every format says the same thing in the same words.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Iterable

from dissectors.dimse.command import decode_command, service_name
from dissectors.dimse.status import category, format_status
from dissectors.ul.reasons import (
    abort_reason,
    abort_source,
    context_result,
    reject_reason,
    reject_result,
    reject_source,
)
from dissectors.wiretext import shorten

from ..model import Association, Transaction
from ..uids import STORAGE_COMMITMENT_PUSH as STORAGE_COMMITMENT
from ..uids import uid_name
from ..units import duration, size  # noqa: F401 - part of this module's API
from .wirelog import Pdv

# Storage Commitment Push Model (PS3.4 J.3): what its N-ACTION and N-EVENT-REPORT types mean.
_SC_ACTIONS = {1: "request storage commitment"}
_SC_EVENTS = {1: "all committed", 2: "failures exist"}
NOTE_WIDTH = 64  # characters per note line


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def association_line(a: Association) -> str:
    """'#2 ARCHIVE 192.0.2.2:45228 -> MOVESCU 192.0.2.1:11113: released, 4 C-STORE, 1.2 s'."""
    outcome = a.outcome
    if a.outcome == "aborted" and a.abort:
        outcome = f"aborted by the {a.abort.get('by')}"
    counts = Counter(t.command for t in a.transactions)
    parts = [outcome, *(f"{n} {cmd}" for cmd, n in counts.items())]
    if a.duration is not None:
        parts.append(duration(a.duration))
    return (f"#{a.id} {a.calling_ae or '?'} {a.client} -> {a.called_ae or '?'} {a.server}: "
            + ", ".join(parts))


def uid_text(uid: str | None) -> str:
    return (uid_name(uid) or shorten(uid)) if uid else "-"


def wrap(text: str, width: int = NOTE_WIDTH) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def status_text(t: Transaction) -> str:
    if t.status is None:
        return "no status"
    return format_status(t.status, t.command, t.sop_class)


def style_of(category: str | None) -> str:
    """Failures red, warnings and cancels orange: the colour answers 'where did it fail'."""
    if category == "Failure":
        return "failure"
    if category in ("Warning", "Cancel"):
        return "warning"
    return "normal"


def request_lines(t: Transaction) -> list[str]:
    """What a request asked for, below its name: SOP class, destination, event or action."""
    lines = [uid_text(t.sop_class)] if t.sop_class else []
    if t.move_destination:
        lines.append(f"move destination {shorten(t.move_destination)}")
    if t.event_type is not None:
        what = _SC_EVENTS.get(t.event_type) if t.sop_class == STORAGE_COMMITMENT else None
        lines.append(f"event type {t.event_type}" + (f": {what}" if what else ""))
    if t.action_type is not None:
        what = _SC_ACTIONS.get(t.action_type) if t.sop_class == STORAGE_COMMITMENT else None
        lines.append(f"action type {t.action_type}" + (f": {what}" if what else ""))
    return lines


def request_style(t: Transaction) -> str:
    """A storage commitment report saying 'failures exist' is news even with status 0."""
    if t.sop_class == STORAGE_COMMITMENT and t.command == "N-EVENT-REPORT" and (
            t.event_type == 2):
        return "warning"
    return "normal"


def suboperations_text(so: dict[str, int | None]) -> str:
    text = (f"{so.get('completed') or 0} completed, {so.get('failed') or 0} failed, "
            f"{so.get('warning') or 0} warning")
    if so.get("remaining"):
        text += f", {so['remaining']} remaining"
    return text


def suboperations_style(so: dict[str, int | None] | None) -> str:
    if not so:
        return "normal"
    if so.get("failed"):
        return "failure"
    return "warning" if so.get("warning") else "normal"


def worst(styles: Iterable[str]) -> str:
    order = ("normal", "muted", "info", "warning", "failure")
    return max(styles, key=order.index, default="normal")


def status_summary(txns: list[Transaction], limit: int = 4) -> str:
    """'198 Success, 2 Warning 0xB000': successes by category, the rest by code."""
    counts: Counter[str] = Counter()
    for t in txns:
        if t.status is None or not t.done:
            counts["no response"] += 1
        elif t.status_category == "Success":
            counts["Success"] += 1
        else:
            counts[f"{t.status_category} 0x{t.status:04X}"] += 1
    parts = [f"{n} {what}" for what, n in counts.most_common()]
    if len(parts) > limit:
        rest = sum(n for _, n in counts.most_common()[limit:])
        parts = parts[:limit] + [f"{rest} other"]
    return ", ".join(parts)


def sop_summary(txns: list[Transaction]) -> str:
    classes = Counter(uid_text(t.sop_class) for t in txns if t.sop_class)
    if not classes:
        return ""
    if len(classes) == 1:
        return next(iter(classes))
    (top, n), = classes.most_common(1)
    return f"{len(classes)} SOP classes, mostly {top} ({n})"


def context_note(a: Association, limit: int = 6) -> list[str]:
    """The accepted contexts (those used first), then the refused ones."""
    used = {t.context_id for t in a.transactions}
    ctxs = sorted(a.contexts.values(), key=lambda c: (c.id not in used, c.id))
    accepted = [c for c in ctxs if c.accepted]
    refused = [c for c in ctxs if c.result not in (0, None)]
    lines = [f"{len(accepted)} of {len(a.contexts)} presentation contexts accepted"]
    for c in accepted[:limit]:
        lines.append(f"{c.id}: {uid_text(c.abstract_syntax)} / {uid_text(c.transfer_syntax)}")
    if len(accepted) > limit:
        lines.append(f"... {len(accepted) - limit} more accepted")
    for c in refused[:3]:
        lines.append(f"{c.id}: {uid_text(c.abstract_syntax)}: {context_result(c.result or 0)}")
    if len(refused) > 3:
        lines.append(f"... {len(refused) - 3} more not accepted")
    used_classes = {t.sop_class for t in a.transactions}
    roles = sorted(a.acceptor.roles, key=lambda r: r["sop_class"] not in used_classes)
    for r in roles[:2]:  # SCP/SCU role selection as the acceptor granted it, used ones first
        lines.append(f"role selection {uid_text(r['sop_class'])}: "
                     f"SCU {'yes' if r['scu_role'] else 'no'}, "
                     f"SCP {'yes' if r['scp_role'] else 'no'}")
    if len(roles) > 2:
        lines.append(f"... {len(roles) - 2} more role selections")
    return lines


def reject_lines(result: int, source: int, reason: int) -> list[str]:
    return [f"{reject_result(result)} by {reject_source(source)}",
            reject_reason(source, reason)]


def abort_lines(source: int, reason: int) -> list[str]:
    lines = [f"source: {abort_source(source)}"]
    if source == 2:
        lines.append(f"reason: {abort_reason(reason, source)}")
    return lines


def _command(d: Pdv) -> dict | None:
    """The command set of a PDV that completes one (a single-fragment command: nearly all)."""
    if d.command is None or not d.last:
        return None
    try:
        cmd, _problems = decode_command(d.command)
    except Exception:  # a label must never stop the drawing
        return None
    return cmd if isinstance(cmd.get("CommandField"), int) else None


def pdv_text(d: Pdv) -> tuple[str, str, bool]:
    """A PDV in words ('ctx 1 C-STORE-RSP msg 1: 0x0000 Success'), its style, and whether it
    carries a response (drawn as a reply)."""
    if d.command is None:
        return (f"ctx {d.context_id} data {size(d.length)}" + (" (last)" if d.last else ""),
                "normal", False)
    cmd = _command(d)
    if cmd is None:
        return f"ctx {d.context_id} command fragment ({d.length} bytes)", "normal", False
    cf = cmd["CommandField"]
    name = service_name(cf)
    if not cf & 0x8000:
        return f"ctx {d.context_id} {name}-RQ msg {cmd.get('MessageID')}", "normal", False
    text = f"ctx {d.context_id} {name}-RSP msg {cmd.get('MessageIDBeingRespondedTo')}"
    status = cmd.get("Status")
    if not isinstance(status, int):
        return text, "normal", True
    sop = cmd.get("AffectedSOPClassUID")
    text += f": {format_status(status, name, sop if isinstance(sop, str) else None)}"
    return text, style_of(category(status)), True
