"""The few data sets the rules read: small ones, on the presentation contexts that need them.

Data set bytes are normally counted, never copied (DESIGN.md). Three rules need to look
inside: whether an MPPS was set to COMPLETED or DISCONTINUED, which instances a storage
commitment report lists as failed, and whether a data set is encoded in the transfer syntax
its context accepted. MPPS and Storage Commitment data sets are a few hundred bytes, so their
contexts are collected (``ULStream.collect_contexts``) and decoded with pydicom, imported only
when such a data set shows up. Query identifiers (C-FIND/C-MOVE/C-GET requests) are collected
too, but only their first bytes are kept, to check the encoding. Image data sets are never
collected: the upper-layer parser counts them on the hot path without a look, so their
encoding is not checked (that would need a first-bytes peek in dissectors/ul/stream.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ...uids import uid_name

MPPS = "1.2.840.10008.3.1.2.3.3"
COMMITMENT = "1.2.840.10008.1.20.1"
DECODED = frozenset({MPPS, COMMITMENT})
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.1.99.1"}
DECODE_CAP = 256 * 1024  # bytes of an MPPS/commitment data set kept for decoding
SNIFF_BYTES = 16  # bytes of a query identifier kept to check its encoding

_VRS = frozenset(v.encode() for v in (
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    "UN UR US UT UV").split())

Encoding = tuple[bool, bool]  # (explicit VR, little endian)


def expected_encoding(transfer_syntax: str | None) -> Encoding | None:
    """What PS3.5 section 10 says a data set on this transfer syntax looks like."""
    if not transfer_syntax or transfer_syntax in DEFLATED:
        return None  # unknown, or compressed as a whole: nothing to sniff
    if transfer_syntax == IMPLICIT_LE:
        return (False, True)
    if transfer_syntax == EXPLICIT_BE:
        return (True, False)
    return (True, True)  # every other standard transfer syntax is explicit VR little endian


def sniff_encoding(head: bytes) -> Encoding | None:
    """The encoding of a data set from its first element header, or None if unclear.

    Byte order: data set groups are small (0008, 0010, 0040...), so one of the two group bytes
    is zero. VR: explicit encodings carry two upper-case letters after the tag, where an
    implicit one has the low bytes of a 32-bit length.
    """
    if len(head) < 8:
        return None
    if head[1] == 0 and head[0] != 0:
        little = True
    elif head[0] == 0 and head[1] != 0:
        little = False
    else:
        return None
    return (bytes(head[4:6]) in _VRS, little)


def encoding_name(enc: Encoding) -> str:
    return f"{'explicit' if enc[0] else 'implicit'} VR {'little' if enc[1] else 'big'} endian"


def wants(abstract_syntax: str | None) -> tuple[bool, bool] | None:
    """(decode it, both directions) for a context worth collecting, else None."""
    if abstract_syntax in DECODED:
        return (True, True)
    name = (uid_name(abstract_syntax) or "").upper()
    if name.endswith(("- FIND", "- MOVE", "- GET")) or "WORKLIST" in name:
        return (False, False)  # the requestor's identifiers only
    return None


class DatasetInfo:
    """What the rules learned from one collected data set."""

    __slots__ = ("context_id", "transfer_syntax", "encoding", "fields", "partial")

    def __init__(self, context_id: int, transfer_syntax: str | None) -> None:
        self.context_id, self.transfer_syntax = context_id, transfer_syntax
        self.encoding: Encoding | None = None  # sniffed from its first bytes
        self.fields: dict[str, Any] = {}  # decoded values (MPPS, commitment)
        self.partial = False


class _Sink:
    """Receives one data set's bytes (a DatasetSink); tees to an export's sink if there is one."""

    __slots__ = ("buf", "cap", "info", "store", "key", "decode", "other")

    def __init__(self, cap: int, info: DatasetInfo, store: dict, key: tuple[int, int],
                 decode: bool, other: Any) -> None:
        self.buf = bytearray()
        self.cap, self.info, self.store, self.key = cap, info, store, key
        self.decode, self.other = decode, other

    def write(self, data: bytes) -> None:
        room = self.cap - len(self.buf)
        if room > 0:
            self.buf += data[:room]
        if self.other is not None:
            self.other.write(data)

    def close(self, partial: bool) -> None:
        info = self.info
        info.partial = partial
        info.encoding = sniff_encoding(bytes(self.buf[:8]))
        if self.decode and not partial and len(self.buf) < self.cap:
            enc = info.encoding or expected_encoding(info.transfer_syntax) or (False, True)
            info.fields = decode_fields(bytes(self.buf), enc)
        self.store[self.key] = info
        if self.other is not None:
            self.other.close(partial)


def _want(store: dict, watched: dict[int, tuple[bool, str | None]],
          prev: Callable | None, m: Any) -> Any:
    other = prev(m) if prev is not None else None
    w = watched.get(m.context_id)
    if w is None:
        return other
    decode, ts = w
    return _Sink(DECODE_CAP if decode else SNIFF_BYTES, DatasetInfo(m.context_id, ts), store,
                 (m.frame, m.command_field), decode, other)


def watch(conn: Any, store: dict) -> None:
    """Collect the data sets of ``conn``'s association that the rules read (see module doc).

    Called when the negotiation is answered, before any P-DATA: sets the upper-layer parsers'
    ``collect_contexts`` and wraps the message assemblers' ``want_dataset``, keeping whatever
    an export installed.
    """
    a = conn.tracker.assoc
    watched: tuple[dict[int, tuple[bool, str | None]], dict[int, tuple[bool, str | None]]] = (
        {}, {})
    for c in a.contexts.values():
        if not c.accepted:
            continue
        w = wants(c.abstract_syntax)
        if w is None:
            continue
        decode, both = w
        watched[0][c.id] = (decode, c.transfer_syntax)
        if both:
            watched[1][c.id] = (decode, c.transfer_syntax)
    for side in (0, 1):
        if not watched[side]:
            continue
        ul = conn.ul[side]
        ul.collect_contexts = frozenset(ul.collect_contexts) | watched[side].keys()
        asm = conn.tracker.asm[side]
        asm.want_dataset = functools.partial(_want, store, watched[side], asm.want_dataset)


def decode_fields(data: bytes, enc: Encoding) -> dict[str, Any]:
    """The values the workflow rules need, decoded with pydicom (imported here, lazily)."""
    from io import BytesIO

    try:
        from pydicom.filereader import read_dataset

        ds = read_dataset(BytesIO(data), is_implicit_VR=not enc[0], is_little_endian=enc[1])
        out: dict[str, Any] = {}
        status = ds.get((0x0040, 0x0252))
        if status is not None and status.value:
            out["pps_status"] = str(status.value).strip()
        tuid = ds.get((0x0008, 0x1195))
        if tuid is not None and tuid.value:
            out["transaction_uid"] = str(tuid.value)
        refs = ds.get((0x0008, 0x1199))
        if refs is not None:
            out["referenced"] = len(refs.value or [])
        failed = ds.get((0x0008, 0x1198))
        if failed is not None:
            items = []
            for item in failed.value or []:
                uid = item.get((0x0008, 0x1155))
                reason = item.get((0x0008, 0x1197))
                items.append((str(uid.value) if uid is not None else "?",
                              int(reason.value) if reason is not None and reason.value is not None
                              else None))
            out["failed"] = items
        return out
    except Exception as exc:  # a broken data set must not stop the analysis
        return {"error": f"{type(exc).__name__}: {exc}"}
