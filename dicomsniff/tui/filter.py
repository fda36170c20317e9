"""The filter language of the filter bar: what a PACS administrator types.

    ae:CT1 command:C-STORE status:failure      CT1's failed C-STOREs
    ip:192.0.2.1   ip:10.1.0.0/16   port:104   sop:CT   findings   -outcome:released

Terms are ``key:value`` or a bare word. Terms with different keys must all hold; the same key
given twice means either (``ae:CT1 ae:CT2``); ``-`` (or ``!``) in front negates a term. A bare
word matches AE titles and addresses. ``command``, ``sop`` and ``status`` look at
transactions and must hold for the same transaction; the ladder then shows only those
transactions. Values are case-insensitive; quote a value with spaces: ``ae:"MY AE"``.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from ..model import Association, Transaction
from ..uids import uid_name

COMMANDS = ("C-ECHO", "C-STORE", "C-FIND", "C-GET", "C-MOVE", "N-EVENT-REPORT",
            "N-GET", "N-SET", "N-ACTION", "N-CREATE", "N-DELETE")
STATUSES = ("success", "warning", "failure", "pending", "cancel", "none")
OUTCOMES = ("released", "aborted", "rejected", "closed", "incomplete")
SEVERITIES = ("error", "warning", "info")

# key -> (aliases, help); the help screen prints this table.
KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "ae": (("aet",), "calling or called AE title contains VALUE"),
    "calling": ((), "calling AE title contains VALUE"),
    "called": ((), "called AE title contains VALUE"),
    "ip": (("host", "addr"), "client or server address: 192.0.2.1, 10.1.0.0/16, 2001:db8::1"),
    "port": ((), "client or server TCP port"),
    "command": (("cmd", "c"), "a transaction of that command: C-STORE, store, N-ACTION..."),
    "sop": (("sop_class", "class"), "SOP class name contains VALUE (CT, worklist) or UID prefix"),
    "status": (("st",), "final status: " + ", ".join(STATUSES) + " or a code like 0xA700"),
    "outcome": (("o",), "how the association ended: " + ", ".join(OUTCOMES)),
    "findings": (("has",), "has findings (findings:error, findings:warning: that severity)"),
    "id": ((), "association number, or a range: id:3-10"),
}
_ALIASES = {alias: key for key, (aliases, _h) in KEYS.items() for alias in (key, *aliases)}
TXN_KEYS = frozenset({"command", "sop", "status"})


class FilterError(ValueError):
    """The text is not a filter; the message says why, in words."""


@dataclass(frozen=True)
class Term:
    key: str  # "" for a bare word
    value: str
    negate: bool = False


@dataclass
class Filter:
    """A parsed filter; ``matches`` decides an association, ``shows`` a transaction."""

    text: str = ""
    terms: list[Term] = field(default_factory=list)
    _assoc: list[Callable[[Association], bool]] = field(default_factory=list)
    _txn: list[Callable[[Transaction], bool]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.terms

    @property
    def filters_transactions(self) -> bool:
        return bool(self._txn)

    def shows(self, t: Transaction) -> bool:
        return all(p(t) for p in self._txn)

    def matches(self, a: Association) -> bool:
        if not all(p(a) for p in self._assoc):
            return False
        return not self._txn or any(self.shows(t) for t in a.transactions)


def parse(text: str) -> Filter:
    """Parse the filter bar's text; raise :class:`FilterError` with a helpful message."""
    try:
        words = shlex.split(text, posix=True)
    except ValueError as exc:
        raise FilterError(f"unbalanced quote ({exc})") from None
    terms: list[Term] = []
    for w in words:
        neg = w[:1] in ("-", "!") and len(w) > 1
        body = w[1:] if neg else w
        key, sep, value = body.partition(":")
        if not sep:
            low = body.casefold()
            if low in ("findings", "has-findings", "has_findings"):
                terms.append(Term("findings", "", neg))
            elif low in OUTCOMES:
                terms.append(Term("outcome", low, neg))
            else:
                terms.append(Term("", body, neg))
            continue
        k = _ALIASES.get(key.casefold())
        if k is None:
            raise FilterError(f"unknown filter key {key!r}: use one of {', '.join(KEYS)}")
        if not value and k != "findings":
            raise FilterError(f"{k}: needs a value, e.g. {_example(k)}")
        terms.append(Term(k, value, neg))
    f = Filter(text, terms)
    by_key: dict[str, list[Term]] = {}
    for t in terms:
        by_key.setdefault(t.key, []).append(t)
    for key, group in by_key.items():
        preds = [_predicate(t) for t in group]
        target = f._txn if key in TXN_KEYS else f._assoc
        target.append(_any_of(preds, group))
    return f


def _example(key: str) -> str:
    return {"ae": "ae:CT1", "calling": "calling:CT1", "called": "called:PACS",
            "ip": "ip:192.0.2.1", "port": "port:104", "command": "command:C-STORE",
            "sop": "sop:CT", "status": "status:failure", "outcome": "outcome:aborted",
            "id": "id:3"}.get(key, f"{key}:VALUE")


