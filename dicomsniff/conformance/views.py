"""Facts as tables: one source for the terminal, Markdown, CSV, xlsx and JSON outputs.

Each view is a :class:`Table` whose first column is the AE title (or the SCU of a pair), so a
renderer can print it whole (CSV, a workbook sheet) or one AE at a time (terminal, Markdown).
Transfer syntaxes are shown by pydicom keyword (``JPEGLosslessSV1``: short and exact), SOP
classes by the standard's name; the JSON records carry UIDs and names.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from dissectors.dimse.status import meaning

from ..uids import is_compressed, is_transfer_syntax, uid_keyword, uid_name
from .facts import AE, SCP, SCU, Facts, Service

VIEWS = ("aes", "services", "proposed", "accepted", "dimse", "negotiation", "compatibility",
         "requirements")


class Table:
    """A titled table of plain values (str, int, float or None)."""

    __slots__ = ("title", "columns", "rows")

    def __init__(self, title: str, columns: list[str] | tuple[str, ...],
                 rows: list[list[Any]]) -> None:
        self.title, self.columns, self.rows = title, list(columns), rows


def is_compressed_transfer_syntax(uid: str | None) -> bool:
    """A registered transfer syntax with compressed (encapsulated) pixel data."""
    return bool(uid) and is_transfer_syntax(uid) and is_compressed(uid)  # type: ignore[arg-type]


def sop_label(uid: str | None) -> str:
    return uid_name(uid) or uid or "-"


def ts_label(uid: str | None) -> str:
    return uid_keyword(uid) or uid or "-"


def counts(c: Counter[Any] | dict[Any, int], label=str, sep: str = ", ") -> str:
    """'a (3), b (1)': each value with how often it was seen, the most frequent first."""
    return sep.join(f"{label(k)} ({n})" for k, n in sorted(c.items(), key=lambda kv: (-kv[1],
                                                                                   str(kv[0]))))


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    v = seconds * 1000
    return f"{v:.0f} ms" if v >= 100 else f"{v:.1f} ms" if v >= 1 else f"{v:.2f} ms"


def _ts_lists(c: Counter[tuple[str, ...]]) -> str:
    """Distinct proposed lists, each in the proposer's order of preference."""
    return "; ".join(" > ".join(ts_label(t) for t in lst) + (f" (x{n})" if n > 1 else "")
                     for lst, n in c.most_common())


def choice_notes(s: Service) -> list[str]:
    """When an acceptor, offered several transfer syntaxes, did not take the requestor's
    first choice: what it chose instead, in words (its first choice taken is not news)."""
    notes = []
    chosen_ever = set(s.ts_accepted)
    for (offered, chosen), n in s.choices.most_common():
        if len(offered) < 2 or chosen == offered[0]:
            continue
        note = (f"chose {ts_label(chosen)} over the first choice {ts_label(offered[0])}"
                + (f" (x{n})" if n > 1 else ""))
        comp = [ts_label(t) for t in offered if t != chosen and is_compressed_transfer_syntax(t)]
        if not is_compressed_transfer_syntax(chosen) and comp:
            note = (f"chose {ts_label(chosen)} although {', '.join(comp)} was proposed"
                    + (f" (x{n})" if n > 1 else ""))
            if not any(is_compressed_transfer_syntax(t) for t in chosen_ever):
                note += ": compression never negotiated"
        notes.append(note)
    return notes


def aes_table(facts: Facts) -> Table:
    rows = []
    for title in sorted(facts.aes):
        a = facts.aes[title]
        impl = "; ".join(f"{cu or '-'} {vn or ''}".strip() for (cu, vn), _ in
                         a.implementations.most_common())
        rows.append([title, ", ".join(sorted(a.addresses)), ", ".join(sorted(a.hosts)), impl,
                     a.as_requestor, a.as_acceptor,
                     counts(a.outcomes["requestor"]), counts(a.outcomes["acceptor"]),
                     counts(a.rejections["acceptor"]), counts(a.rejections["requestor"]),
                     counts(a.max_pdu["requestor"]), counts(a.max_pdu["acceptor"]),
                     counts(a.peers)])
    return Table("AEs", ["AE", "accepted at", "requested from", "implementation",
                         "as requestor", "as acceptor", "outcomes as requestor",
                         "outcomes as acceptor", "rejected (as acceptor)",
                         "rejected by peer", "max PDU as requestor", "max PDU as acceptor",
                         "peers"], rows)


