"""DICOMweb in the conformance view: which PS3.18 services each origin server answered and
each user agent used, with what statuses, media types and response times.

:class:`WebConformance` subscribes to the DICOMweb session's ``on_transaction`` hook
(``analysis.http.session``) and folds every transaction into :class:`WebFacts`: per origin
server (its address, and the ``Server`` header it sent) and per user agent (its
``User-Agent``, else its address), counters keyed by service (``QIDO-RS``, ``WADO-RS``,
``WADO-URI``, ``STOW-RS``, ``UPS-RS``) and transaction (PS3.18's name: "Search for Studies",
"Store Instances", ...). Memory grows with the variety of the traffic, not its length
(``MAX_SERVERS``, ``MAX_AGENTS``, ``MAX_SERVICES``, ``MAX_VALUES`` distinct values a counter).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .latency import Latencies

MAX_SERVERS = 2_000
MAX_AGENTS = 2_000
MAX_SERVICES = 200
MAX_VALUES = 64  # distinct media types, statuses, software names... per counter


def _count(c: Counter[Any], key: Any, n: int = 1) -> None:
    if key in c or len(c) < MAX_VALUES:
        c[key] += n


class WebService:
    """One (service, transaction) as seen from one origin server or one user agent."""

    __slots__ = ("requests", "statuses", "latency", "accept", "content_types",
                 "transfer_syntaxes", "unanswered")

    def __init__(self) -> None:
        self.requests = 0
        self.unanswered = 0
        self.statuses: Counter[int] = Counter()
        self.latency = Latencies()
        self.accept: Counter[str] = Counter()  # what the user agents asked for
        self.content_types: Counter[str] = Counter()  # what was sent (request, response)
        self.transfer_syntaxes: Counter[str] = Counter()

    def add(self, txn: Any) -> None:
        self.requests += 1
        if txn.status is None:
            self.unanswered += 1
        else:
            _count(self.statuses, txn.status)
        if txn.latency is not None:
            self.latency.add(txn.latency)
        for a in txn.accept[:4]:
            _count(self.accept, a[:120])
        for ct in (txn.request_content_type, txn.response_content_type):
            if ct:
                _count(self.content_types, ct.split(";", 1)[0].strip().lower()[:80])
        if txn.transfer_syntax:
            _count(self.transfer_syntaxes, txn.transfer_syntax)

    def merge(self, o: WebService) -> None:
        self.requests += o.requests
        self.unanswered += o.unanswered
        for mine, theirs in ((self.statuses, o.statuses), (self.accept, o.accept),
                             (self.content_types, o.content_types),
                             (self.transfer_syntaxes, o.transfer_syntaxes)):
            for k, n in theirs.items():
                _count(mine, k, n)
        self.latency.merge(o.latency)


class Endpoint:
    """An origin server (by address) or a user agent (by User-Agent, else address)."""

    __slots__ = ("name", "addresses", "software", "peers", "services", "services_dropped")

    def __init__(self, name: str) -> None:
        self.name = name
        self.addresses: Counter[str] = Counter()
        self.software: Counter[str] = Counter()  # Server header / User-Agent
        self.peers: Counter[str] = Counter()  # user agents of a server, servers of an agent
        self.services: dict[tuple[str, str], WebService] = {}
        self.services_dropped = 0

    def service(self, key: tuple[str, str]) -> WebService | None:
        s = self.services.get(key)
        if s is None:
            if len(self.services) >= MAX_SERVICES:
                self.services_dropped += 1
                return None
            s = self.services[key] = WebService()
        return s

    def merge(self, o: Endpoint) -> None:
        for mine, theirs in ((self.addresses, o.addresses), (self.software, o.software),
                             (self.peers, o.peers)):
            for k, n in theirs.items():
                _count(mine, k, n)
        for key, s in o.services.items():
            m = self.service(key)
            if m is not None:
                m.merge(s)
        self.services_dropped += o.services_dropped


def agent_name(info: Any, txn: Any) -> str:
    return (txn.user_agent or info.user_agent or info.client.rsplit(":", 1)[0])[:120]


class WebFacts:
    """Every origin server and user agent of one or more captures."""

    def __init__(self) -> None:
        self.servers: dict[str, Endpoint] = {}
        self.agents: dict[str, Endpoint] = {}
        self.transactions = 0
        self.dropped = 0

    def _get(self, table: dict[str, Endpoint], cap: int, name: str) -> Endpoint | None:
        e = table.get(name)
        if e is None:
            if len(table) >= cap:
                return None
            e = table[name] = Endpoint(name)
        return e

    def add(self, info: Any, txn: Any) -> None:
        self.transactions += 1
        agent = agent_name(info, txn)
        srv = self._get(self.servers, MAX_SERVERS, info.server)
        ua = self._get(self.agents, MAX_AGENTS, agent)
        if srv is None or ua is None:
            self.dropped += 1
            return
        key = (txn.command, txn.action)
        _count(srv.addresses, info.server)
        if info.server_software:
            _count(srv.software, info.server_software[:120])
        _count(srv.peers, agent)
        _count(ua.addresses, info.client.rsplit(":", 1)[0])
        if txn.user_agent or info.user_agent:
            _count(ua.software, agent)
        _count(ua.peers, info.server)
        for e in (srv, ua):
            s = e.service(key)
            if s is not None:
                s.add(txn)

    def merge(self, o: WebFacts) -> None:
        for mine, theirs, cap in ((self.servers, o.servers, MAX_SERVERS),
                                  (self.agents, o.agents, MAX_AGENTS)):
            for name, e in theirs.items():
                m = self._get(mine, cap, name)
                if m is not None:
                    m.merge(e)
        self.transactions += o.transactions
        self.dropped += o.dropped


class WebConformance:
    """Folds an engine's DICOMweb transactions into ``facts`` (a :class:`WebFacts`)."""

    def __init__(self, facts: WebFacts) -> None:
        self.facts = facts

    def attach(self, analyzer: Any) -> WebConformance:
        from ..analysis.http import session

        session(analyzer).on_transaction.append(self.facts.add)
        return self
