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

from dissectors.dimse.encoding import Encoding, encoding_name, sniff_encoding

from ...uids import MPPS, STORAGE_COMMITMENT_PUSH, encoding, is_deflated, uid_name
from ..collect import CollectionPolicy

__all__ = ["DECODED", "RulesPolicy", "encoding_name", "expected_encoding", "sniff_encoding"]

DECODED = frozenset({MPPS, STORAGE_COMMITMENT_PUSH})
DECODE_CAP = 256 * 1024  # bytes of an MPPS/commitment data set kept for decoding
SNIFF_BYTES = 16  # bytes of a query identifier kept to check its encoding


def expected_encoding(transfer_syntax: str | None) -> Encoding | None:
    """What PS3.5 section 10 says a data set on this transfer syntax looks like on the wire
    (None: unknown, or deflated as a whole: nothing to sniff)."""
    if is_deflated(transfer_syntax):
        return None
    return encoding(transfer_syntax)


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
