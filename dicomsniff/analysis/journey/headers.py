"""The attributes of a C-STORE data set that the journey needs, read as its bytes stream past.

An image is mostly Pixel Data (7FE0,0010), and everything the journey asks of it (Patient ID and
Name, Study/Series/SOP Instance UID, Accession Number, Modality, Referenced Performed Procedure
Step Sequence, Performed Procedure Step ID, Request Attributes Sequence) sits in groups 0008 to
0040, before it. :class:`HeaderReader` is a data set sink (see
``dissectors.dimse.assembler.DatasetSink``) that walks element headers as the fragments arrive,
keeps only the values it wants (each bounded), and says ``done`` at the first top-level element
past (0040,0275): the caller then stops copying bytes for the rest of the message. Nothing is
accumulated but the element being read, so a 2 GB image costs what its header costs.

Hand-written rather than pydicom because it runs for every C-STORE on the analysis path:
pydicom's ``read_dataset`` costs ~0.3 ms per header (plus 0.2 s to import), more than the
whole analysis of a 512 KB image; this walk is a few struct reads per element. Bounded in
every way: at most ``MAX_HEADER`` bytes walked, ``MAX_VALUE`` bytes per value, ``MAX_DEPTH``
nested sequences; a deflated data set is inflated through a bounded inflater (never more than
``MAX_HEADER`` bytes out). A malformed header ends the walk with ``error`` set; the analysis
goes on.
"""

from __future__ import annotations

import struct
import zlib

from .decode import esc

MAX_HEADER = 256 * 1024  # bytes of a data set walked before giving up on finding the end of it
MAX_VALUE = 1024  # a wanted value longer than this is not kept
MAX_DEPTH = 8  # nested sequences followed

# Top-level wanted elements, (group << 16 | element) -> key in ``values``.
TOP = {
    0x00080005: "charset", 0x00080016: "sop_class", 0x00080018: "sop_instance",
    0x00080050: "accession_number", 0x00080060: "modality", 0x00100010: "patient_name",
    0x00100020: "patient_id", 0x0020000D: "study_instance_uid",
    0x0020000E: "series_instance_uid", 0x00400253: "pps_id",
}
SEQ_PPS = 0x00081111  # Referenced Performed Procedure Step Sequence
SEQ_REQUEST = 0x00400275  # Request Attributes Sequence
IN_PPS = {0x00081155: "pps_instance"}
IN_REQUEST = {0x00401001: "requested_procedure_id", 0x00400009: "sps_id",
              0x00080050: "request_accession_number", 0x0020000D: "request_study_instance_uid"}
