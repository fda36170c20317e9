"""Observed facts per AE title and per SCU -> SCP pair, folded from finished associations.

:class:`ConformanceBuilder` subscribes to ``Analyzer.on_association`` (the engine's public
hook; the association comes with its contexts, user information, transactions and findings)
and adds each association to :class:`Facts`, then forgets it. Everything is a counter keyed by
AE title, SOP class and transfer syntax, so memory grows with the variety of the traffic, not
its length; AE titles (wire strings) are capped at ``MAX_AES``, SOP classes per AE at
``MAX_SERVICES``.

Roles. By default the association requestor is the SCU and the acceptor the SCP of every
presentation context. SCP/SCU Role Selection (PS3.7 D.3.3.4) changes that per SOP class: when
the requestor proposed an item and the A-ASSOCIATE-AC answers it, the requestor plays SCU when
the answer's SCU-role is 1 and SCP when its SCP-role is 1 (both when both), and the acceptor
the other role(s); an answer of 0/0 leaves the default. For a context that was not accepted the
roles the requestor asked for are used. The gap analysis uses these roles.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from dissectors.dimse.status import category

from ..model import Association, context_result_text
from ..uids import uid_keyword
from .latency import Latencies
from .web import WebConformance, WebFacts

MAX_AES = 10_000
MAX_PAIRS = 20_000
MAX_SERVICES = 2_000
UNKNOWN_AE = None  # associations picked up mid-stream have no A-ASSOCIATE: titles unknown
SCU, SCP = "SCU", "SCP"


def status_hex(status: int) -> str:
    return f"0x{status:04X}" if 0 <= status <= 0xFFFF else str(status)


def host_of(endpoint: str) -> str:
    """'192.0.2.1' of '192.0.2.1:4567', '2001:db8::1' of '[2001:db8::1]:4567'."""
    if endpoint.startswith("["):
        return endpoint[1:endpoint.find("]")]
    return endpoint.rsplit(":", 1)[0]


class Evidence:
    """Where a fact was seen: the capture file, the association id, the frame."""

    __slots__ = ("file", "association", "frame")

    def __init__(self, file: str, association: int, frame: int | None) -> None:
        self.file, self.association, self.frame = file, association, frame

    def to_record(self) -> dict[str, Any]:
        return {"file": self.file, "association": self.association, "frame": self.frame}

    def text(self) -> str:
        """'night.pcapng#87, association 3': the file's name and the frame in it."""
        return f"{os.path.basename(self.file)}#{self.frame}, association {self.association}"


class RoleEvidence:
    """For one AE, role and SOP class: the first acceptance per transfer syntax and the first
    proposal per transfer syntax that was not accepted with it (and why)."""

    __slots__ = ("accepted", "not_accepted")

    def __init__(self) -> None:
        self.accepted: dict[str, Evidence] = {}
        self.not_accepted: dict[str, tuple[Evidence, str]] = {}


class Service:
    """One AE's facts for one SOP class (abstract syntax), as requestor and as acceptor."""

    __slots__ = ("sop_class", "proposed", "refused_by_peer", "accepted_by_peer", "ts_proposed",
                 "ts_accepted_by_peer", "refusals_by_peer", "used", "unused", "in_rejected",
                 "offered",
                 "accepted", "refused", "ts_offered", "ts_accepted", "choices", "refusals",
                 "scu", "scp", "statuses", "latency")

    def __init__(self, sop_class: str) -> None:
        self.sop_class = sop_class
        # as requestor
        self.proposed = 0
        self.refused_by_peer = 0
        self.accepted_by_peer = 0
        self.ts_proposed: Counter[tuple[str, ...]] = Counter()  # lists, in preference order
        self.ts_accepted_by_peer: Counter[str] = Counter()
        self.refusals_by_peer: Counter[str] = Counter()
        self.used = 0  # accepted contexts it proposed that carried a request
        self.unused = 0
        self.in_rejected = 0  # proposed on associations that were rejected
        # as acceptor
        self.offered = 0
        self.accepted = 0
        self.refused = 0
        self.ts_offered: Counter[tuple[str, ...]] = Counter()
        self.ts_accepted: Counter[str] = Counter()
        self.choices: Counter[tuple[tuple[str, ...], str]] = Counter()  # (offered, chosen)
        self.refusals: Counter[str] = Counter()
        # DIMSE: requests sent (scu) and answered (scp), by command
        self.scu: Counter[str] = Counter()
        self.scp: Counter[str] = Counter()
        self.statuses: dict[str, dict[str, Counter[str]]] = {SCU: {}, SCP: {}}
        self.latency: dict[tuple[str, str], Latencies] = {}

    def merge(self, o: Service) -> None:
        for name in ("proposed", "refused_by_peer", "accepted_by_peer", "used", "unused",
                     "in_rejected",
                     "offered", "accepted", "refused"):
            setattr(self, name, getattr(self, name) + getattr(o, name))
        for name in ("ts_proposed", "ts_accepted_by_peer", "refusals_by_peer", "ts_offered",
                     "ts_accepted", "choices", "refusals", "scu", "scp"):
            getattr(self, name).update(getattr(o, name))
        for role, by_cmd in o.statuses.items():
            for cmd, c in by_cmd.items():
                self.statuses[role].setdefault(cmd, Counter()).update(c)
        for key, lat in o.latency.items():
            self.latency.setdefault(key, Latencies()).merge(lat)