def services_table(facts: Facts) -> Table:
    """One row per AE and SOP class: the --json ``services`` record, flat."""
    rows = []
    for title in sorted(facts.aes):
        for s in _sorted_services(facts.aes[title]):
            rows.append([title, sop_label(s.sop_class), s.sop_class, s.proposed,
                         s.accepted_by_peer, s.refused_by_peer, s.used,
                         _ts_lists(s.ts_proposed), counts(s.ts_accepted_by_peer, ts_label),
                         s.offered, s.accepted, s.refused, counts(s.refusals),
                         counts(s.ts_accepted, ts_label), counts(s.scu), counts(s.scp)])
    return Table("Services", ["AE", "SOP class", "SOP class UID", "proposed",
                              "accepted by peer", "refused by peer", "used",
                              "transfer syntaxes proposed", "accepted by peer with",
                              "offered", "accepted", "refused", "refused because",
                              "transfer syntaxes chosen", "sent (SCU)", "answered (SCP)"], rows)


def _sorted_services(a: AE) -> list[Service]:
    return sorted(a.services.values(), key=lambda s: (sop_label(s.sop_class), s.sop_class))


def proposed_table(facts: Facts) -> Table:
    rows = []
    for title in sorted(facts.aes):
        for s in _sorted_services(facts.aes[title]):
            if not s.proposed:
                continue
            answer = []
            if s.accepted_by_peer:
                answer.append(f"accepted {s.accepted_by_peer} ("
                              f"{counts(s.ts_accepted_by_peer, ts_label)})")
            if s.refused_by_peer:
                answer.append(f"refused {s.refused_by_peer} ({counts(s.refusals_by_peer)})")
            if s.in_rejected:
                answer.append(f"association rejected {s.in_rejected}")
            rest = s.proposed - s.accepted_by_peer - s.refused_by_peer - s.in_rejected
            if rest:
                answer.append(f"unanswered {rest}")
            used = f"{s.used} of {s.accepted_by_peer}" if s.accepted_by_peer else "-"
            rows.append([title, sop_label(s.sop_class), _ts_lists(s.ts_proposed),
                         "; ".join(answer), used])
    return Table("Proposed (as requestor)", ["AE", "SOP class",
                                             "transfer syntaxes (preference order)",
                                             "peer's answer", "used"], rows)


def accepted_table(facts: Facts) -> Table:
    rows = []
    for title in sorted(facts.aes):
        for s in _sorted_services(facts.aes[title]):
            if not (s.accepted or s.refused):
                continue
            rows.append([title, sop_label(s.sop_class), s.accepted,
                         counts(s.ts_accepted, ts_label), s.refused, counts(s.refusals),
                         "; ".join(choice_notes(s))])
    return Table("Accepted and refused (as acceptor)",
                 ["AE", "SOP class", "accepted", "transfer syntax chosen", "refused",
                  "why refused", "choices"], rows)


def _statuses(by_code: Counter[str], cmd: str, sop: str) -> str:
    """'0x0000 (5); 0xA700 Refused: Out of resources (1)': meanings for all but Success."""
    parts = []
    for code, n in sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0])):
        text = ""
        if code != "0x0000":
            try:
                text = " " + meaning(int(code, 16), cmd, sop)
            except ValueError:
                pass
        parts.append(f"{code}{text} ({n})")
    return "; ".join(parts)


def dimse_table(facts: Facts) -> Table:
    rows = []
    for title in sorted(facts.aes):
        for s in _sorted_services(facts.aes[title]):
            for role, sent in ((SCU, s.scu), (SCP, s.scp)):
                for cmd in sorted(set(sent) | set(s.statuses[role])):
                    st = s.statuses[role].get(cmd, Counter())
                    lat = s.latency.get((role, cmd))
                    answered = sum(st.values())
                    failures = sum(n for code, n in st.items() if _is_failure(code))
                    rows.append([title, role, cmd, sop_label(s.sop_class),
                                 sent.get(cmd, 0) if role == SCU else answered,
                                 _statuses(st, cmd, s.sop_class), failures,
                                 ms(lat.quantile(0.5) if lat else None),
                                 ms(lat.quantile(0.95) if lat else None),
                                 ms(lat.max if lat and lat.count else None)])
    return Table("DIMSE", ["AE", "role", "command", "SOP class", "requests",
                           "final statuses", "failures", "p50", "p95", "max"], rows)


def _is_failure(code: str) -> bool:
    from dissectors.dimse.status import category

    try:
        return category(int(code, 16)) == "Failure"
    except ValueError:
        return True