STOP_AFTER = SEQ_REQUEST  # the first top-level tag beyond this ends the walk
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
# VRs with a 4-byte length in explicit VR (PS3.5 7.1.2), as the two bytes read big endian.
_LONG_VRS = frozenset(int.from_bytes(v, "big") for v in (
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"))
_SQ = int.from_bytes(b"SQ", "big")
# (element << 16 | group, VR, 16-bit length): the tag as the little-endian word it is
_WORD_LE = struct.Struct("<IHH").unpack_from
_TOP_WORDS = {(t & 0xFFFF) << 16 | t >> 16: k for t, k in TOP.items()}  # TOP keyed by that word
# Every other VR of PS3.5 Table 6.2-1 (2-byte length in explicit VR), as little-endian ints.
_SHORT_LE = frozenset(int.from_bytes(v.encode(), "little") for v in (
    "AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US").split())
_LE = (struct.Struct("<H").unpack_from, struct.Struct("<I").unpack_from,
       struct.Struct("<HH").unpack_from)
_BE = (struct.Struct(">H").unpack_from, struct.Struct(">I").unpack_from,
       struct.Struct(">HH").unpack_from)


class _Level:
    """An open sequence or item: where it ends (absolute offset, None: delimited) and what it
    holds (the wanted-element table for items of a wanted sequence, else None)."""

    __slots__ = ("end", "table", "is_item", "seq")

    def __init__(self, end: int | None, table: dict[int, str] | None, is_item: bool,
                 seq: int) -> None:
        self.end, self.table, self.is_item, self.seq = end, table, is_item, seq


class HeaderReader:
    """A DatasetSink that keeps the journey's attributes and says when it has them all."""

    __slots__ = ("buf", "offset", "explicit", "little", "stack", "values", "done", "error",
                 "skip", "inflater", "walked", "on_done", "closed", "partial", "_u16", "_u32",
                 "_tag")

    def __init__(self, explicit: bool = True, little: bool = True, deflated: bool = False,
                 on_done=None) -> None:
        self.buf = bytearray()  # bytes not yet walked (at most one element's header and value)
        self.offset = 0  # absolute offset of buf[0] in the data set
        self.explicit, self.little = explicit, little
        self.stack: list[_Level] = []
        self.values: dict[str, str | list[str]] = {}
        self.done = False  # every wanted attribute is behind us (or the walk gave up)
        self.error: str | None = None
        self.skip = 0  # bytes of an unwanted value still to pass over
        self.inflater = zlib.decompressobj(-15) if deflated else None
        self.walked = 0  # bytes walked (the cap applies to this)
        self.on_done = on_done  # called once when done becomes True
        self.closed = False
        self.partial = False
        self._u16, self._u32, self._tag = _LE if little else _BE

    # -- DatasetSink ------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.done:
            return
        if self.inflater is None:
            self._feed(data)
            return
        while data and not self.done:  # inflate in bounded steps; the walk's cap ends it
            try:
                out = self.inflater.decompress(data, 1 << 16)
            except zlib.error as exc:
                self._finish(f"deflated data set does not inflate: {exc}")
                return
            if not out:
                return
            self._feed(out)
            data = self.inflater.unconsumed_tail if self.inflater is not None else b""

    def _feed(self, data: bytes) -> None:
        n = len(data)
        if self.skip:
            if n <= self.skip:
                self.skip -= n
                self.offset += n
                self.walked += n
                self._cap()
                return
            data = data[self.skip:]
            self.offset += self.skip
            self.walked += self.skip
            self.skip = 0
        self.buf += data
        self._walk()
        self._cap()

    def close(self, partial: bool) -> None:
        self.closed = True
        self.partial = partial
        if not self.done:
            if self.buf and self.error is None and not self.stack:
                self.error = "data set ends inside an element"
            self._finish(self.error)

    # -- the walk ---------------------------------------------------------------------------
    def _cap(self) -> None:
        if not self.done and self.walked + len(self.buf) >= MAX_HEADER:
            self._finish(f"no element past (0040,0275) in the first {MAX_HEADER} bytes")

    def _finish(self, error: str | None = None) -> None:
        if self.done:
            return
        self.done = True
        if error and self.error is None:
            self.error = error
        self.buf = bytearray()
        self.inflater = None
        if self.on_done is not None:
            self.on_done(self)

    def _walk(self) -> None:
        buf, pos, n = self.buf, 0, len(self.buf)
        stack = self.stack
        explicit = self.explicit
        u16, u32, tagof = self._u16, self._u32, self._tag
        fast = explicit and self.little
        word_le, short, top_words = _WORD_LE, _SHORT_LE, _TOP_WORDS.get
        while True:
            if fast and not stack:
                # The common case, top-level elements of groups below 0040 with a short VR in
                # explicit VR little endian: one unpack each (the tag as the little-endian
                # word it is on the wire, VR, length), the tag looked up as that word, an
                # unwanted value stepped over without a bound check (a step past the bytes
                # here is what is left to skip). Group 0040 and beyond (the end of the walk),
                # long VRs, sequences and anything unusual go the general way below.
                while n - pos >= 8:
                    word, vr, length = word_le(buf, pos)
                    if word & 0xFFFF >= 0x0040 or vr not in short:
                        break
                    key = top_words(word)
                    if key is None or length > MAX_VALUE:
                        pos += 8 + length
                        continue
                    end = pos + 8 + length
                    if end > n:
                        break
                    self._keep(key, bytes(buf[pos + 8:end]), stack)
                    pos = end
                if pos > n:
                    self.skip = pos - n
                    pos = n
                    break
                if n - pos < 8:
                    break
            # Close defined-length levels that end here.
            while stack and stack[-1].end is not None and self.offset + pos >= stack[-1].end:
                stack.pop()
            if n - pos < 8:
                break
            group, elem = tagof(buf, pos)
            tag = group << 16 | elem
            if group == 0xFFFE:  # item and delimiters: tag + 4-byte length in every syntax
                length = u32(buf, pos + 4)[0]
                pos += 8
                if tag == ITEM:
                    top = stack[-1] if stack else None
                    if top is None or top.is_item:
                        self._finish("an item outside a sequence")
                        return
                    if len(stack) >= MAX_DEPTH:
                        self._finish(f"sequences nested deeper than {MAX_DEPTH}")
                        return
                    end = None if length == UNDEFINED else self.offset + pos + length
                    stack.append(_Level(end, top.table, True, top.seq))
                elif tag == ITEM_END:
                    if stack and stack[-1].is_item and stack[-1].end is None:
                        stack.pop()
                elif tag == SEQ_END:
                    if stack and stack[-1].is_item:
                        stack.pop()  # a delimited item left open: be lenient
                    if stack and not stack[-1].is_item and stack[-1].end is None:
                        stack.pop()
                continue
            if not stack and tag > STOP_AFTER:
                self._finish()
                return
            if explicit:
                vr = buf[pos + 4] << 8 | buf[pos + 5]
                if vr in _LONG_VRS:
                    if n - pos < 12:
                        break
                    length = u32(buf, pos + 8)[0]
                    hdr = 12
                else:
                    if not (65 <= buf[pos + 4] <= 90 and 65 <= buf[pos + 5] <= 90):
                        self._finish(f"no VR where one belongs at ({group:04X},{elem:04X})")
                        return
                    length = u16(buf, pos + 6)[0]
                    hdr = 8
            else:
                vr = _SQ if tag == SEQ_PPS or tag == SEQ_REQUEST else 0
                length = u32(buf, pos + 4)[0]
                hdr = 8
            if vr == _SQ or length == UNDEFINED:
                if len(stack) >= MAX_DEPTH:
                    self._finish(f"sequences nested deeper than {MAX_DEPTH}")
                    return
                if not stack and tag == SEQ_PPS:
                    table: dict[int, str] | None = IN_PPS
                elif not stack and tag == SEQ_REQUEST:
                    table = IN_REQUEST
                else:
                    table = None
                pos += hdr
                if length == UNDEFINED:
                    stack.append(_Level(None, table, False, tag))
                elif table is None:  # an unwanted sequence of known length: pass over it
                    left = n - pos
                    if length > left:
                        self.skip = length - left
                        pos = n
                        break
                    pos += length
                else:
                    stack.append(_Level(self.offset + pos + length, table, False, tag))
                continue
            if length & 1 and length != UNDEFINED and not explicit and length > MAX_HEADER:
                self._finish(f"implausible length {length} at ({group:04X},{elem:04X})")
                return
            table = TOP if not stack else stack[-1].table if stack[-1].is_item else None
            key = table.get(tag) if table is not None else None
            if key is None or length > MAX_VALUE:
                pos += hdr
                left = n - pos
                if length > left:
                    self.skip = length - left
                    pos = n
                    break
                pos += length
                continue
            if n - pos < hdr + length:
                break  # wait for the rest of this value
            raw = bytes(buf[pos + hdr:pos + hdr + length])
            pos += hdr + length
            self._keep(key, raw, stack)
        consumed = pos
        self.offset += consumed
        self.walked += consumed
        del buf[:consumed]

    def _keep(self, key: str, raw: bytes, stack: list[_Level]) -> None:
        if raw.isascii():
            value = raw.decode("ascii").rstrip("\x00 ").strip()
            if not value.isprintable():
                value = esc(value)
        else:
            charset = self.values.get("charset")
            enc = "utf-8" if isinstance(charset, str) and "192" in charset else "latin-1"
            value = esc(raw.decode(enc, "replace").rstrip("\x00 ").strip())
        if key == "pps_instance":
            refs = self.values.setdefault("pps_instances", [])
            if isinstance(refs, list) and len(refs) < 16:
                refs.append(value)
            return
        if stack and key in self.values:
            return  # the first item of the Request Attributes Sequence speaks for the image
        self.values[key] = value


_VRS = frozenset(v.encode() for v in (
    "AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US "
    "OB OD OF OL OV OW SQ UC UN UR UT SV UV").split())


def sniff_encoding(head: bytes) -> tuple[bool, bool] | None:
    """(explicit VR, little endian) of a data set told from its first element, or None.

    For an association picked up mid-stream the negotiation, hence the transfer syntax, was
    not captured. The first element's header tells the three uncompressed encodings apart
    (PS3.5 7.1): explicit VR puts two upper-case VR letters at bytes 4-5, little or big endian
    shows in the group (a data set's first group is small and even: 0x0008 in practice);
    implicit VR little endian has a 32-bit length there instead, which for a header element
    is never two letters of a VR. A deflated data set (raw deflate) cannot be told: None.
    """
    if len(head) < 8:
        return None
    le, be = int.from_bytes(head[0:2], "little"), int.from_bytes(head[0:2], "big")
    vr = bytes(head[4:6])
    if vr in _VRS:
        if 0x0002 <= le <= 0x00FF and le % 2 == 0:
            return True, True
        if 0x0002 <= be <= 0x00FF and be % 2 == 0:
            return True, False
        return None
    if 0x0002 <= le <= 0x00FF and le % 2 == 0 and int.from_bytes(head[4:8], "little") < 0x10000:
        return False, True
    return None


class SniffingReader:
    """A :class:`HeaderReader` for a data set whose transfer syntax is unknown (the capture
    began after the negotiation): the encoding is told from the first 8 bytes
    (:func:`sniff_encoding`), never guessed; when it cannot be told, ``error`` says so."""

    __slots__ = ("head", "reader", "error", "done", "partial", "closed")

    sniffed = True

    def __init__(self) -> None:
        self.head = bytearray()
        self.reader: HeaderReader | None = None
        self.error: str | None = None
        self.done = False
        self.partial = False
        self.closed = False

    @property
    def values(self) -> dict[str, str | list[str]]:
        return self.reader.values if self.reader is not None else {}

    def write(self, data: bytes) -> None:
        if self.reader is not None:
            self.reader.write(data)
            self.done = self.reader.done
            return
        if self.done:
            return
        need = 8 - len(self.head)
        self.head += data[:need]
        rest = data[need:]
        if len(self.head) < 8:
            return
        enc = sniff_encoding(bytes(self.head))
        if enc is None:
            self.error = ("the transfer syntax was not captured (the capture began inside "
                          "the association) and the data set's encoding cannot be told from "
                          "its first bytes (deflated?)")
            self.done = True
            return
        self.reader = HeaderReader(enc[0], enc[1], False)
        self.reader.write(bytes(self.head))
        if rest and not self.reader.done:
            self.reader.write(rest)
        self.done = self.reader.done

    def close(self, partial: bool) -> None:
        self.closed, self.partial = True, partial
        if self.reader is not None:
            self.reader.close(partial)
            self.error = self.error or self.reader.error
        elif self.error is None:
            self.error = "data set shorter than one element header"
        self.done = True