class AE:
    """Everything one AE title did, in either association role."""

    __slots__ = ("title", "addresses", "hosts", "implementations", "as_requestor",
                 "as_acceptor", "outcomes", "rejections", "max_pdu", "async_ops", "roles",
                 "extended", "user_identity", "services", "peers", "evidence",
                 "services_dropped")

    def __init__(self, title: str) -> None:
        self.title = title
        self.addresses: Counter[str] = Counter()  # ip:port where it accepted associations
        self.hosts: Counter[str] = Counter()  # ip it requested associations from
        self.implementations: Counter[tuple[str | None, str | None]] = Counter()
        self.as_requestor = 0
        self.as_acceptor = 0
        self.outcomes: dict[str, Counter[str]] = {"requestor": Counter(), "acceptor": Counter()}
        self.rejections: dict[str, Counter[str]] = {"requestor": Counter(),
                                                    "acceptor": Counter()}
        self.max_pdu: dict[str, Counter[int]] = {"requestor": Counter(), "acceptor": Counter()}
        self.async_ops: dict[str, Counter[tuple[int, int]]] = {"requestor": Counter(),
                                                               "acceptor": Counter()}
        # (sop_class, scu_role, scp_role): proposed as requestor / answered as acceptor
        self.roles: dict[str, Counter[tuple[str, int, int]]] = {"requestor": Counter(),
                                                                "acceptor": Counter()}
        self.extended: dict[str, Counter[tuple[str, str]]] = {"requestor": Counter(),
                                                              "acceptor": Counter()}
        self.user_identity: dict[str, Counter[str]] = {"requestor": Counter(),
                                                       "acceptor": Counter()}
        self.services: dict[str, Service] = {}
        self.peers: Counter[str] = Counter()
        self.evidence: dict[tuple[str, str], RoleEvidence] = {}  # (role, sop_class)
        self.services_dropped = 0

    def service(self, sop_class: str) -> Service | None:
        s = self.services.get(sop_class)
        if s is None:
            if len(self.services) >= MAX_SERVICES:
                self.services_dropped += 1
                return None
            s = self.services[sop_class] = Service(sop_class)
        return s

    def role_evidence(self, role: str, sop_class: str) -> RoleEvidence:
        key = (role, sop_class)
        ev = self.evidence.get(key)
        if ev is None:
            ev = self.evidence[key] = RoleEvidence()
        return ev

    def merge(self, o: AE) -> None:
        for name in ("addresses", "hosts", "implementations", "peers"):
            getattr(self, name).update(getattr(o, name))
        self.as_requestor += o.as_requestor
        self.as_acceptor += o.as_acceptor
        self.services_dropped += o.services_dropped
        for name in ("outcomes", "rejections", "max_pdu", "async_ops", "roles", "extended",
                     "user_identity"):
            mine = getattr(self, name)
            for side, c in getattr(o, name).items():
                mine[side].update(c)
        for sop, s in o.services.items():
            mine_s = self.service(sop)
            if mine_s is not None:
                mine_s.merge(s)
        for key, ev in o.evidence.items():
            m = self.evidence.setdefault(key, RoleEvidence())
            for ts, e in ev.accepted.items():
                m.accepted.setdefault(ts, e)
            for ts, er in ev.not_accepted.items():
                m.not_accepted.setdefault(ts, er)


