"""Just enough pcap reading to check and trim our own recordings without extra dependencies.

tcpdump writes classic pcap (not pcapng) with Ethernet frames; this reads that, decodes
IPv4/IPv6 + TCP headers, and walks the DICOM PDUs of one TCP direction.  It serves the
recorder (picking a mid-PDU cut point, counting frames, checking frame sizes) and the tests.
It is not the project's analyzer and assumes clean, loss-free captures like ours.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
MAGIC_US, MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
LINKTYPE_ETHERNET = 1


@dataclass(frozen=True)
class Frame:
    """One captured frame: number (1-based, as in Wireshark), time and raw bytes."""

    number: int
    ts: float
    data: bytes
    orig_len: int


@dataclass(frozen=True)
class Segment:
    """A TCP segment decoded from a frame."""

    frame: int
    ts: float
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    flags: int
    payload: bytes
    ack: int = 0

    @property
    def syn(self) -> bool:
        return bool(self.flags & 0x02)


def read_header(path: Path) -> tuple[bytes, int]:
    """Return the raw global header and the link type; refuse pcapng and other formats."""
    with open(path, "rb") as f:
        head = f.read(_GLOBAL.size)
    if len(head) < _GLOBAL.size:
        raise ValueError(f"{path}: too short for a pcap header")
    magic, _vmaj, _vmin, _tz, _sig, _snap, link = _GLOBAL.unpack(head)
    if magic not in (MAGIC_US, MAGIC_NS):
        raise ValueError(f"{path}: not a little-endian classic pcap file (magic {magic:#x})")
    return head, link


def frames(path: Path) -> Iterator[Frame]:
    """Iterate the frames of a classic little-endian pcap file."""
    head, _link = read_header(path)
    scale = 1e-9 if struct.unpack("<I", head[:4])[0] == MAGIC_NS else 1e-6
    with open(path, "rb") as f:
        f.seek(_GLOBAL.size)
        n = 0
        while True:
            rec = f.read(_RECORD.size)
            if len(rec) < _RECORD.size:
                return
            sec, frac, incl, orig = _RECORD.unpack(rec)
            data = f.read(incl)
            if len(data) < incl:
                return  # truncated last record (tcpdump killed hard): ignore it
            n += 1
            yield Frame(n, sec + frac * scale, data, orig)


def write(path: Path, header: bytes, selected: Iterable[Frame], ns: bool = False) -> int:
    """Write ``selected`` frames with ``header``; return how many were written."""
    count = 0
    with open(path, "wb") as f:
        f.write(header)
        for fr in selected:
            sec = int(fr.ts)
            frac = round((fr.ts - sec) * (1e9 if ns else 1e6))
            f.write(_RECORD.pack(sec, frac, len(fr.data), fr.orig_len))
            f.write(fr.data)
            count += 1
    return count


def _ip6(b: bytes) -> str:
    import ipaddress

    return str(ipaddress.IPv6Address(b))


def decode_tcp(fr: Frame) -> Segment | None:
    """Decode Ethernet (optionally one VLAN tag) / IPv4 or IPv6 / TCP; None otherwise."""
    d = fr.data
    if len(d) < 14:
        return None
    etype, off = struct.unpack("!H", d[12:14])[0], 14
    if etype == 0x8100 and len(d) >= 18:
        etype, off = struct.unpack("!H", d[16:18])[0], 18
    if etype == 0x0800:
        ihl = (d[off] & 0x0F) * 4
        total = struct.unpack("!H", d[off + 2:off + 4])[0]
        if d[off + 9] != 6:
            return None
        src = ".".join(map(str, d[off + 12:off + 16]))
        dst = ".".join(map(str, d[off + 16:off + 20]))
        end, off = off + total, off + ihl
    elif etype == 0x86DD:
        plen = struct.unpack("!H", d[off + 4:off + 6])[0]
        if d[off + 6] != 6:  # no extension headers in our captures
            return None
        src, dst = _ip6(d[off + 8:off + 24]), _ip6(d[off + 24:off + 40])
        end, off = off + 40 + plen, off + 40
    else:
        return None
    sport, dport, seq, ack, offflags = struct.unpack("!HHIIH", d[off:off + 14])
    hlen = (offflags >> 12) * 4
    return Segment(fr.number, fr.ts, src, dst, sport, dport, seq, offflags & 0x3F,
                   d[off + hlen:end], ack)


def segments(path: Path) -> Iterator[Segment]:
    """All TCP segments of a capture."""
    for fr in frames(path):
        seg = decode_tcp(fr)
        if seg is not None:
            yield seg


@dataclass(frozen=True)
class Pdu:
    """A DICOM UL PDU found in one direction of a stream, with its stream offsets."""

    type: int
    start: int
    length: int  # whole PDU, header included
    pdvs: tuple[tuple[int, int, int], ...] = ()  # (context id, control header, value length)

    @property
    def end(self) -> int:
        return self.start + self.length


def stream(segs: Iterable[Segment], src: tuple[str, int],
           dst: tuple[str, int]) -> tuple[bytes, list[tuple[int, int]]]:
    """Reassemble one direction: its bytes and (stream offset, frame number) per segment.

    Retransmitted bytes are skipped; our loss-free captures need nothing more.
    """
    data = bytearray()
    marks: list[tuple[int, int]] = []
    isn: int | None = None
    for s in segs:
        if (s.src, s.sport, s.dst, s.dport) != (*src, *dst):
            continue
        if s.syn:
            isn = s.seq + 1
            continue
        if not s.payload:
            continue
        if isn is None:
            isn = s.seq  # capture began mid-stream
        off = (s.seq - isn) & 0xFFFFFFFF
        if off < len(data):
            continue
        marks.append((off, s.frame))
        data += s.payload
    return bytes(data), marks


def pdus(data: bytes) -> list[Pdu]:
    """Split a reassembled direction into PDUs (from offset 0, i.e. a stream seen from SYN)."""
    out: list[Pdu] = []
    off = 0
    while off + 6 <= len(data):
        ptype = data[off]
        length = struct.unpack("!I", data[off + 2:off + 6])[0] + 6
        pdvs: list[tuple[int, int, int]] = []
        if ptype == 0x04:
            p, end = off + 6, min(off + length, len(data))
            while p + 6 <= end:
                vlen = struct.unpack("!I", data[p:p + 4])[0]
                pdvs.append((data[p + 4], data[p + 5], vlen - 2))
                p += 4 + vlen
        out.append(Pdu(ptype, off, length, tuple(pdvs)))
        off += length
    return out
