"""What changed between two sets of facts ("it worked before the upgrade").

Compared per AE title: whether it was seen, its implementation class UID and version name (a
software update), max PDU lengths, the SOP classes it proposed, accepted or refused and their
transfer syntaxes (proposed, chosen as acceptor, chosen by its peers), roles, user identity
and asynchronous window, the mix of final statuses per service and role, the failure rate, and
latency p50/p95 per service when the change is beyond noise. Compared per SCU -> SCP pair:
rejections, what the pair accepted and refused per SOP class, and the finding codes raised on
its associations.

Noise: counts always differ between two nights, so they are not changes; sets are (a status
code, a transfer syntax, a finding code that appears or disappears). A failure rate is a change
when it moves by at least ``rate_points`` percentage points; a latency quantile when both sides
have ``min_samples`` responses and it moves by at least ``latency_factor`` times and
``latency_min`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dissectors.dimse.status import category

from .facts import AE, SCP, SCU, Facts, Pair, Service


class Thresholds:
    __slots__ = ("latency_factor", "latency_min", "min_samples", "rate_points")

    def __init__(self, latency_factor: float = 1.5, latency_min: float = 0.010,
                 min_samples: int = 5, rate_points: float = 5.0) -> None:
        self.latency_factor = latency_factor
        self.latency_min = latency_min
        self.min_samples = min_samples
        self.rate_points = rate_points


def _change(ae: str | None, peer: str | None, what: str, before: Any, after: Any,
            **extra: Any) -> dict[str, Any]:
    return {"type": "change", "ae": ae, "peer": peer, "what": what, "before": before,
            "after": after, **extra}


def _set_change(out: list, ae: str | None, peer: str | None, what: str, b: Iterable[Any],
                a: Iterable[Any], **extra: Any) -> None:
    sb, sa = sorted(set(b), key=str), sorted(set(a), key=str)
    if sb != sa:
        out.append(_change(ae, peer, what, sb, sa, **extra))


def _flat(lists: Iterable[tuple[str, ...]]) -> set[str]:
    return {ts for lst in lists for ts in lst}


def _failure_rate(by_code: dict[str, int]) -> float | None:
    total = sum(by_code.values())
    if not total:
        return None
    bad = sum(n for code, n in by_code.items() if category(int(code, 16)) == "Failure")
    return 100.0 * bad / total


def _service_changes(out: list, title: str, b: Service | None, a: Service | None,
                     th: Thresholds) -> None:
    sop = (b or a).sop_class  # type: ignore[union-attr]
    e = Service(sop)
    b, a = b or e, a or e
    kw = {"sop_class": sop}
    flipped = set()
    for what, vb, va in (("proposes", b.proposed > 0, a.proposed > 0),
                         ("accepts (as acceptor)", b.accepted > 0, a.accepted > 0),
                         ("refuses (as acceptor)", b.refused > 0, a.refused > 0),
                         ("refused by peers", b.refused_by_peer > 0, a.refused_by_peer > 0)):
        if vb != va:
            out.append(_change(title, None, what, vb, va, **kw))
            flipped.add(what)
    # A SOP class newly proposed or accepted brings its transfer syntaxes: not news twice.
    if "proposes" not in flipped:
        _set_change(out, title, None, "transfer syntaxes proposed", _flat(b.ts_proposed),
                    _flat(a.ts_proposed), **kw)
        if b.proposed and a.proposed:
            _set_change(out, title, None, "preferred transfer syntax (first proposed)",
                        {lst[0] for lst in b.ts_proposed if lst},
                        {lst[0] for lst in a.ts_proposed if lst}, **kw)
        _set_change(out, title, None, "transfer syntax chosen by peers",
                    b.ts_accepted_by_peer, a.ts_accepted_by_peer, **kw)
    if "accepts (as acceptor)" not in flipped:
        _set_change(out, title, None, "transfer syntax chosen (as acceptor)", b.ts_accepted,
                    a.ts_accepted, **kw)
    _set_change(out, title, None, "refusal reasons (as acceptor)", b.refusals, a.refusals,
                **kw)
    for role in (SCU, SCP):
        for cmd in sorted(set(b.statuses[role]) | set(a.statuses[role])):
            sb = dict(b.statuses[role].get(cmd, {}))
            sa = dict(a.statuses[role].get(cmd, {}))
            ck = {**kw, "role": role, "command": cmd}
            _set_change(out, title, None, f"final statuses ({role} {cmd})", sb, sa, **ck)
            rb, ra = _failure_rate(sb), _failure_rate(sa)
            if rb is not None and ra is not None and abs(ra - rb) >= th.rate_points:
                out.append(_change(title, None, f"failure rate % ({role} {cmd})",
                                   round(rb, 1), round(ra, 1), **ck))
            lb, la = b.latency.get((role, cmd)), a.latency.get((role, cmd))
            if role != SCP or lb is None or la is None:
                continue
            if lb.count < th.min_samples or la.count < th.min_samples:
                continue
            for q, name in ((0.5, "p50"), (0.95, "p95")):
                qb, qa = lb.quantile(q), la.quantile(q)
                if qb is None or qa is None:
                    continue
                lo, hi = min(qb, qa), max(qb, qa)
                if hi - lo >= th.latency_min and hi >= th.latency_factor * lo:
                    out.append(_change(title, None, f"latency {name} s ({role} {cmd})",
                                       round(qb, 6), round(qa, 6), **ck))


def _ae_changes(out: list, title: str, b: AE | None, a: AE | None, th: Thresholds) -> None:
    if b is None or a is None:
        out.append(_change(title, None, "seen", b is not None, a is not None))
        return
    _set_change(out, title, None, "implementation",
                [f"{cu or '-'} {vn or ''}".strip() for cu, vn in b.implementations],
                [f"{cu or '-'} {vn or ''}".strip() for cu, vn in a.implementations])
    _set_change(out, title, None, "accepted at", b.addresses, a.addresses)
    for side in ("requestor", "acceptor"):
        _set_change(out, title, None, f"max PDU as {side}", b.max_pdu[side], a.max_pdu[side])
        _set_change(out, title, None, f"role selection as {side}",
                    [f"{s} SCU={u} SCP={p}" for s, u, p in b.roles[side]],
                    [f"{s} SCU={u} SCP={p}" for s, u, p in a.roles[side]])
        _set_change(out, title, None, f"user identity as {side}", b.user_identity[side],
                    a.user_identity[side])
        _set_change(out, title, None, f"asynchronous window as {side}",
                    [f"{i}/{p}" for i, p in b.async_ops[side]],
                    [f"{i}/{p}" for i, p in a.async_ops[side]])
        _set_change(out, title, None, f"extended negotiation as {side}",
                    [f"{s} {i}" for s, i in b.extended[side]],
                    [f"{s} {i}" for s, i in a.extended[side]])
    for sop in sorted(set(b.services) | set(a.services)):
        _service_changes(out, title, b.services.get(sop), a.services.get(sop), th)


def _pair_changes(out: list, key: tuple[str, str], b: Pair | None, a: Pair | None) -> None:
    calling, called = key
    if b is None or a is None:
        out.append(_change(calling, called, "associations seen", b is not None, a is not None))
        return
    _set_change(out, calling, called, "association rejections", b.rejections, a.rejections)
    _set_change(out, calling, called, "association outcomes", b.outcomes, a.outcomes)
    for sop in sorted(set(b.services) | set(a.services)):
        sb, sa = b.services.get(sop), a.services.get(sop)
        kw = {"sop_class": sop}
        if sb is None or sa is None:
            out.append(_change(calling, called, "SOP class proposed", sb is not None,
                               sa is not None, **kw))
            continue
        _set_change(out, calling, called, "accepted with", sb.accepted, sa.accepted, **kw)
        _set_change(out, calling, called, "refused", sb.refused, sa.refused, **kw)
    _set_change(out, calling, called, "finding codes", b.findings, a.findings)


def diff(before: Facts, after: Facts, th: Thresholds | None = None) -> list[dict[str, Any]]:
    """Change records, AE by AE (sorted), then pair by pair."""
    th = th or Thresholds()
    out: list[dict[str, Any]] = []
    for title in sorted(set(before.aes) | set(after.aes)):
        _ae_changes(out, title, before.aes.get(title), after.aes.get(title), th)
    for key in sorted(set(before.pairs) | set(after.pairs)):
        _pair_changes(out, key, before.pairs.get(key), after.pairs.get(key))
    _set_change(out, None, None, "capture finding codes", before.capture_findings,
                after.capture_findings)
    return out
