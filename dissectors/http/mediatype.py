"""Media types and Accept lists (RFC 9110 sections 8.3.1 and 12.5.1), bounded.

Hand-written because the DICOMweb parameters (``type``, ``boundary``, ``transfer-syntax``)
must be read from headers the wire controls: the scanner is linear, splits only outside
quoted strings, and keeps at most ``MAX_ITEMS`` entries, so a hostile header cannot make it
slow or big. (``email.message`` parses the same syntax but is neither bounded nor quick.)
"""

from __future__ import annotations

MAX_ITEMS = 64  # media ranges in one Accept, parameters in one media type


def _split(value: str, sep: str, limit: int) -> list[str]:
    """Split at ``sep`` outside double quotes; at most ``limit`` pieces are kept."""
    out: list[str] = []
    start = 0
    quoted = False
    i = 0
    n = len(value)
    while i < n and len(out) < limit:
        c = value[i]
        if c == '"':
            quoted = not quoted
        elif c == "\\" and quoted:
            i += 1
        elif c == sep and not quoted:
            out.append(value[start:i])
            start = i + 1
        i += 1
    if len(out) < limit:
        out.append(value[start:])
    return out


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        v = v[1:-1]
        if "\\" in v:
            out = []
            it = iter(v)
            for c in it:
                out.append(next(it, "") if c == "\\" else c)
            v = "".join(out)
    return v


def parse_media_type(value: str | None) -> tuple[str, dict[str, str]]:
    """``'multipart/related; type="application/dicom"; boundary=x'`` ->
    ``('multipart/related', {'type': 'application/dicom', 'boundary': 'x'})``.

    The type and parameter names are lower-cased (they are case-insensitive); values are
    kept as sent. An absent or empty header gives ``('', {})``.
    """
    if not value:
        return "", {}
    pieces = _split(value, ";", MAX_ITEMS + 1)
    mtype = pieces[0].strip().lower()
    params: dict[str, str] = {}
    for p in pieces[1:]:
        name, eq, v = p.partition("=")
        name = name.strip().lower()
        if eq and name and name not in params:
            params[name] = _unquote(v)
    return mtype, params


def parse_accept(value: str | None) -> list[tuple[str, dict[str, str]]]:
    """An Accept header as a list of media ranges with their parameters (``q`` included)."""
    if not value:
        return []
    return [parse_media_type(v) for v in _split(value, ",", MAX_ITEMS) if v.strip()]