class PairService:
    """What one SCU asked one SCP for one SOP class, and what it got."""

    __slots__ = ("sop_class", "proposed", "ts_proposed", "accepted", "refused", "used",
                 "commands", "failures")

    def __init__(self, sop_class: str) -> None:
        self.sop_class = sop_class
        self.proposed = 0
        self.ts_proposed: Counter[tuple[str, ...]] = Counter()
        self.accepted: Counter[str] = Counter()  # chosen transfer syntax
        self.refused: Counter[str] = Counter()  # reason in words
        self.used = 0
        self.commands: Counter[str] = Counter()  # "C-STORE" sent on this pair's associations
        self.failures: Counter[str] = Counter()

    def merge(self, o: PairService) -> None:
        self.proposed += o.proposed
        self.used += o.used
        for name in ("ts_proposed", "accepted", "refused", "commands", "failures"):
            getattr(self, name).update(getattr(o, name))


class Pair:
    """The associations one calling AE (SCU side) opened to one called AE (SCP side)."""

    __slots__ = ("calling", "called", "associations", "outcomes", "rejections", "services",
                 "findings")

    def __init__(self, calling: str, called: str) -> None:
        self.calling, self.called = calling, called
        self.associations = 0
        self.outcomes: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.services: dict[str, PairService] = {}
        self.findings: Counter[str] = Counter()

    def service(self, sop_class: str) -> PairService | None:
        s = self.services.get(sop_class)
        if s is None:
            if len(self.services) >= MAX_SERVICES:
                return None
            s = self.services[sop_class] = PairService(sop_class)
        return s

    def merge(self, o: Pair) -> None:
        self.associations += o.associations
        self.outcomes.update(o.outcomes)
        self.rejections.update(o.rejections)
        self.findings.update(o.findings)
        for sop, s in o.services.items():
            m = self.service(sop)
            if m is not None:
                m.merge(s)


class Facts:
    """All AE titles and pairs of one or more captures."""

    def __init__(self) -> None:
        self.aes: dict[str, AE] = {}
        self.pairs: dict[tuple[str, str], Pair] = {}
        self.files: list[str] = []
        self.associations = 0
        self.unattributed = 0  # associations begun before the capture: AE titles unknown
        self.dropped = 0  # associations beyond the AE/pair caps
        self.capture_findings: Counter[str] = Counter()
        self.web = WebFacts()  # DICOMweb origin servers and user agents (conformance/web.py)

    def ae(self, title: str) -> AE | None:
        a = self.aes.get(title)
        if a is None:
            if len(self.aes) >= MAX_AES:
                return None
            a = self.aes[title] = AE(title)
        return a

    def pair(self, calling: str, called: str) -> Pair | None:
        key = (calling, called)
        p = self.pairs.get(key)
        if p is None:
            if len(self.pairs) >= MAX_PAIRS:
                return None
            p = self.pairs[key] = Pair(calling, called)
        return p

    def merge(self, o: Facts) -> None:
        """Fold another capture's facts in (several files analysed one after another)."""
        for title, a in o.aes.items():
            mine = self.ae(title)
            if mine is not None:
                mine.merge(a)
        for key, p in o.pairs.items():
            m = self.pair(*key)
            if m is not None:
                m.merge(p)
        self.files += o.files
        self.associations += o.associations
        self.unattributed += o.unattributed
        self.dropped += o.dropped
        self.capture_findings.update(o.capture_findings)
        self.web.merge(o.web)


def _roles(rq: dict[str, Any] | None, ac: dict[str, Any] | None,
           accepted: bool) -> tuple[set[str], set[str]]:
    """(requestor's roles, acceptor's roles) for one SOP class (PS3.7 D.3.3.4)."""
    if rq is None:
        return {SCU}, {SCP}
    item = ac if accepted and ac is not None else (rq if not accepted else None)
    if item is None:  # proposed, accepted context, no answer: default roles
        return {SCU}, {SCP}
    req = set()
    if item["scu_role"]:
        req.add(SCU)
    if item["scp_role"]:
        req.add(SCP)
    if not req:
        return {SCU}, {SCP}
    acc = {SCP if r == SCU else SCU for r in req}
    return req, acc


