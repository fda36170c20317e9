"""Negotiation rules: presentation contexts, roles, extended negotiation, transfer syntaxes.

A refused presentation context is the most common reason a modality "cannot send": the SCP
does not support the SOP class or none of the proposed transfer syntaxes. What the SCP *does*
accept is known from the other contexts it accepted in the capture, which turns "rejected"
into "propose this instead".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from dissectors.dimse.command import service_name
from dissectors.ul.reasons import context_result, context_result_hint
from dissectors.wiretext import mark

from ...model import Association, PresentationContext
from ...uids import MPPS, MPPS_RETRIEVE, is_lossy, uid_name
from .base import AssocView, Hit, check, code, listing
from .datasets import encoding_name, expected_encoding

NEG_SOP_CLASS = code(
    "NEG-SOP-CLASS-REJECTED", "warning", "PS3.8 9.3.3.2",
    "a SOP class (abstract syntax) refused as not supported, and not accepted on any context")
NEG_TS = code(
    "NEG-TS-REJECTED", "warning", "PS3.8 9.3.3.2",
    "a presentation context refused because none of its transfer syntaxes is acceptable")
NEG_CONTEXT = code(
    "NEG-CONTEXT-REJECTED", "warning", "PS3.8 9.3.3.2",
    "a presentation context refused by the SCP application or without a reason")
NEG_NONE = code(
    "NEG-NO-CONTEXT-ACCEPTED", "error", "PS3.8 9.3.3.2",
    "every proposed presentation context was refused: nothing can be exchanged")
NEG_ROLE_REPLY = code(
    "NEG-ROLE-REPLY", "warning", "PS3.7 D.3.3.4",
    "the acceptor's SCP/SCU role selection reply grants a role that was not proposed")
NEG_EXT_REPLY = code(
    "NEG-EXTNEG-REPLY", "warning", "PS3.7 D.3.3.5 / D.3.3.6",
    "an extended negotiation reply for a SOP class the requestor did not negotiate")
NEG_ROLE_MISSING = code(
    "NEG-ROLE-NOT-NEGOTIATED", "warning", "PS3.7 D.3.3.4",
    "the acceptor invoked C-STORE without the SCP role negotiated for the requestor")
NEG_LOSSY = code(
    "NEG-LOSSY-TS", "info", "PS3.5 8.2 / A.4",
    "a lossy transfer syntax was accepted: images arrive lossy-compressed")
SOP_MISMATCH = code(
    "DIMSE-SOP-CLASS-MISMATCH", "error", "PS3.7 7.1 / PS3.8 9.3.5",
    "a request's SOP Class UID differs from the abstract syntax of its presentation context")
DATASET_ENCODING = code(
    "DIMSE-DATASET-ENCODING", "error", "PS3.5 10 / PS3.7 6.3.1",
    "a data set encoded otherwise than its context's transfer syntax (VR or byte order)")

BROAD = 5  # more refused SOP classes than this in one association: one summary finding
_RESULT_CODE = {3: NEG_SOP_CLASS, 4: NEG_TS}

# Requests whose SOP Class legitimately differs from the context's abstract syntax.
_COMPATIBLE = {(MPPS_RETRIEVE, MPPS)}
_UPS_PREFIX = "1.2.840.10008.5.1.4.34.6."


def _res(c: PresentationContext) -> int:
    """The result of an answered context (callers only pass answered ones)."""
    return c.result if c.result is not None else 0


def _name(uid: str | None) -> str:
    return uid_name(uid) or (mark(uid) if uid else "?")  # a wire UID: cut in text output


def _ts_list(uids: list[str] | set[str]) -> str:
    return listing([_name(u) for u in sorted(uids)], 3)


def _supported_here(v: AssocView, a: Association) -> str:
    """What the SCP accepted, from every association of the capture to that address: said
    to come from them, since this association may have refused the very same SOP class
    (an SCP can accept per calling AE)."""
    mem = v.state.servers.get(a.server)
    if mem is None or not mem.abstract_syntaxes:
        return ""
    here = {c.abstract_syntax for c in a.contexts.values() if c.accepted}
    where = ("on this and other associations" if here & mem.abstract_syntaxes
             else "on other associations")
    return (f" In this capture, {where} to {a.server}, the SCP accepted "
            f"{listing([_name(u) for u in sorted(mem.abstract_syntaxes)])}.")


@check(NEG_SOP_CLASS, NEG_TS, NEG_CONTEXT, NEG_NONE, cross=True)
def refused_contexts(v: AssocView) -> Iterator[Hit]:
    a = v.assoc
    # a context the AC answers but the RQ never proposed is UL-AC-UNKNOWN-CONTEXT's to report
    answered = [c for c in a.contexts.values() if c.result is not None
                and (c.abstract_syntax is not None or c.transfer_syntaxes)]
    if not answered or a.outcome == "rejected":
        return
    accepted = [c for c in answered if c.accepted]
    where = a.accept_frame
    if not accepted:
        reasons = sorted({context_result(_res(c)) for c in answered})
        yield Hit(NEG_NONE,
                  f"the SCP {a.called_ae or '?'} refused every proposed presentation context "
                  f"({len(answered)}; {', '.join(reasons)}): "
                  f"{listing([_name(c.abstract_syntax) for c in answered])}; nothing can be "
                  f"sent on this association.{_supported_here(v, a)} "
                  f"{context_result_hint(_res(answered[0]), answered[0].transfer_syntaxes)}",
                  where, [a.request_frame] if a.request_frame else [])
        return
    by_sop: dict[str | None, list[PresentationContext]] = defaultdict(list)
    for c in answered:
        by_sop[c.abstract_syntax].append(c)
    missing: dict[str, list[PresentationContext]] = defaultdict(list)  # code -> contexts
    for sop, ctxs in by_sop.items():
        ok = [c for c in ctxs if c.accepted]
        for c in ctxs:
            if c.accepted:
                continue
            if ok:  # the SOP class went through on another context: only this proposal lost
                tss = sorted({c2.transfer_syntax for c2 in ok if c2.transfer_syntax})
                yield Hit(_RESULT_CODE.get(_res(c), NEG_CONTEXT),
                          f"context {c.id} ({_name(sop)}, proposing "
                          f"{_ts_list(c.transfer_syntaxes)}) was refused: "
                          f"{context_result(_res(c))}; the same SOP class was accepted "
                          f"on another context with {_ts_list(tss)}, so data sets in the "
                          "refused syntax must be converted to that before sending",
                          where, severity="info")
            else:
                missing[_RESULT_CODE.get(_res(c), NEG_CONTEXT)].append(c)
    for kind, ctxs in missing.items():
        sops = list(dict.fromkeys(c.abstract_syntax for c in ctxs))
        if len(sops) > BROAD:
            yield Hit(kind, f"{len(sops)} of the {len(by_sop)} proposed SOP classes were refused "
                            f"({context_result(_res(ctxs[0]))}): "
                            f"{listing([_name(s) for s in sops])}; harmless if the association "
                            "never needed them (a broad proposal, as storescu makes), otherwise "
                            f"those objects cannot be sent.{_supported_here(v, a)}",
                      where, severity="info")
            continue
        for c in ctxs:
            yield Hit(kind, _refusal(v, a, c), where)


def _refusal(v: AssocView, a: Association, c: PresentationContext) -> str:
    text = (f"context {c.id}: {_name(c.abstract_syntax)} was refused by {a.called_ae or '?'} "
            f"({context_result(_res(c))}, proposed with "
            f"{_ts_list(c.transfer_syntaxes)}). "
            f"{context_result_hint(_res(c), c.transfer_syntaxes)}")
    if c.result == 4:
        mem = v.state.servers.get(a.server)
        if mem and mem.transfer_syntaxes:
            text += f" This SCP accepted {_ts_list(mem.transfer_syntaxes)} in this capture."
    elif c.result == 3:
        text += _supported_here(v, a)
    return text


@check(NEG_ROLE_REPLY, NEG_EXT_REPLY)
def contradicting_replies(v: AssocView) -> Iterator[Hit]:
    a = v.assoc
    if a.outcome == "rejected" or a.accept_frame is None or not v.rq_seen:
        return  # (an A-ASSOCIATE-RQ the capture lost proposed what it proposed)
    proposed = {r["sop_class"]: r for r in a.requestor.roles}
    for r in a.acceptor.roles:
        p = proposed.get(r["sop_class"])
        if p is None:
            yield Hit(NEG_ROLE_REPLY,
                      f"the A-ASSOCIATE-AC answers SCP/SCU role selection for "
                      f"{_name(r['sop_class'])}, which the A-ASSOCIATE-RQ did not propose",
                      a.accept_frame)
            continue
        granted = [role for role, key in (("SCU", "scu_role"), ("SCP", "scp_role"))
                   if r[key] and not p[key]]
        if granted:
            yield Hit(NEG_ROLE_REPLY,
                      f"role selection for {_name(r['sop_class'])}: the acceptor granted the "
                      f"{' and '.join(granted)} role the requestor did not propose (proposed "
                      f"SCU={p['scu_role']} SCP={p['scp_role']}, answered SCU={r['scu_role']} "
                      f"SCP={r['scp_role']}); an acceptor may only accept or refuse a proposed "
                      "role", a.accept_frame)
    asked = {x["sop_class"] for x in a.requestor.extended}
    for x in a.acceptor.extended:
        if x["sop_class"] not in asked:
            yield Hit(NEG_EXT_REPLY,
                      f"the A-ASSOCIATE-AC carries SOP class extended negotiation for "
                      f"{_name(x['sop_class'])}, which the requestor did not negotiate",
                      a.accept_frame)
    for x in a.acceptor.common_extended:
        yield Hit(NEG_EXT_REPLY,
                  f"the A-ASSOCIATE-AC carries SOP class common extended negotiation for "
                  f"{_name(x['sop_class'])}: that item belongs in the A-ASSOCIATE-RQ only",
                  a.accept_frame)


@check(NEG_ROLE_MISSING)
def acceptor_without_role(v: AssocView) -> Iterator[Hit]:
    a = v.assoc
    if not v.rq_seen or a.accept_frame is None:
        return  # what the negotiation the capture lost agreed is not known
    rq = {r["sop_class"]: r for r in a.requestor.roles}
    ac = {r["sop_class"]: r for r in a.acceptor.roles}
    seen: set[str] = set()
    for t in a.transactions:
        pc = a.contexts.get(t.context_id)
        if t.sent_by != "acceptor" or t.command != "C-STORE" or pc is None:
            continue
        sop = pc.abstract_syntax or ""
        if sop in seen:
            continue
        if rq.get(sop, {}).get("scp_role") and ac.get(sop, {}).get("scp_role"):
            continue
        seen.add(sop)
        yield Hit(NEG_ROLE_MISSING,
                  f"the acceptor sent a C-STORE-RQ ({_name(sop)}) to the requestor, but the SCP "
                  "role for that SOP class was not negotiated (SCP/SCU role selection in both "
                  "A-ASSOCIATE-RQ and -AC): by default the requestor is only an SCU, and a "
                  "strict peer refuses the request (C-GET needs this role selection)",
                  t.request_frame)


@check(NEG_LOSSY)
def lossy_syntaxes(v: AssocView) -> Iterator[Hit]:
    a = v.assoc
    used: dict[int, int] = defaultdict(int)
    for t in a.transactions:
        if t.dataset_bytes:
            used[t.context_id] += 1
    parts = []
    for c in a.contexts.values():
        if c.accepted and is_lossy(c.transfer_syntax):
            n = used.get(c.id, 0)
            parts.append(f"context {c.id} {_name(c.abstract_syntax)} with "
                         f"{_name(c.transfer_syntax)} ({n} data set(s) sent in it)")
    if parts:
        yield Hit(NEG_LOSSY,
                  f"lossy transfer syntax accepted: {listing(parts, 3)}; images sent this way "
                  "lost information before reaching the archive - check that lossy "
                  "compression is intended for this sender (the objects should say so in "
                  "Lossy Image Compression (0028,2110))", a.accept_frame)


@check(SOP_MISMATCH)
def sop_class_matches_context(v: AssocView) -> Iterator[Hit]:
    a = v.assoc
    for t in a.transactions:
        pc = a.contexts.get(t.context_id)
        if (pc is None or not pc.accepted or not pc.abstract_syntax or not t.sop_class
                or t.sop_class == pc.abstract_syntax):
            continue
        ctx, sop = pc.abstract_syntax, t.sop_class
        if ((ctx, sop) in _COMPATIBLE or "Meta" in (uid_name(ctx) or "")
                or (ctx.startswith(_UPS_PREFIX) and sop.startswith(_UPS_PREFIX))):
            continue
        yield Hit(SOP_MISMATCH,
                  f"{t.command}-RQ message {t.message_id} names SOP class {_name(sop)} but was "
                  f"sent on presentation context {t.context_id}, negotiated for {_name(ctx)}: "
                  "the receiver may refuse it (0x0122 or an abort) or store it under the wrong "
                  "class; the sender picked the wrong context", t.request_frame)


@check(DATASET_ENCODING)
def dataset_encoding(v: AssocView) -> Iterator[Hit]:
    for (frame, cf), info in v.datasets.items():
        exp = expected_encoding(info.transfer_syntax)
        if exp is None or info.encoding is None or info.encoding == exp:
            continue
        yield Hit(DATASET_ENCODING,
                  f"the {service_name(cf)}-{'RSP' if cf & 0x8000 else 'RQ'} data set on "
                  f"context {info.context_id} is encoded {encoding_name(info.encoding)}, but the "
                  f"context accepted {_name(info.transfer_syntax)} "
                  f"({encoding_name(exp)}): the receiver decodes it wrongly; the sender must "
                  "encode in the negotiated transfer syntax", frame)
