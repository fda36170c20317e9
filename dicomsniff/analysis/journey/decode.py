"""Small data sets of the journey, kept whole (bounded) and decoded with pydicom when complete.

Worklist identifiers and items, MPPS N-CREATE/N-SET, Storage Commitment N-ACTION and
N-EVENT-REPORT, IAN N-CREATE, UPS and Print data sets are a few hundred bytes to a few KB; a
:class:`SmallSink` keeps at most ``MAX_SMALL`` bytes of one (a larger one is counted and
reported undecodable, never kept), and :func:`decode` inflates a deflated one through a bounded
inflater (never more than ``MAX_INFLATED`` bytes out) before pydicom reads it. pydicom is
imported here only, the first time such a data set completes.
"""

from __future__ import annotations

import re
import warnings
from io import BytesIO
from typing import Any

from dissectors.wiretext import mark

MAX_SMALL = 256 * 1024  # bytes of one small data set kept for decoding
MAX_INFLATED = 1 << 20  # bytes a deflated small data set may inflate to

_UNSAFE = re.compile(r"[^\x20-\x7e]")


def esc(value: object) -> str:
    """A wire value safe for a terminal, a file or a diagram: anything but printable ASCII as
    \\xNN or \\uNNNN (as ``dissectors.ul.items.wire_str`` does for AE titles), so no value
    can move a cursor, restyle a terminal or reorder text (bidi controls)."""
    if value is None:
        return "?"
    s = str(value)
    if s.isascii() and s.isprintable():
        return s
    return _UNSAFE.sub(lambda m: (f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                                  else f"\\u{ord(m.group()):04x}"), s)



def said(value: object, quoted: bool = False) -> str:
    """:func:`esc`, marked as a wire value quoted in a finding's message: whole in JSON, cut
    to ``dissectors.wiretext.DISPLAY_LIMIT`` characters in text output. ``quoted``: in
    quotes as ``repr`` puts them."""
    text = esc(value)
    return mark(repr(text) if quoted else text)

def inflate_bounded(data: bytes, cap: int = MAX_INFLATED) -> bytes:
    """Raw deflate (PS3.5 A.5) inflated through the shared bounded inflater, to at most the
    smaller of ``cap`` and the run's ``--max-inflate``; ValueError beyond it."""
    from ...inflate import InflateError, inflate, limit

    try:
        return bytes(inflate(data, min(cap, limit())))
    except InflateError as exc:
        raise ValueError(str(exc)) from None


_ENCODINGS: dict[str | None, tuple[bool, bool, bool]] = {}


def encoding(transfer_syntax: str | None) -> tuple[bool, bool, bool]:
    """(implicit VR, little endian, deflated) of a data set on this transfer syntax (PS3.5
    section 10, from :mod:`dicomsniff.uids`); an unknown one is read as explicit VR little
    endian, what every standard syntax but two is."""
    got = _ENCODINGS.get(transfer_syntax)
    if got is None:
        from ...uids import encoding as ts_encoding
        from ...uids import is_deflated

        enc = ts_encoding(transfer_syntax) or (True, True)
        got = (not enc[0], enc[1], is_deflated(transfer_syntax))
        if len(_ENCODINGS) < 4096:
            _ENCODINGS[transfer_syntax] = got
    return got


class SmallSink:
    """A DatasetSink keeping one small data set whole, up to ``MAX_SMALL`` bytes."""

    __slots__ = ("buf", "size", "partial", "closed", "on_close")

    def __init__(self, on_close=None) -> None:
        self.buf: bytearray | None = bytearray()
        self.size = 0
        self.partial = False
        self.closed = False
        self.on_close = on_close

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.buf is not None:
            if len(self.buf) + len(data) > MAX_SMALL:
                self.buf = None  # too large to be what we decode: counted, not kept
            else:
                self.buf += data

    def close(self, partial: bool) -> None:
        self.partial = partial
        self.closed = True
        if self.on_close is not None:
            self.on_close(self)


def decode(data: bytes, transfer_syntax: str | None) -> tuple[Any, str | None]:
    """(pydicom Dataset, None) or (None, why it could not be decoded)."""
    implicit, little, deflated = encoding(transfer_syntax)
    try:
        if deflated:
            data = inflate_bounded(data)
        from pydicom.filereader import read_dataset

        with warnings.catch_warnings():  # a malformed value is the wire's business, not stderr's
            warnings.simplefilter("ignore")
            ds = read_dataset(BytesIO(data), is_implicit_VR=implicit, is_little_endian=little)
            for elem in ds.iterall():  # force every value now, inside the try
                _ = elem.value
        return ds, None
    except Exception as exc:  # a broken data set is a fact about the wire, not a crash
        return None, f"{type(exc).__name__}: {exc}"


def text(ds: Any, keyword: str) -> str | None:
    """A string attribute, stripped, or None when absent or empty."""
    if ds is None:
        return None
    try:
        v = ds.get(keyword)
    except Exception:
        return None
    if v is None or v == "":
        return None
    if isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue":
        v = "\\".join(str(x) for x in v)
    s = esc(str(v).strip())
    return s or None


def items(ds: Any, keyword: str) -> list[Any]:
    """The items of a sequence attribute (empty when absent)."""
    if ds is None:
        return []
    try:
        v = ds.get(keyword)
    except Exception:
        return []
    return list(v) if v else []


def integer(ds: Any, keyword: str) -> int | None:
    try:
        v = ds.get(keyword) if ds is not None else None
        return int(v) if v is not None and v != "" else None
    except (TypeError, ValueError):
        return None