class ConformanceBuilder:
    """Subscribe :meth:`association` to ``Analyzer.on_association`` (and :meth:`finding` to
    ``on_finding`` for capture-level findings); read :attr:`facts` when the capture is done."""

    def __init__(self, files: str | list[str],
                 locate: Callable[[int], tuple[str, int] | None] | None = None,
                 facts: Facts | None = None) -> None:
        """``locate(frame)`` maps the analyzer's frame number to (file, frame in that file)
        when several captures are read as one (``CaptureSet.locate``)."""
        self.files = [files] if isinstance(files, str) else list(files)
        self.locate = locate
        self.facts = facts if facts is not None else Facts()
        for f in self.files:
            if f not in self.facts.files:
                self.facts.files.append(f)

    def evidence(self, a: Association, frame: int | None) -> Evidence:
        where = self.locate(frame) if self.locate is not None and frame else None
        if where is not None:
            return Evidence(where[0], a.id, where[1])
        return Evidence(self.files[0] if len(self.files) == 1 else "-", a.id, frame)

    def attach(self, analyzer: Any) -> ConformanceBuilder:
        analyzer.on_association.append(self.association)
        analyzer.on_finding.append(self.finding)
        if hasattr(analyzer, "next_transaction_id"):  # an engine: its DICOMweb session too
            WebConformance(self.facts.web).attach(analyzer)
        return self

    def finding(self, f: Any) -> None:
        if f.association is None:
            self.facts.capture_findings[f.code] += 1

    def association(self, a: Association) -> None:  # noqa: C901 - one pass, many facts
        facts = self.facts
        facts.associations += 1
        calling, called = a.calling_ae, a.called_ae
        if calling is None or called is None:
            facts.unattributed += 1
            return
        calling, called = calling.strip(), called.strip()
        req, acc, pair = facts.ae(calling), facts.ae(called), facts.pair(calling, called)
        if req is None or acc is None or pair is None:
            facts.dropped += 1
            return
        rejected = a.outcome == "rejected"
        answered = a.accept_frame is not None
        frame = a.accept_frame if answered else a.request_frame
        evidence = self.evidence(a, frame)
        req.as_requestor += 1
        acc.as_acceptor += 1
        req.outcomes["requestor"][a.outcome] += 1
        acc.outcomes["acceptor"][a.outcome] += 1
        req.peers[called] += 1
        acc.peers[calling] += 1
        acc.addresses[a.server] += 1
        req.hosts[host_of(a.client)] += 1
        pair.associations += 1
        pair.outcomes[a.outcome] += 1
        if rejected:
            why = a.reason or "no reason given"
            req.rejections["requestor"][why] += 1
            acc.rejections["acceptor"][why] += 1
            pair.rejections[why] += 1
        for ae, side, role in ((req, a.requestor, "requestor"), (acc, a.acceptor, "acceptor")):
            if role == "acceptor" and (rejected or not answered):
                continue  # an A-ASSOCIATE-RJ carries no user information
            if side.implementation_class_uid or side.implementation_version_name:
                ae.implementations[(side.implementation_class_uid,
                                    side.implementation_version_name)] += 1
            if side.max_pdu is not None:
                ae.max_pdu[role][side.max_pdu] += 1
            if side.async_invoked is not None:
                ae.async_ops[role][(side.async_invoked, side.async_performed or 0)] += 1
            for r in side.roles:
                ae.roles[role][(r["sop_class"], r["scu_role"], r["scp_role"])] += 1
            for x in side.extended:
                ae.extended[role][(x["sop_class"], x["info"])] += 1
            ui = side.user_identity
            if ui:
                ae.user_identity[role][ui.get("type_text") or "server response"] += 1
        for f in a.findings:
            pair.findings[f.code] += 1

        rq_roles = {r["sop_class"]: r for r in a.requestor.roles}
        ac_roles = {r["sop_class"]: r for r in a.acceptor.roles} if answered else {}
        used_ids = {t.context_id for t in a.transactions}
        for pc in a.contexts.values():
            sop = pc.abstract_syntax
            if sop is None:
                continue
            offered = tuple(pc.transfer_syntaxes)
            s_req, s_acc, s_pair = req.service(sop), acc.service(sop), pair.service(sop)
            accepted = pc.result == 0 and not rejected
            if s_req is not None:
                s_req.proposed += 1
                s_req.ts_proposed[offered] += 1
            if s_acc is not None:
                s_acc.offered += 1
                s_acc.ts_offered[offered] += 1
            if s_pair is not None:
                s_pair.proposed += 1
                s_pair.ts_proposed[offered] += 1
            if rejected:
                reason = f"association rejected: {a.reason or 'no reason given'}"
                if s_req is not None:
                    s_req.in_rejected += 1
            elif pc.result is None:
                reason = "no answer (association ended before A-ASSOCIATE-AC)"
            elif accepted:
                ts = pc.transfer_syntax or ""
                reason = ""
                if s_acc is not None:
                    s_acc.accepted += 1
                    s_acc.ts_accepted[ts] += 1
                    s_acc.choices[(offered, ts)] += 1
                if s_req is not None:
                    s_req.accepted_by_peer += 1
                    s_req.ts_accepted_by_peer[ts] += 1
                    if pc.id in used_ids:
                        s_req.used += 1
                    else:
                        s_req.unused += 1
                if s_pair is not None:
                    s_pair.accepted[ts] += 1
                    s_pair.used += pc.id in used_ids
            else:
                reason = context_result_text(pc.result)
                if s_acc is not None:
                    s_acc.refused += 1
                    s_acc.refusals[reason] += 1
                if s_req is not None:
                    s_req.refused_by_peer += 1
                    s_req.refusals_by_peer[reason] += 1
                if s_pair is not None:
                    s_pair.refused[reason] += 1
            # Evidence for the gap analysis, by the role each side played for this class.
            req_roles, acc_roles = _roles(rq_roles.get(sop), ac_roles.get(sop), accepted)
            for ae, roles in ((req, req_roles), (acc, acc_roles)):
                for role in roles:
                    ev = ae.role_evidence(role, sop)
                    if accepted:
                        chosen = pc.transfer_syntax or ""
                        ev.accepted.setdefault(chosen, evidence)
                        ev.accepted.setdefault("", evidence)  # "any transfer syntax"
                        for ts in offered:
                            if ts != chosen and ts not in ev.not_accepted:
                                ev.not_accepted[ts] = (
                                    evidence,
                                    f"accepted with {uid_keyword(chosen) or chosen} instead")
                    else:
                        for ts in (*offered, ""):
                            ev.not_accepted.setdefault(ts, (evidence, reason))

        by_id = a.contexts
        for t in a.transactions:
            sop = t.sop_class
            if not sop:
                pc = by_id.get(t.context_id)
                sop = pc.abstract_syntax if pc is not None else None
            if not sop:
                continue
            if t.sent_by == "requestor":
                sender, performer = req, acc
            else:
                sender, performer = acc, req
            cmd = t.command
            s_send, s_perf, s_pair = sender.service(sop), performer.service(sop), pair.service(sop)
            lat = t.latency
            if s_pair is not None:
                s_pair.commands[cmd] += 1
            if s_send is not None:
                s_send.scu[cmd] += 1
            if t.status is None or t.status_category == "Pending":
                continue
            code = status_hex(t.status)
            if s_pair is not None and category(t.status) == "Failure":
                s_pair.failures[cmd] += 1
            for s, role in ((s_send, SCU), (s_perf, SCP)):
                if s is None:
                    continue
                if role == SCP:
                    s.scp[cmd] += 1
                s.statuses[role].setdefault(cmd, Counter())[code] += 1
                if lat is not None:
                    s.latency.setdefault((role, cmd), Latencies()).add(lat)


def build(associations: Iterable[Association], file: str = "-") -> Facts:
    """Facts of associations already in memory (tests, the TUI)."""
    b = ConformanceBuilder(file)
    for a in associations:
        b.association(a)
    return b.facts