def negotiation_table(facts: Facts) -> Table:
    rows = []
    for title in sorted(facts.aes):
        a = facts.aes[title]
        for side in ("requestor", "acceptor"):
            verb = "proposed" if side == "requestor" else "answered"
            for (sop, scu, scp), n in sorted(a.roles[side].items()):
                rows.append([title, sop_label(sop), side, f"role selection {verb}",
                             f"SCU-role {scu}, SCP-role {scp}", n])
            for (sop, info), n in sorted(a.extended[side].items()):
                rows.append([title, sop_label(sop), side, f"extended negotiation {verb}",
                             info, n])
            for (inv, perf), n in sorted(a.async_ops[side].items()):
                rows.append([title, "-", side, "asynchronous operations window",
                             f"invoked {inv}, performed {perf}", n])
            for kind, n in sorted(a.user_identity[side].items()):
                rows.append([title, "-", side, "user identity", kind, n])
            for pdu, n in sorted(a.max_pdu[side].items()):
                rows.append([title, "-", side, "max PDU length", str(pdu), n])
    return Table("Negotiation", ["AE", "SOP class", "as", "item", "value", "associations"],
                 rows)


def compatibility_table(facts: Facts) -> Table:
    """Per SCU -> SCP pair and SOP class: what the SCU asked for and what it got."""
    rows = []
    for (calling, called) in sorted(facts.pairs):
        p = facts.pairs[(calling, called)]
        if p.rejections:
            rows.append([calling, called, "(association)", p.associations, "-",
                         f"rejected {sum(p.rejections.values())}: {counts(p.rejections)}",
                         "-", "-"])
        for sop in sorted(p.services, key=lambda u: (sop_label(u), u)):
            s = p.services[sop]
            accepted = sum(s.accepted.values())
            rows.append([calling, called, sop_label(sop), s.proposed,
                         counts(s.accepted, ts_label) or "-",
                         counts(s.refused) or "-",
                         f"{s.used} of {accepted}" if accepted else "-",
                         counts(s.failures) or "-"])
    return Table("Compatibility (SCU -> SCP)", ["SCU (calling AE)", "SCP (called AE)",
                                                 "SOP class", "proposed", "accepted with",
                                                 "refused (reason)", "used", "failures"], rows)


def requirements_table(reqs: list[Any]) -> Table:
    rows = []
    for r in reqs:
        ev = r.evidence.text() if r.evidence is not None else "-"
        rows.append([r.ae, r.role, sop_label(r.sop_class),
                     ts_label(r.transfer_syntax) if r.transfer_syntax else "any", r.status,
                     r.reason or "", ev])
    return Table("Requirements", ["AE", "role", "SOP class", "transfer syntax", "status",
                                  "reason", "evidence"], rows)


def _statuses_http(c: Counter[int]) -> str:
    return ", ".join(f"{k} ({n})" for k, n in sorted(c.items()))


def dicomweb_table(facts: Facts) -> Table:
    """Per origin server, each DICOMweb service and transaction it answered: who asked,
    how often, with what statuses, response times and media types (conformance/web.py)."""
    rows = []
    for name in sorted(facts.web.servers):
        e = facts.web.servers[name]
        for (service, action), s in sorted(e.services.items()):
            rows.append([name, counts(e.software) or "-", service, action,
                         counts(e.peers), s.requests,
                         _statuses_http(s.statuses) + (f", no response ({s.unanswered})"
                                                       if s.unanswered else ""),
                         ms(s.latency.quantile(0.5)), ms(s.latency.quantile(0.95)),
                         ms(s.latency.max if s.latency.count else None),
                         counts(s.content_types) or "-",
                         counts(s.transfer_syntaxes, ts_label) or "-"])
    return Table("DICOMweb", ["origin server", "server software", "service", "transaction",
                              "user agents", "requests", "HTTP statuses", "latency p50",
                              "latency p95", "latency max", "media types",
                              "transfer syntaxes"], rows)


def all_tables(facts: Facts, reqs: list[Any] | None = None) -> dict[str, Table]:
    out = {"aes": aes_table(facts), "services": services_table(facts),
           "proposed": proposed_table(facts), "accepted": accepted_table(facts),
           "dimse": dimse_table(facts), "negotiation": negotiation_table(facts),
           "compatibility": compatibility_table(facts)}
    if facts.web.servers:
        out["dicomweb"] = dicomweb_table(facts)
    if reqs is not None:
        out["requirements"] = requirements_table(reqs)
    return out


# -- the --json contract ------------------------------------------------------------------