def _any_of(preds: list[Callable], terms: list[Term]) -> Callable:
    """Same key: positive terms OR-ed; negated terms must all hold."""
    pos = [p for p, t in zip(preds, terms, strict=True) if not t.negate]
    neg = [p for p, t in zip(preds, terms, strict=True) if t.negate]

    def check(x: object) -> bool:
        if pos and not any(p(x) for p in pos):
            return False
        return not any(p(x) for p in neg)

    return check


def _contains(hay: str | None, needle: str) -> bool:
    return hay is not None and needle in hay.casefold()


def _host(endpoint: str) -> str:
    host = endpoint.rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") else host


def _port(endpoint: str) -> int:
    try:
        return int(endpoint.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return -1


def _predicate(t: Term) -> Callable:
    v = t.value.casefold()
    k = t.key
    if k == "":
        return lambda a: (_contains(a.calling_ae, v) or _contains(a.called_ae, v)
                          or v in a.client.casefold() or v in a.server.casefold())
    if k == "ae":
        return lambda a: _contains(a.calling_ae, v) or _contains(a.called_ae, v)
    if k == "calling":
        return lambda a: _contains(a.calling_ae, v)
    if k == "called":
        return lambda a: _contains(a.called_ae, v)
    if k == "ip":
        return _ip_predicate(t.value)
    if k == "port":
        if not t.value.isdigit() or not 0 < int(t.value) < 65536:
            raise FilterError(f"port: not a TCP port: {t.value!r}")
        p = int(t.value)
        return lambda a: _port(a.client) == p or _port(a.server) == p
    if k == "command":
        return _command_predicate(t.value)
    if k == "sop":
        return _sop_predicate(v)
    if k == "status":
        return _status_predicate(t.value)
    if k == "outcome":
        if v not in OUTCOMES:
            raise FilterError(f"outcome: one of {', '.join(OUTCOMES)}, not {t.value!r}")
        return lambda a: a.outcome == v
    if k == "findings":
        if v and v not in SEVERITIES:
            raise FilterError(f"findings: a severity ({', '.join(SEVERITIES)}), not {t.value!r}")
        if not v:
            return lambda a: bool(a.findings)
        return lambda a: any(f.severity == v for f in a.findings)
    if k == "id":
        return _id_predicate(t.value)
    raise FilterError(f"unknown key {k}")  # pragma: no cover - parse() checked it


def _ip_predicate(value: str) -> Callable:
    try:
        net = ipaddress.ip_network(value.strip("[]"), strict=False)
    except ValueError:
        raise FilterError(f"ip: not an address or network: {value!r}") from None

    def inside(endpoint: str) -> bool:
        try:
            return ipaddress.ip_address(_host(endpoint)) in net
        except ValueError:
            return False

    if net.num_addresses == 1:
        text = str(net.network_address)
        return lambda a: _host(a.client) == text or _host(a.server) == text
    return lambda a: inside(a.client) or inside(a.server)


def _command_predicate(value: str) -> Callable:
    up = value.upper().replace("_", "-")
    names = [c for c in COMMANDS if c == up or c[2:] == up or c.replace("-", "") == up]
    if not names:
        raise FilterError(f"command: unknown DIMSE command {value!r} (C-STORE, C-FIND, C-MOVE, "
                          "C-GET, C-ECHO, N-ACTION, N-EVENT-REPORT, N-CREATE, N-SET, N-GET...)")
    name = names[0]
    return lambda t: t.command == name


def _sop_predicate(v: str) -> Callable:
    if v[:1].isdigit():
        return lambda t: t.sop_class is not None and t.sop_class.startswith(v)
    word = re.compile(r"\b" + re.escape(v))  # sop:CT is CT Image Storage, not "Structured"

    def check(t: Transaction) -> bool:
        name = uid_name(t.sop_class)
        return name is not None and word.search(name.casefold()) is not None

    return check


def _status_predicate(value: str) -> Callable:
    v = value.casefold()
    if v in ("fail", "failed", "error"):
        v = "failure"
    if v == "none":
        return lambda t: t.status is None
    if v in STATUSES:
        cat = v.capitalize()
        return lambda t: t.status_category == cat
    try:
        code = int(v, 16)
    except ValueError:
        raise FilterError(f"status: {', '.join(STATUSES)} or a code like 0xA700, "
                          f"not {value!r}") from None
    return lambda t: t.status == code


def _id_predicate(value: str) -> Callable:
    lo, sep, hi = value.partition("-")
    try:
        a, b = int(lo), int(hi) if sep else int(lo)
    except ValueError:
        raise FilterError(f"id: a number or a range like 3-10, not {value!r}") from None
    return lambda x: a <= x.id <= b


def help_rows() -> list[tuple[str, str]]:
    """(key with aliases, meaning) for the help screen."""
    return [(key + (f" ({', '.join(al)})" if al else ""), text)
            for key, (al, text) in KEYS.items()]
