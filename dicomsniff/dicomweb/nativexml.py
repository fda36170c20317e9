"""PS3.19 Native DICOM Model XML (``application/dicom+xml``) read into the DICOM JSON shape.

A Store Instances response may be XML (PS3.18 10.5.3, Accept ``application/dicom+xml``);
:func:`parse` turns it into the same dictionaries DICOM JSON gives (``{"00081199": {"vr":
"SQ", "Value": [{...}]}}``), so :func:`.payload.store_response` reads both.

The parser is the standard library's expat, driven as a stream (no tree is built beyond the
result), and made safe the way defusedxml makes it: a document type declaration, an entity
declaration or an external entity reference is refused, never expanded (no billion laughs, no
external fetch). Every dimension is bounded: the caller gives at most ``JSON_CAP`` bytes,
nesting is at most ``MAX_DEPTH`` elements deep, at most ``MAX_ELEMENTS`` elements are read and
a value keeps at most ``MAX_VALUE`` characters. Beyond any bound the document is refused
(:class:`XmlRefused`), and the caller says so in a finding.
"""

from __future__ import annotations

from typing import Any
from xml.parsers import expat

MAX_DEPTH = 64  # NativeDicomModel > DicomAttribute > Item > ...: sequences nest a few deep
MAX_ELEMENTS = 200_000  # a Store Instances response lists at most a few thousand instances
MAX_VALUE = 4096  # characters of one Value (a UID is 64, a Retrieve URL a few hundred)
FEED = 64 * 1024  # bytes handed to expat per call
_NUMERIC = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "IS", "FL", "FD", "DS"})


class XmlRefused(ValueError):
    """The body is not a Native DICOM Model document this reader accepts (why in the text)."""


class _Reader:
    """expat's handlers: a stack of (kind, object) as elements open and close."""

    def __init__(self) -> None:
        self.root: dict[str, Any] | None = None
        self.stack: list[tuple[str, Any]] = []
        self.elements = 0
        self.text: list[str] = []
        self.text_len = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > MAX_ELEMENTS:
            raise XmlRefused(f"more than {MAX_ELEMENTS} elements")
        if len(self.stack) >= MAX_DEPTH:
            raise XmlRefused(f"elements nested more than {MAX_DEPTH} deep")
        local = name.rsplit(" ", 1)[-1]  # namespace-separated by a space (see parse)
        top = self.stack[-1] if self.stack else None
        if top is None:
            if local != "NativeDicomModel":
                raise XmlRefused(f"the root element is {local[:40]!r}, not NativeDicomModel")
            self.root = {}
            self.stack.append(("dataset", self.root))
        elif local == "DicomAttribute" and top[0] == "dataset":
            tag = (attrs.get("tag") or "").upper()
            if len(tag) != 8 or any(c not in "0123456789ABCDEF" for c in tag):
                self.stack.append(("skip", None))  # PS3.19 A.1: tag is 8 hex digits
                return
            el: dict[str, Any] = {"vr": (attrs.get("vr") or "")[:2]}
            if len(top[1]) < MAX_ELEMENTS:
                top[1][tag] = el
            self.stack.append(("attribute", el))
        elif local == "Item" and top[0] == "attribute":
            item: dict[str, Any] = {}
            top[1].setdefault("Value", []).append(item)
            self.stack.append(("dataset", item))
        elif local == "Value" and top[0] == "attribute":
            self.text, self.text_len = [], 0
            self.stack.append(("value", top[1]))
        else:  # PersonName, BulkData, InlineBinary...: not needed to read a response
            self.stack.append(("skip", None))

    def chars(self, data: str) -> None:
        if self.stack and self.stack[-1][0] == "value" and self.text_len < MAX_VALUE:
            piece = data[:MAX_VALUE - self.text_len]
            self.text.append(piece)
            self.text_len += len(piece)

    def end(self, name: str) -> None:
        kind, obj = self.stack.pop()
        if kind != "value":
            return
        text = "".join(self.text).strip()
        self.text = []
        if not text and obj.get("vr") == "SQ":
            return  # Orthanc writes an empty <Value/> after each Item of a sequence
        value: Any = text
        if obj.get("vr") in _NUMERIC and text:
            try:
                value = int(text) if text.lstrip("+-").isdigit() else float(text)
            except ValueError:
                value = text
        obj.setdefault("Value", []).append(value)


def _refuse(what: str):
    def handler(*_args: Any) -> None:
        raise XmlRefused(f"{what} refused: entities are never expanded")
    return handler


def parse(data: bytes) -> dict[str, Any]:
    """The data set of a Native DICOM Model document; :class:`XmlRefused` when it is not one
    (not XML, a DTD or entity, a bound exceeded, another root element)."""
    reader = _Reader()
    p = expat.ParserCreate(namespace_separator=" ")
    p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    p.StartDoctypeDeclHandler = _refuse("a document type declaration")
    p.EntityDeclHandler = _refuse("an entity declaration")
    p.UnparsedEntityDeclHandler = _refuse("an entity declaration")
    p.ExternalEntityRefHandler = _refuse("an external entity reference")
    p.StartElementHandler = reader.start
    p.EndElementHandler = reader.end
    p.CharacterDataHandler = reader.chars
    view = memoryview(data)
    try:
        for i in range(0, len(view), FEED):
            p.Parse(bytes(view[i:i + FEED]), False)
        p.Parse(b"", True)
    except expat.ExpatError as exc:
        raise XmlRefused(f"not well-formed XML: {expat.ErrorString(exc.code)} "
                         f"(line {exc.lineno})") from None
    except (LookupError, UnicodeError, ValueError) as exc:  # an encoding Python cannot read
        if isinstance(exc, XmlRefused):
            raise
        raise XmlRefused(f"unreadable: {type(exc).__name__}: {str(exc)[:80]}") from None
    if reader.root is None:
        raise XmlRefused("no NativeDicomModel element")
    return reader.root
