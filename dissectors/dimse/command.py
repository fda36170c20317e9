"""DIMSE command sets (PS3.7 section 9.3, 10.3, annex E): group 0000, implicit VR little endian.

Decoded with struct, not pydicom: a command set is a dozen elements, and the analyzer decodes one
per message. Elements are checked against the bytes that are there; a broken command set yields
what could be read plus problems.
"""

from __future__ import annotations

import struct

from ..ul.items import wire_str

_ELEM = struct.Struct("<HHI")
_US = struct.Struct("<H")
_UL = struct.Struct("<I")

COMMAND_NAMES = {
    0x0001: "C-STORE-RQ", 0x8001: "C-STORE-RSP",
    0x0010: "C-GET-RQ", 0x8010: "C-GET-RSP",
    0x0020: "C-FIND-RQ", 0x8020: "C-FIND-RSP",
    0x0021: "C-MOVE-RQ", 0x8021: "C-MOVE-RSP",
    0x0030: "C-ECHO-RQ", 0x8030: "C-ECHO-RSP",
    0x0100: "N-EVENT-REPORT-RQ", 0x8100: "N-EVENT-REPORT-RSP",
    0x0110: "N-GET-RQ", 0x8110: "N-GET-RSP",
    0x0120: "N-SET-RQ", 0x8120: "N-SET-RSP",
    0x0130: "N-ACTION-RQ", 0x8130: "N-ACTION-RSP",
    0x0140: "N-CREATE-RQ", 0x8140: "N-CREATE-RSP",
    0x0150: "N-DELETE-RQ", 0x8150: "N-DELETE-RSP",
    0x0FFF: "C-CANCEL-RQ",
}


def service_name(command_field: int) -> str:
    """'C-STORE' for 0x0001 and 0x8001; 'unknown (0x1234)' otherwise."""
    name = COMMAND_NAMES.get(command_field)
    if name is None:
        return f"unknown (0x{command_field:04X})"
    return name.rsplit("-", 1)[0]


def is_response(command_field: int) -> bool:
    return bool(command_field & 0x8000)


# Tag (element number; group is 0000) -> (keyword, kind). Kinds: US, UL, UI, AE/LO/text, AT.
COMMAND_ELEMENTS: dict[int, tuple[str, str]] = {
    0x0000: ("CommandGroupLength", "UL"),
    0x0002: ("AffectedSOPClassUID", "UI"),
    0x0003: ("RequestedSOPClassUID", "UI"),
    0x0100: ("CommandField", "US"),
    0x0110: ("MessageID", "US"),
    0x0120: ("MessageIDBeingRespondedTo", "US"),
    0x0600: ("MoveDestination", "AE"),
    0x0700: ("Priority", "US"),
    0x0800: ("CommandDataSetType", "US"),
    0x0900: ("Status", "US"),
    0x0901: ("OffendingElement", "AT"),
    0x0902: ("ErrorComment", "LO"),
    0x0903: ("ErrorID", "US"),
    0x1000: ("AffectedSOPInstanceUID", "UI"),
    0x1001: ("RequestedSOPInstanceUID", "UI"),
    0x1002: ("EventTypeID", "US"),
    0x1005: ("AttributeIdentifierList", "AT"),
    0x1008: ("ActionTypeID", "US"),
    0x1020: ("NumberOfRemainingSuboperations", "US"),
    0x1021: ("NumberOfCompletedSuboperations", "US"),
    0x1022: ("NumberOfFailedSuboperations", "US"),
    0x1023: ("NumberOfWarningSuboperations", "US"),
    0x1030: ("MoveOriginatorApplicationEntityTitle", "AE"),
    0x1031: ("MoveOriginatorMessageID", "US"),
}

NO_DATASET = 0x0101  # Command Data Set Type value meaning "no data set" (PS3.7 E.1)


def _text(v: bytes) -> str:
    """Command element text: the common clean ASCII case without wire_str's general path."""
    try:
        t = v.decode("ascii").strip("\x00 ")
    except UnicodeDecodeError:
        return wire_str(v)
    if t.isprintable() and "\\" not in t:
        return t
    return wire_str(v)


_CACHE: dict[bytes, tuple[dict[str, object], list[tuple[str, str]]]] = {}
_CACHE_MAX = 512


def decode_command(raw: bytes) -> tuple[dict[str, object], list[tuple[str, str]]]:
    """Decode a command set into {keyword: value}; returns (elements, problems).

    Unknown group-0000 elements are kept as ``"(0000,xxxx)": <hex>`` (bounded); elements of
    other groups are a problem (PS3.7 6.3.1 forbids data elements in a command set).

    Identical command sets recur (the pending C-FIND-RSPs of one query are byte for byte the
    same), so results are cached by their bytes in a small bounded table. The returned
    dict and list may be shared: treat them as read-only.
    """
    hit = _CACHE.get(raw)
    if hit is not None:
        return hit
    result = _decode(raw)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[raw] = result
    return result


def _decode(raw: bytes) -> tuple[dict[str, object], list[tuple[str, str]]]:
    out: dict[str, object] = {}
    problems: list[tuple[str, str]] = []
    pos = 0
    n = len(raw)
    last_elem = -1
    unpack = _ELEM.unpack_from
    elements = _ELEMENTS
    while pos < n:
        if n - pos < 8:
            problems.append(("DIMSE-CMD-TRUNCATED",
                             f"command set ends with {n - pos} stray byte(s)"))
            break
        group, elem, vlen = unpack(raw, pos)
        vstart = pos + 8
        pos = vstart + vlen
        if pos > n:
            problems.append(("DIMSE-CMD-OVERRUN",
                             f"element ({group:04X},{elem:04X}) length {vlen} overruns the "
                             f"command set ({n - vstart} bytes left)"))
            break
        if group:
            problems.append(("DIMSE-CMD-GROUP",
                             f"element ({group:04X},{elem:04X}) is not a command element "
                             "(PS3.7 6.3.1)"))
            continue
        if elem <= last_elem:
            problems.append(("DIMSE-CMD-ORDER",
                             f"command element (0000,{elem:04X}) out of order (PS3.7 6.3.1)"))
        last_elem = elem
        spec = elements.get(elem)
        if spec is None:
            out[f"(0000,{elem:04X})"] = bytes(raw[vstart:min(pos, vstart + 64)]).hex()
            continue
        kw, kind = spec
        if kind == 1:  # US
            if vlen == 2:
                out[kw] = raw[vstart] | raw[vstart + 1] << 8
            elif vlen:
                problems.append(("DIMSE-CMD-VALUE", f"{kw} has length {vlen}, not 2"))
                if vlen >= 2:
                    out[kw] = raw[vstart] | raw[vstart + 1] << 8
        elif kind == 3:  # text: UI, AE, LO
            out[kw] = _text(raw[vstart:pos])
        elif kind == 2:  # UL
            if vlen == 4:
                out[kw] = _UL.unpack_from(raw, vstart)[0]
            else:
                problems.append(("DIMSE-CMD-VALUE", f"{kw} has length {vlen}, not 4"))
        else:  # AT: list of tags
            out[kw] = [f"({raw[i + 1]:02X}{raw[i]:02X},{raw[i + 3]:02X}{raw[i + 2]:02X})"
                       for i in range(vstart, pos - 3, 4)]
    return out, problems


_KINDS = {"US": 1, "UL": 2, "UI": 3, "AE": 3, "LO": 3, "AT": 4}
_ELEMENTS = {e: (kw, _KINDS[k]) for e, (kw, k) in COMMAND_ELEMENTS.items()}
