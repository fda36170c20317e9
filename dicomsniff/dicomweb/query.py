"""QIDO-RS query parameters in words (PS3.18 8.3.4): matching keys and the search controls.

Attribute names come from pydicom's data dictionary (a keyword or an 8-hex-digit tag, dotted
for sequences, PS3.18 8.3.4.1); the kind of matching (single value, wildcard, range, UID list,
universal) follows PS3.4 C.2.2.2 as far as the value shows it.
"""

from __future__ import annotations

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

CONTROLS = ("limit", "offset", "fuzzymatching", "includefield", "emptyvaluematching",
            "multiplevaluematching")
_RANGE_VRS = ("DA", "TM", "DT")


def attribute_name(attr: str) -> tuple[str, bool]:
    """(keyword path, known): ``0020000D`` -> ``StudyInstanceUID``; dotted paths kept dotted."""
    out = []
    known = True
    for part in attr.split(".")[:8]:
        if len(part) == 8 and all(c in "0123456789abcdefABCDEF" for c in part):
            kw = keyword_for_tag(int(part, 16))
            out.append(kw or part.upper())
            known = known and bool(kw)
        else:
            out.append(part)
            known = known and tag_for_keyword(part) is not None
    return ".".join(out), known


def _vr(keyword: str) -> str | None:
    tag = tag_for_keyword(keyword.split(".")[-1])
    if tag is None:
        return None
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def matching_kind(keyword: str, value: str) -> str:
    """single value / wildcard / range / UID list / universal (PS3.4 C.2.2.2)."""
    vr = _vr(keyword)
    if value == "":
        return "universal"
    if vr == "UI" and "," in value:
        return "UID list"
    if vr in _RANGE_VRS and "-" in value:
        return "range"
    if vr not in ("UI", None) and ("*" in value or "?" in value):
        return "wildcard"
    return "single value"


def describe(params: list[tuple[str, str]]) -> list[str]:
    """Each parameter as one phrase, in the order sent."""
    out = []
    for name, value in params[:64]:
        low = name.lower()
        v = value[:200]
        if low == "limit":
            out.append(f"at most {v} results")
        elif low == "offset":
            out.append(f"skipping the first {v} results")
        elif low == "fuzzymatching":
            out.append("fuzzy matching of person names" if v.lower() == "true"
                       else "exact matching of person names (fuzzymatching=false)")
        elif low == "includefield":
            if v.lower() == "all":
                out.append("returning all available attributes")
            else:
                names = [attribute_name(a)[0] for a in v.split(",")[:32] if a]
                out.append("also returning " + ", ".join(names))
        elif low in ("emptyvaluematching", "multiplevaluematching"):
            out.append(f"{name}={v}")
        else:
            kw, known = attribute_name(name)
            kind = matching_kind(kw, value)
            what = "any value" if kind == "universal" else f"{v!r} ({kind})"
            out.append(f"{kw} = {what}" + ("" if known else " [not a DICOM attribute]"))
    return out


def matching_keys(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The parameters that are matching keys (not search controls)."""
    return [(k, v) for k, v in params if k.lower() not in CONTROLS]
