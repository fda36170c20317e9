"""Command sets and data sets as dcmdump-like trees (rich ``Text`` lines, wire text escaped).

One line per element: ``(gggg,eeee) VR [value]  # Keyword``, sequence items indented. Key
attributes are marked with ``*`` in the first column (and bold on a terminal), so they can be
found in plain output too. Pixel data is never decoded: its size is shown instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text

from dissectors.dimse.command import COMMAND_ELEMENTS, COMMAND_NAMES
from dissectors.dimse.status import failure_reason, format_status
from dissectors.wiretext import escape, shorten

from ..uids import uid_name

KEY_STYLE = "bold yellow"
COMMENT_STYLE = "dim"
COLUMN = 52  # where the "# Keyword" comment starts, as dcmdump aligns it
MAX_VALUE = 96  # characters of a value shown; the rest is cut with "..."
BULK_TAGS = {0x7FE00010: "pixel data", 0x7FE00008: "float pixel data",
             0x7FE00009: "double float pixel data", 0x54001010: "waveform data"}
_PRIORITY = {0: "MEDIUM", 1: "HIGH", 2: "LOW"}
_BY_KEYWORD = {kw: (elem, vr) for elem, (kw, vr) in COMMAND_ELEMENTS.items()}


def safe(text: str) -> str:
    """A decoded wire value as :func:`dissectors.wiretext.escape` shows it: controls, bidi
    overrides, line separators and the backslash escaped."""
    return escape(text)


def _cut(text: str) -> str:
    return shorten(text, MAX_VALUE)


def line(depth: int, tag: str, vr: str, value: str, comment: str, key: bool = False) -> Text:
    """One tree line; ``key`` marks it as one of the attributes the workflow depends on."""
    head = f"{'*' if key else ' '} {'  ' * depth}{tag} {vr} {value}"
    t = Text(head.ljust(COLUMN) + " ", style=KEY_STYLE if key else "")
    t.append(f"# {comment}", style=COMMENT_STYLE)
    return t


# -- command sets ---------------------------------------------------------------------------

def command_lines(cmd: dict[str, object], command: str | None = None,
                  sop_class: str | None = None, uid_map: Any = None) -> list[Text]:
    """The decoded command set (group 0000), with what each coded value means."""
    out = []
    for kw, value in cmd.items():
        spec = _BY_KEYWORD.get(kw)
        if spec is None:  # unknown element kept as "(0000,xxxx)": hex
            out.append(line(0, kw, "??", f"[{safe(str(value))}]", "unknown command element"))
            continue
        elem, vr = spec
        note = kw
        if vr == "UI" and isinstance(value, str):
            if uid_map is not None and kw.endswith("InstanceUID"):
                value = uid_map(value)
            name = uid_name(value)
            note += f" = {name}" if name else ""
            shown = f"[{safe(value)}]"
        elif kw == "CommandField" and isinstance(value, int):
            shown = f"{value:#06x}"
            note += f" = {COMMAND_NAMES.get(value, 'unknown')}"
        elif kw == "Status" and isinstance(value, int):
            shown = f"{value:#06x}"
            note += f" = {format_status(value, command, sop_class)}"
        elif kw == "CommandDataSetType" and isinstance(value, int):
            shown = f"{value:#06x}"
            note += " = no data set" if value == 0x0101 else " = a data set follows"
        elif kw == "Priority" and isinstance(value, int):
            shown = str(value)
            note += f" = {_PRIORITY.get(value, 'unknown')}"
        elif isinstance(value, list):
            shown = "\\".join(safe(str(v)) for v in value)
        elif isinstance(value, int):
            shown = str(value)
        else:
            shown = f"[{safe(str(value))}]"
        out.append(line(0, f"(0000,{elem:04x})", vr if vr != "AE" else "AE", _cut(shown), note))
    return out


# -- data sets ------------------------------------------------------------------------------

def dataset_lines(ds: Any, keys: Iterable[str] = (), depth: int = 0) -> list[Text]:
    """A pydicom Dataset as tree lines; elements whose keyword is in ``keys`` are marked."""
    keyset = frozenset(keys)
    out: list[Text] = []
    for elem in _elements(ds):
        out.extend(_element_lines(ds, elem, keyset, depth))
    return out


def _elements(ds: Any) -> list[Any]:
    elems = []
    for tag in sorted(ds.keys()):
        try:
            elems.append(ds[tag])
        except Exception as exc:  # noqa: BLE001 - a broken value must not hide the rest
            elems.append(_Broken(tag, exc))
    return elems


class _Broken:
    """An element pydicom could not convert: shown with the reason instead of a value."""

    def __init__(self, tag: Any, exc: Exception) -> None:
        self.tag, self.VR, self.keyword = tag, "??", ""
        self.value = f"(cannot decode: {exc})"


def _tag(tag: Any) -> str:
    return f"({tag >> 16:04x},{tag & 0xFFFF:04x})"


def _keyword(elem: Any) -> str:
    if getattr(elem, "keyword", ""):
        return elem.keyword
    if isinstance(elem, _Broken):
        return "undecodable element"
    if elem.tag.is_private:
        return f"private: {getattr(elem, 'private_creator', None) or 'unknown creator'}"
    return "unknown tag"


def _element_lines(ds: Any, elem: Any, keys: frozenset[str], depth: int) -> list[Text]:
    tag, vr, kw = int(elem.tag), str(elem.VR), _keyword(elem)
    key = kw in keys
    if vr == "SQ":
        items = list(elem.value or [])
        out = [line(depth, _tag(tag), "SQ", f"(Sequence, {len(items)} item"
                    f"{'' if len(items) == 1 else 's'})", kw, key)]
        for n, item in enumerate(items, 1):
            out.append(line(depth + 1, "(fffe,e000)", "na", f"(Item #{n})", "Item", key))
            out.extend(dataset_lines(item, keys, depth + 2))
        return out
    if tag in BULK_TAGS:
        return [line(depth, _tag(tag), vr, _bulk(elem, BULK_TAGS[tag]), kw, key)]
    return [line(depth, _tag(tag), vr, _cut(_value(elem)), _comment(elem, kw), key)]


def _bulk(elem: Any, what: str) -> str:
    value = elem.value
    if value is None:
        return f"({what}, not read)"
    size = len(value)
    if getattr(elem, "is_undefined_length", False):
        return f"(encapsulated {what}, {size} bytes, not decoded)"
    return f"({what}, {size} bytes, not decoded)"


def _value(elem: Any) -> str:
    value = elem.value
    if isinstance(elem, _Broken):
        return safe(value)
    if value is None or value == "" or value == b"" or (
            hasattr(value, "__len__") and not isinstance(value, (str, bytes)) and not len(value)):
        return "(no value available)"
    if isinstance(value, (bytes, bytearray)):
        head = "\\".join(f"{b:02x}" for b in value[:16])
        return head + ("\\..." if len(value) > 16 else "") + f" ({len(value)} bytes)"
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "[" + "\\".join(safe(str(v)) for v in value) + "]"
    return f"[{safe(str(value))}]"


def _comment(elem: Any, kw: str) -> str:
    if kw == "FailureReason" and isinstance(elem.value, int):
        return f"{kw} = {failure_reason(elem.value)}"
    if str(elem.VR) == "UI" and isinstance(elem.value, str):
        name = uid_name(elem.value)
        if name:
            return f"{kw} = {name}"
    return kw