def ae_records(facts: Facts) -> list[dict[str, Any]]:
    """One ``{"type": "ae", ...}`` record per AE title (the README's --json contract)."""
    out = []
    for title in sorted(facts.aes):
        a = facts.aes[title]
        services = []
        for s in _sorted_services(a):
            services.append({
                "sop_class": s.sop_class, "sop_class_name": uid_name(s.sop_class),
                "proposed": s.proposed, "accepted": s.accepted, "refused": s.refused,
                "refused_by_peer": s.refused_by_peer, "accepted_by_peer": s.accepted_by_peer,
                "used": s.used, "offered": s.offered,
                "transfer_syntaxes_proposed": [list(lst) for lst, _ in
                                               s.ts_proposed.most_common()],
                "transfer_syntaxes_accepted": sorted(s.ts_accepted),
                "transfer_syntaxes_accepted_by_peer": sorted(s.ts_accepted_by_peer),
                "choices": [{"offered": list(o), "chosen": c, "count": n}
                            for (o, c), n in s.choices.most_common()],
                "refusals": dict(s.refusals), "refusals_by_peer": dict(s.refusals_by_peer),
                "scu": dict(s.scu), "scp": dict(s.scp),
                "statuses": {role: {cmd: dict(c) for cmd, c in by.items()}
                             for role, by in s.statuses.items()},
                "latency": {f"{role} {cmd}": {"count": lat.count, "p50": lat.quantile(0.5),
                                              "p95": lat.quantile(0.95), "max": lat.max}
                            for (role, cmd), lat in sorted(s.latency.items())},
            })
        out.append({
            "type": "ae", "ae_title": title,
            "addresses": sorted(a.addresses), "hosts": sorted(a.hosts),
            "implementations": [{"class_uid": cu, "version_name": vn}
                                for (cu, vn), _ in a.implementations.most_common()],
            "as_requestor": a.as_requestor, "as_acceptor": a.as_acceptor,
            "outcomes": {k: dict(v) for k, v in a.outcomes.items()},
            "rejections": {k: dict(v) for k, v in a.rejections.items()},
            "max_pdu": {k: sorted(v) for k, v in a.max_pdu.items()},
            "async_ops": {k: [{"invoked": i, "performed": p} for i, p in sorted(v)]
                          for k, v in a.async_ops.items()},
            "roles": {k: [{"sop_class": s, "scu_role": u, "scp_role": p}
                          for s, u, p in sorted(v)] for k, v in a.roles.items()},
            "extended_negotiation": {k: [{"sop_class": s, "info": i} for s, i in sorted(v)]
                                     for k, v in a.extended.items()},
            "user_identity": {k: sorted(v) for k, v in a.user_identity.items()},
            "peers": sorted(a.peers),
            "services": services,
        })
    return out


def web_records(facts: Facts) -> list[dict[str, Any]]:
    """``{"type": "dicomweb_server", ...}`` per origin server and ``{"type": "user_agent",
    ...}`` per user agent: the DICOMweb services each answered or used."""
    out = []
    for kind, table, key in (("dicomweb_server", facts.web.servers, "server"),
                             ("user_agent", facts.web.agents, "user_agent")):
        for name in sorted(table):
            e = table[name]
            out.append({
                "type": kind, key: name, "addresses": sorted(e.addresses),
                "software": sorted(e.software),
                ("user_agents" if kind == "dicomweb_server" else "servers"): sorted(e.peers),
                "services": [{"service": svc, "transaction": action, "requests": s.requests,
                              "no_response": s.unanswered,
                              "statuses": {str(k): n for k, n in sorted(s.statuses.items())},
                              "latency": {"count": s.latency.count,
                                          "p50": s.latency.quantile(0.5),
                                          "p95": s.latency.quantile(0.95),
                                          "max": s.latency.max if s.latency.count else None},
                              "accept": dict(s.accept), "media_types": dict(s.content_types),
                              "transfer_syntaxes": dict(s.transfer_syntaxes)}
                             for (svc, action), s in sorted(e.services.items())],
                "services_dropped": e.services_dropped})
    return out


def pair_records(facts: Facts) -> list[dict[str, Any]]:
    """One ``{"type": "pair", ...}`` record per SCU -> SCP pair (the compatibility table)."""
    out = []
    for (calling, called) in sorted(facts.pairs):
        p = facts.pairs[(calling, called)]
        out.append({"type": "pair", "scu": calling, "scp": called,
                    "associations": p.associations, "outcomes": dict(p.outcomes),
                    "rejections": dict(p.rejections),
                    "services": [{"sop_class": sop, "sop_class_name": uid_name(sop),
                                  "proposed": s.proposed, "accepted": dict(s.accepted),
                                  "refused": dict(s.refused), "used": s.used,
                                  "commands": dict(s.commands), "failures": dict(s.failures)}
                                 for sop, s in sorted(p.services.items())]})
    return out
