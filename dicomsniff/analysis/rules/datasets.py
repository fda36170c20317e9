"""The few data sets the rules read: small ones, on the presentation contexts that need them.

Data set bytes are normally counted, never copied (DESIGN.md). Three rules need to look
inside: whether an MPPS was set to COMPLETED or DISCONTINUED, which instances a storage
commitment report lists as failed, and whether a data set is encoded in the transfer syntax
its context accepted. MPPS and Storage Commitment data sets are a few hundred bytes, so their
contexts are collected (:class:`RulesPolicy`, a collection policy the engine is given like any
other, see :mod:`dicomsniff.analysis.collect`) and decoded with pydicom, imported only
when such a data set shows up. Query identifiers (C-FIND/C-MOVE/C-GET requests) are collected
too, but only their first bytes are kept, to check the encoding. Image data sets are never
collected: the upper-layer parser counts them on the hot path without a look, so their
encoding is not checked (that would need a first-bytes peek in dissectors/ul/stream.py).
"""

from __future__ import annotations

from typing import Any

from ...uids import uid_name
from ..collect import CollectionPolicy

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
    """Receives one data set's bytes (a DatasetSink)."""

    __slots__ = ("buf", "cap", "info", "store", "key", "decode")

    def __init__(self, cap: int, info: DatasetInfo, store: dict, key: tuple[int, int],
                 decode: bool) -> None:
        self.buf = bytearray()
        self.cap, self.info, self.store, self.key = cap, info, store, key
        self.decode = decode

    def write(self, data: bytes) -> None:
        room = self.cap - len(self.buf)
        if room > 0:
            self.buf += data[:room]

    def close(self, partial: bool) -> None:
        info = self.info
        info.partial = partial
        info.encoding = sniff_encoding(bytes(self.buf[:8]))
        if self.decode and not partial and len(self.buf) < self.cap:
            enc = info.encoding or expected_encoding(info.transfer_syntax) or (False, True)
            info.fields = decode_fields(bytes(self.buf), enc)
        self.store[self.key] = info


def watched(a: Any, side: int) -> dict[int, tuple[bool, str | None]]:
    """The contexts of ``a`` whose data sets ``side`` sends that the rules read: context id ->
    (decode it, its transfer syntax). Nothing before the negotiation is answered, nor on a
    rejected association."""
    if a.accept_frame is None or a.outcome == "rejected":
        return {}
    out: dict[int, tuple[bool, str | None]] = {}
    for c in a.contexts.values():
        if not c.accepted:
            continue
        w = wants(c.abstract_syntax)
        if w is None:
            continue
        decode, both = w
        if side == 0 or both:
            out[c.id] = (decode, c.transfer_syntax)
    return out


class RulesPolicy(CollectionPolicy):
    """The data sets the rules read (see the module doc), kept per association in ``store``
    (association id -> {(frame, command field): DatasetInfo})."""

    def __init__(self, store: Any) -> None:
        self.store = store
        # (association id, side) -> watched(), as of the last contexts() call (the negotiation)
        self._watched: dict[tuple[int, int], dict] = {}

    def contexts(self, association: Any, side: int) -> set[int]:
        w = watched(association, side)
        if w:
            self._watched[(association.id, side)] = w
        return set(w)

    def forget(self, association_id: int) -> None:
        """The association ended (or was dropped): what it collected is the caller's now."""
        self._watched.pop((association_id, 0), None)
        self._watched.pop((association_id, 1), None)

    def dataset(self, association: Any, side: int, message: Any) -> _Sink | None:
        w = self._watched.get((association.id, side), {}).get(message.context_id)
        if w is None:
            return None
        decode, ts = w
        store = self.store.get(association.id)
        if store is None:
            store = {}
            self.store.put(association.id, store)
        return _Sink(DECODE_CAP if decode else SNIFF_BYTES,
                     DatasetInfo(message.context_id, ts), store,
                     (message.frame, message.command_field), decode)


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
