"""STOW-RS in the study journey: instances stored over DICOMweb arrive at the archive too.

An adapter between the DICOMweb session (:mod:`dicomsniff.dicomweb`, reached through
``analysis.http.session``) and :class:`~.core.Journey`. As an instance policy it reads the
header of each ``application/dicom`` part of a STOW-RS request while the part streams past:
the PS3.10 preamble and File Meta Information are skipped (the Transfer Syntax UID read on the
way) and the data set goes through the same :class:`~.headers.HeaderReader` a C-STORE's does,
which stops at the first element past what the journey needs (never the pixel data). When the
STOW-RS response has been read, each instance is filed with what the origin server said of it
(stored, stored with a warning, failed, not in the response) as :meth:`Journey.stored`; the
HTTP connection's end is the end of an association for the journey (``carrier_ended``).

Bounded: one header walk per part in flight, at most ``MAX_HELD`` finished walks waiting for
their response (the oldest given up), the File Meta Information at most ``MAX_META`` bytes.
"""

from __future__ import annotations

import struct
from typing import Any

from .decode import encoding
from .headers import HeaderReader
from .study import Seen

MAX_HELD = 4096  # headers read, waiting for their STOW-RS response
MAX_META = 16 * 1024  # a File Meta Information group longer than this is not a file we read
_PREFIX = 128 + 4 + 12  # preamble, "DICM", the (0002,0000) element
_OUTCOME = {"stored": "Success", "stored with warning": "Warning", "failed": "Failure"}
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from


def _transfer_syntax(meta: bytes) -> str | None:
    """(0002,0010) of an explicit VR little endian File Meta Information group."""
    i = 0
    while i + 8 <= len(meta):
        group, elem = _U16(meta, i)[0], _U16(meta, i + 2)[0]
        vr = meta[i + 4:i + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR", b"OD", b"OF", b"OL", b"OV"):
            if i + 12 > len(meta):
                return None
            n, start = _U32(meta, i + 8)[0], i + 12
        else:
            n, start = _U16(meta, i + 6)[0], i + 8
        if group == 2 and elem == 0x10:
            return meta[start:start + n].rstrip(b"\x00 ").decode("ascii", "replace") or None
        i = start + n
    return None


class Part10Header:
    """An instance sink: a PS3.10 file's bytes in, the journey's header values out."""

    __slots__ = ("buf", "reader", "error", "closed")

    def __init__(self) -> None:
        self.buf = bytearray()  # the preamble and meta group, until the data set starts
        self.reader: HeaderReader | None = None
        self.error: str | None = None
        self.closed = False

    @property
    def values(self) -> dict[str, Any]:
        return self.reader.values if self.reader is not None else {}

    def write(self, data: bytes) -> None:
        r = self.reader
        if r is not None:
            if not r.done:
                r.write(data)
            return
        if self.error is not None:
            return
        self.buf += data
        b = self.buf
        if len(b) < _PREFIX:
            return
        if b[128:132] != b"DICM" or b[132:138] != b"\x02\x00\x00\x00UL":
            self._fail("not a PS3.10 file with a File Meta Information Group Length")
            return
        end = _PREFIX + _U32(b, 140)[0]
        if end - _PREFIX > MAX_META:
            self._fail("File Meta Information longer than we read")
            return
        if len(b) < end:
            return
        ts = _transfer_syntax(bytes(b[_PREFIX:end]))
        implicit, little, deflated = encoding(ts)
        self.reader = HeaderReader(not implicit, little, deflated)
        rest, self.buf = bytes(b[end:]), bytearray()
        if rest:
            self.reader.write(rest)

    def _fail(self, why: str) -> None:
        self.error, self.buf = why, bytearray()

    def close(self, complete: bool, header: Any = None) -> None:
        self.closed = True
        self.buf = bytearray()
        if self.reader is not None:
            self.reader.close(not complete)


class WebStores:
    """Files STOW-RS instances into a journey; ``attach`` it to an engine."""

    def __init__(self, journey: Any) -> None:
        self.journey = journey
        self.heads: dict[tuple[int, int | None], Part10Header] = {}

    def attach(self, host: Any) -> WebStores:
        from ..http import session

        web = session(host)
        web.instance_policies.append(self)
        web.on_transaction.append(self.transaction)
        web.on_connection.append(self.connection)
        return self

    def instance(self, connection: Any, transaction: Any, side: int,
                 part: int | None) -> Part10Header | None:
        if side != 0 or transaction.command != "STOW-RS":
            return None
        if len(self.heads) >= MAX_HELD:  # responses that never came: forget the oldest
            self.heads.pop(next(iter(self.heads)))
        sink = self.heads[(transaction.id, part)] = Part10Header()
        return sink

    def transaction(self, connection: Any, txn: Any) -> None:
        if txn.command != "STOW-RS":
            return
        heads = {k[1]: self.heads.pop(k) for k in [k for k in self.heads if k[0] == txn.id]}
        client = connection.client.rsplit(":", 1)[0]
        seen = Seen(client, f"STOW-RS {connection.server}", connection.id,
                    txn.request_frame, txn.request_time)
        for inst in txn.instances:
            part = inst.get("part")
            h = heads.get(part - 1) if isinstance(part, int) else None
            v: dict[str, Any] = dict(h.values) if h is not None else {}
            if not v.get("study_instance_uid") and inst.get("study"):
                v["study_instance_uid"] = inst["study"]
            self.journey.stored(connection.id, seen, inst.get("sop_instance"),
                                inst.get("sop_class"), _OUTCOME.get(inst.get("outcome")), v)

    def connection(self, connection: Any, transactions: Any, findings: Any) -> None:
        self.journey.carrier_ended(connection.id, connection.end if connection.end is not None
                                   else connection.start)
