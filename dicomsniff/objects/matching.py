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

from dissectors.wiretext import shown

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
            got = _shown(_values(r)) or "(empty)"
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
    """(rule, matched, the query value as asked).

    Multi-valued keys are matched through sets (hashing once per value), never value against
    value: a million values asked against half a million returned is linear work. Wild card
    patterns that really are patterns are the only pairs compared one by one, within
    :data:`PAIR_BUDGET` characters of work; past it the key is counted as matched (a finding
    must mean the SCP got it wrong, not that we gave up).
    """
    vr = str(q.VR)
    asked = _values(q)
    if not asked:
        return "single", True, ""  # universal matching: any value (or none) will do
    got = _values(r)
    shown = _shown(asked)
    if vr == "UI":
        return ("uid-list" if len(asked) > 1 else "single",
                not set(asked).isdisjoint(got), shown)
    if len(asked) == 1 and vr in RANGE_VRS and "-" in asked[0]:
        return "range", any(_in_range(vr, asked[0], g) for g in got), shown
    if vr in WILDCARD_VRS and any("*" in a or "?" in a for a in asked):
        if any(a.strip("*") == "" for a in asked):
            return "wildcard", True, shown  # "*" alone is universal matching
        return "wildcard", _any_wildcard(vr, asked, got), shown
    return "single", _any_same(vr, asked, got), shown


PAIR_BUDGET = 20_000_000  # characters compared across (pattern, value) pairs of one key


def _any_wildcard(vr: str, asked: list[str], got: list[str]) -> bool:
    values = {_norm(vr, g) for g in got}
    patterns = {_norm(vr, a) for a in asked}
    plain = {p for p in patterns if "*" not in p and "?" not in p}
    if not plain.isdisjoint(values):
        return True
    work = 0
    for p in patterns - plain:
        for v in values:
            work += len(p) + len(v)
            if work > PAIR_BUDGET:
                return True
            if wildcard_match(p, v):
                return True
    return False


def _any_same(vr: str, asked: list[str], got: list[str]) -> bool:
    if vr in NUMERIC_VRS:
        want: set[object] = set()
        for a in asked:
            want.add(_number(a))
        return any(_number(g) in want for g in got)
    a_set = {_norm(vr, a) for a in asked}
    g_set = {_norm(vr, g) for g in got}
    if not a_set.isdisjoint(g_set):
        return True
    if vr not in ("TM", "DT"):
        return False
    # the same instant at another precision: one value is a prefix of the other. Values
    # are short (TM 16, DT 26 characters); longer ones are only compared whole.
    prefixes = {v[:n] for v in a_set if len(v) <= 32 for n in range(1, len(v) + 1)}
    return any(g in prefixes or any(g[:n] in a_set for n in range(1, min(len(g), 32) + 1))
               for g in g_set)


def _number(text: str) -> object:
    try:
        return float(text)
    except ValueError:
        return text


def _shown(values: list[str], limit: int = 8) -> str:
    """Wire values for a message: each escaped and cut (:mod:`dissectors.wiretext`), a few
    of them, then how many there were."""
    head = "\\".join(shown(v) for v in values[:limit])
    return head if len(values) <= limit else f"{head}\\... ({len(values)} values)"


def wildcard_match(pattern: str, value: str) -> bool:
    """PS3.4 C.2.2.2.4 wild card matching in linear time: ``*`` any run of characters
    (possibly none), ``?`` exactly one.

    Why not a regular expression: ``*A*A*A...*B`` against a long value backtracks
    exponentially in Python's ``re``. Here the pattern is split at ``*`` into pieces; the
    first must match at the start, the last at the end, and each middle piece is taken at
    its leftmost place after the previous one (leftmost is always safe). Each piece is found
    with ``str.find`` when it has no ``?``, else by a bit-parallel scan (shift-and), so the
    work is O(len(value) x pieces / machine word), with no backtracking.
    """
    pieces = pattern.split("*")
    if len(pieces) == 1:
        return len(value) == len(pattern) and _piece_at(pattern, value, 0)
    first, last, middle = pieces[0], pieces[-1], pieces[1:-1]
    if len(first) + len(last) > len(value):
        return False
    if not _piece_at(first, value, 0) or not _piece_at(last, value, len(value) - len(last)):
        return False
    pos, end = len(first), len(value) - len(last)
    for piece in middle:
        if not piece:
            continue
        found = _find(piece, value, pos, end)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


def _piece_at(piece: str, value: str, at: int) -> bool:
    if at < 0 or at + len(piece) > len(value):
        return False
    return all(p == "?" or p == v for p, v in zip(piece, value[at:at + len(piece)], strict=True))


def _find(piece: str, value: str, start: int, end: int) -> int:
    """Leftmost index >= start where ``piece`` (``?`` = any one character) ends by ``end``."""
    if "?" not in piece:
        return value.find(piece, start, end)
    # shift-and: bit i of ``state`` is set when piece[:i+1] matches ending here
    masks: dict[str, int] = {}
    anyc = 0
    for i, c in enumerate(piece):
        if c == "?":
            anyc |= 1 << i
        else:
            masks[c] = masks.get(c, 0) | 1 << i
    goal = 1 << (len(piece) - 1)
    state = 0
    for j in range(start, end):
        state = ((state << 1) | 1) & (masks.get(value[j], 0) | anyc)
        if state & goal:
            return j - len(piece) + 1
    return -1


def _norm(vr: str, value: str) -> str:
    value = value.strip()
    if vr == "PN":
        # Case, and empty trailing components, are not significant to a lenient matcher.
        return "=".join(g.rstrip("^") for g in value.split("=")).rstrip("=").casefold()
    if vr in ("DA", "TM", "DT"):
        return value.replace(".", "").replace(":", "") if vr == "DA" else value.replace(":", "")
    return value


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
