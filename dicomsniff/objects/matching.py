"""Does a C-FIND response identifier answer its request identifier? (PS3.4 C.2.2.2)

Pure functions on pydicom data sets. Every key of the request must come back in each
response (a return key, C.2.2.2.3 and C.4.1.1.3.2), and a key with a matching value must be
matched by the response's value: single value (C.2.2.2.1), list of UIDs (C.2.2.2.2), wild
cards (C.2.2.2.4), ranges of dates and times (C.2.2.2.5), sequences (C.2.2.2.6). Where the
standard lets an SCP choose (case of person names), the lenient reading is taken: a finding
must mean the SCP got it wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SECTION = {"missing": "PS3.4 C.2.2.2.3 / C.4.1.1.3.2", "single": "PS3.4 C.2.2.2.1",
           "uid-list": "PS3.4 C.2.2.2.2", "wildcard": "PS3.4 C.2.2.2.4",
           "range": "PS3.4 C.2.2.2.5", "sequence": "PS3.4 C.2.2.2.6"}
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
RANGE_VRS = frozenset({"DA", "TM", "DT"})
NUMERIC_VRS = frozenset({"US", "UL", "SS", "SL", "FL", "FD", "IS", "DS", "UV", "SV"})
# Not keys: the character set and group lengths are about the encoding, not the query.
NOT_KEYS = frozenset({0x00080005})


@dataclass(frozen=True)
class Problem:
    kind: str  # "missing" | "mismatch"
    path: str  # "ScheduledProcedureStepSequence[1].Modality (0008,0060)"
    rule: str  # key of SECTION
    detail: str = ""  # what was asked and what came back


def _name(elem: Any) -> str:
    tag = int(elem.tag)
    return f"{elem.keyword or 'tag'} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _values(elem: Any) -> list[str]:
    v = elem.value
    if v is None or v == "":
        return []
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        return [str(x).strip() for x in v]
    return [str(v).strip()]


def check(query: Any, response: Any, prefix: str = "") -> list[Problem]:
    """Every way ``response`` fails the keys of ``query`` (an empty list: it answers it)."""
    out: list[Problem] = []
    for q in query:
        tag = int(q.tag)
        if tag in NOT_KEYS or tag & 0xFFFF == 0:
            continue
        path = prefix + _name(q)
        r = response.get(q.tag)
        if r is None:
            out.append(Problem("missing", path, "missing"))
            continue
        if str(q.VR) == "SQ":
            out += _sequence(q, r, path, prefix + (q.keyword or "item"))
            continue
        rule, ok, asked = _match(q, r)
        if not ok:
            got = "\\".join(_values(r)) or "(empty)"
            out.append(Problem("mismatch", path, rule, f"asked {asked}, got {got}"))
    return out


def _sequence(q: Any, r: Any, path: str, where: str) -> list[Problem]:
    """A sequence key with an item: some response item must match all of its keys; each
    response item must return the item's keys (C.2.2.2.6)."""
    items = list(q.value or [])
    if not items or not len(items[0]):
        return []  # universal: a return key only
    query_item = items[0]
    got = list(r.value or []) if str(r.VR) == "SQ" else []
    if not got:
        return [Problem("mismatch", path, "sequence", "asked for matching items, got none")]
    per_item = [check(query_item, item, f"{where}[{n}].") for n, item in enumerate(got, 1)]
    out = [p for probs in per_item for p in probs if p.kind == "missing"]
    if all(any(p.kind == "mismatch" for p in probs) for probs in per_item):
        first = next(p for p in per_item[0] if p.kind == "mismatch")
        out.append(Problem("mismatch", path, first.rule,
                           f"no item matches ({first.path}: {first.detail})"))
    return out


def _match(q: Any, r: Any) -> tuple[str, bool, str]:
    """(rule, matched, the query value as asked)."""
    vr = str(q.VR)
    asked = _values(q)
    if not asked:
        return "single", True, ""  # universal matching: any value (or none) will do
    got = _values(r)
    shown = "\\".join(asked)
    if vr == "UI":
        return "uid-list" if len(asked) > 1 else "single", any(g in asked for g in got), shown
    if len(asked) == 1 and vr in RANGE_VRS and "-" in asked[0]:
        return "range", any(_in_range(vr, asked[0], g) for g in got), shown
    if vr in WILDCARD_VRS and any(c in a for a in asked for c in "*?"):
        if all(a.strip("*") == "" for a in asked):
            return "wildcard", True, shown  # "*" alone is universal matching
        pats = [_wildcard(a, vr) for a in asked]
        return "wildcard", any(p.fullmatch(_norm(vr, g)) for p in pats for g in got), shown
    return "single", any(_same(vr, a, g) for a in asked for g in got), shown


def _norm(vr: str, value: str) -> str:
    value = value.strip()
    if vr == "PN":
        # Case, and empty trailing components, are not significant to a lenient matcher.
        return "=".join(g.rstrip("^") for g in value.split("=")).rstrip("=").casefold()
    if vr in ("DA", "TM", "DT"):
        return value.replace(".", "").replace(":", "") if vr == "DA" else value.replace(":", "")
    return value


def _same(vr: str, asked: str, got: str) -> bool:
    if vr in NUMERIC_VRS:
        try:
            return float(asked) == float(got)
        except ValueError:
            return asked == got
    a, g = _norm(vr, asked), _norm(vr, got)
    if vr in ("TM", "DT"):
        return g.startswith(a) or a.startswith(g)  # the same instant at another precision
    return a == g


def _wildcard(pattern: str, vr: str) -> re.Pattern[str]:
    p = _norm(vr, pattern)
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p)
    return re.compile(regex, re.DOTALL)


def _in_range(vr: str, asked: str, got: str) -> bool:
    lo, _, hi = asked.partition("-")
    if not _norm(vr, got):
        return False
    g = _canon(vr, got, "0")
    return (not lo.strip() or g >= _canon(vr, lo, "0")) and (
        not hi.strip() or g <= _canon(vr, hi, "9"))


def _canon(vr: str, value: str, fill: str) -> str:
    """Comparable form; a bound at a coarser precision covers its whole unit (an upper bound
    of 1200 reaches 120059.999999)."""
    v = _norm(vr, value)
    if vr == "DA":
        return v[:8].ljust(8, fill)
    if vr == "TM":
        return _time(v, fill)
    v = re.split(r"[+-]", v)[0]  # DT: the offset from UTC is not compared
    return v[:8].ljust(8, fill) + _time(v[8:], fill)


def _time(v: str, fill: str) -> str:
    hms, _, frac = v.partition(".")
    return hms[:6].ljust(6, fill) + "." + frac[:6].ljust(6, fill)
