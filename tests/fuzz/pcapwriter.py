"""A tiny pcap/pcapng writer, so tests can make captures without tcpdump, scapy or a network.

Independent of the reader under test (plain struct, written from the file format specs), so the
fuzz seeds and the hostile corpus do not share the reader's assumptions.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

LINKTYPE_ETHERNET = 1

#: A frame to write: bytes (timestamps are made up) or (timestamp, bytes) or
#: (timestamp, bytes, original length on the wire).
FrameSpec = bytes | tuple[float, bytes] | tuple[float, bytes, int]


def _norm(frames: Iterable[FrameSpec], t0: float) -> list[tuple[float, bytes, int]]:
    out = []
    for i, f in enumerate(frames):
        if isinstance(f, (bytes, bytearray, memoryview)):
            out.append((t0 + i * 0.001, bytes(f), len(f)))
        elif len(f) == 2:
            out.append((f[0], bytes(f[1]), len(f[1])))
        else:
            out.append((f[0], bytes(f[1]), f[2]))  # type: ignore[misc]
    return out


def pcap_bytes(frames: Iterable[FrameSpec], *, linktype: int = LINKTYPE_ETHERNET,
               snaplen: int = 262144, nanos: bool = False, big_endian: bool = False,
               t0: float = 1_700_000_000.0) -> bytes:
    """A classic pcap file (microsecond or nanosecond timestamps) holding ``frames``."""
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    ticks = 1_000_000_000 if nanos else 1_000_000
    parts = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for ts, data, olen in _norm(frames, t0):
        sec = int(ts)
        frac = round((ts - sec) * ticks)
        parts.append(struct.pack(e + "IIII", sec, frac, len(data), olen))
        parts.append(data)
    return b"".join(parts)


def _block(btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    blen = len(body) + 12
    return struct.pack("<II", btype, blen) + body + struct.pack("<I", blen)


def pcapng_bytes(frames: Iterable[FrameSpec], *, linktype: int = LINKTYPE_ETHERNET,
                 snaplen: int = 0, t0: float = 1_700_000_000.0) -> bytes:
    """A little-endian pcapng file: section header, one interface (microseconds), EPBs."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(1, struct.pack("<HHI", linktype, 0, snaplen))
    parts = [shb, idb]
    for ts, data, olen in _norm(frames, t0):
        t = round(ts * 1_000_000)
        parts.append(_block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(data), olen)
                            + data))
    return b"".join(parts)


def write_pcap(path: str | Path, frames: Iterable[FrameSpec], **kw) -> Path:
    """Write ``frames`` as a pcap file at ``path``; returns the path."""
    p = Path(path)
    p.write_bytes(pcap_bytes(frames, **kw))
    return p


def write_pcapng(path: str | Path, frames: Iterable[FrameSpec], **kw) -> Path:
    p = Path(path)
    p.write_bytes(pcapng_bytes(frames, **kw))
    return p
