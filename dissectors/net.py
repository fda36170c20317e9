"""Link, IP and TCP header decoding: from a captured frame to a TCP segment.

This runs once per packet, so it allocates as little as it can: headers are read with
precompiled ``struct.Struct.unpack_from`` on the frame buffer, and the only object made per
packet is the flow key (one ``bytes`` holding both addresses and both ports, which is what a
connection table hashes on) and the small result tuple.
"""

from __future__ import annotations

import struct

# Link types (https://www.tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_OLD = 12
LINKTYPE_RAW_OLD2 = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = (0x8100, 0x88A8, 0x9100)

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10

_U16 = struct.Struct("!H")
_U32_HOST_LE = struct.Struct("<I")
_U32_HOST_BE = struct.Struct(">I")
_IPV4 = struct.Struct("!BxHHHBB")  # ver/ihl, total length, id, flags/frag, ttl, proto
_IPV6 = struct.Struct("!4xHBB")  # payload length, next header, hop limit
_TCP = struct.Struct("!IIBBH")  # seq, ack, data offset, flags, window (after the two ports)

# BSD loopback address families that mean IPv6 on the various BSDs, Darwin and Linux.
_AF_INET6 = (10, 24, 28, 30)



def l3_offset(linktype: int, buf: memoryview | bytes) -> tuple[int, int]:
    """Return (ethertype, offset) of the network header in a frame, or (0, -1) if not IP.

    ethertype is 0x0800 for IPv4 and 0x86DD for IPv6, whatever the link layer called it.
    """
    n = len(buf)
    if linktype == LINKTYPE_ETHERNET:
        if n < 14:
            return 0, -1
        etype = (buf[12] << 8) | buf[13]
        off = 14
        while etype in ETH_VLAN:  # 802.1Q, QinQ: 4 bytes each
            if n < off + 4:
                return 0, -1
            etype = (buf[off + 2] << 8) | buf[off + 3]
            off += 4
        if etype == ETH_IPV4 or etype == ETH_IPV6:
            return etype, off
        return 0, -1
    if linktype == LINKTYPE_LINUX_SLL:
        if n < 16:
            return 0, -1
        etype = (buf[14] << 8) | buf[15]
        off = 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        if n < 20:
            return 0, -1
        etype = (buf[0] << 8) | buf[1]
        off = 20
    elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if n < 4:
            return 0, -1
        # NULL stores the family in the capturing host's byte order; LOOP in network order.
        fam = _U32_HOST_BE.unpack_from(buf, 0)[0] if linktype == LINKTYPE_LOOP else (
            _U32_HOST_LE.unpack_from(buf, 0)[0])
        if fam > 0xFFFF:  # written big-endian by the other kind of host
            fam = _U32_HOST_BE.unpack_from(buf, 0)[0]
        if fam == 2:
            return ETH_IPV4, 4
        if fam in _AF_INET6:
            return ETH_IPV6, 4
        return 0, -1
    elif linktype in (LINKTYPE_RAW, LINKTYPE_RAW_OLD, LINKTYPE_RAW_OLD2, LINKTYPE_IPV4,
                      LINKTYPE_IPV6):
        if n < 1:
            return 0, -1
        ver = buf[0] >> 4
        if ver == 4:
            return ETH_IPV4, 0
        if ver == 6:
            return ETH_IPV6, 0
        return 0, -1
    else:
        return 0, -1
    while etype in ETH_VLAN:
        if n < off + 4:
            return 0, -1
        etype = (buf[off + 2] << 8) | buf[off + 3]
        off += 4
    if etype == ETH_IPV4 or etype == ETH_IPV6:
        return etype, off
    return 0, -1


def tcp_segment(buf: memoryview | bytes, etype: int, off: int):
    """Decode IP and TCP headers at ``off``.

    Returns None when the packet is not a usable TCP segment (not TCP, truncated headers,
    an IP fragment), else a tuple::

        (key, seq, ack, flags, payload_start, payload_end, wire_payload_len, window)

    ``key`` is ``src addr + dst addr + src port + dst port`` as bytes (12 bytes for IPv4,
    36 for IPv6): the direction's identity. ``payload_end`` is limited to what was captured;
    ``wire_payload_len`` is what the IP header says, so a snaplen cut shows up as missing bytes
    to the reassembler instead of silently shortening the stream. ``window`` is the TCP
    receive window field (unscaled): 0 is a receiver asking the sender to stop.
    """
    n = len(buf)
    if etype == ETH_IPV4:
        if n < off + 20:
            return None
        vihl, total, _id, frag, _ttl, proto = _IPV4.unpack_from(buf, off)
        if proto != 6 or (vihl >> 4) != 4:
            return None
        if frag & 0x3FFF:  # a fragment (MF set or non-zero offset): for Fragments below
            return None
        ihl = (vihl & 0x0F) * 4
        if ihl < 20:
            return None
        t = off + ihl
        if n < t + 20:
            return None
        if ihl == 20:
            key = bytes(buf[off + 12:off + 24])
        else:
            key = bytes(buf[off + 12:off + 20]) + bytes(buf[t:t + 4])
        ip_end = off + total if total >= ihl else n  # total 0: TSO-captured frame
    elif etype == ETH_IPV6:
        if n < off + 40:
            return None
        plen, nxt, _hop = _IPV6.unpack_from(buf, off)
        t = off + 40
        if nxt != 6:
            nxt, t, _frag = ipv6_transport(buf, off)
        if nxt != 6 or n < t + 20:
            return None
        if t == off + 40:
            key = bytes(buf[off + 8:off + 44])
        else:
            key = bytes(buf[off + 8:off + 40]) + bytes(buf[t:t + 4])
        ip_end = off + 40 + plen if plen else n  # jumbogram or TSO: use what was captured
    else:
        return None
    seq, ack, doff, flags, window = _TCP.unpack_from(buf, t + 4)
    hl = (doff >> 4) * 4
    if hl < 20:
        return None
    start = t + hl
    if ip_end < start:
        return None
    end = ip_end if ip_end <= n else n
    if start > end:
        start = end
    return key, seq, ack, flags, start, end, ip_end - start, window


def format_endpoint(key: bytes, side: int) -> str:
    """Format side 0 (source) or 1 (destination) of a flow key as 'ip:port' / '[ip6]:port'."""
    if len(key) == 12:
        a = key[0:4] if side == 0 else key[4:8]
        port = _U16.unpack_from(key, 8 + 2 * side)[0]
        return f"{a[0]}.{a[1]}.{a[2]}.{a[3]}:{port}"
    import ipaddress

    a = key[0:16] if side == 0 else key[16:32]
    port = _U16.unpack_from(key, 32 + 2 * side)[0]
    return f"[{ipaddress.IPv6Address(bytes(a)).compressed}]:{port}"


def reverse_key(key: bytes) -> bytes:
    """The flow key of the opposite direction."""
    if len(key) == 12:
        return key[4:8] + key[0:4] + key[10:12] + key[8:10]
    return key[16:32] + key[0:16] + key[34:36] + key[32:34]


def key_ports(key: bytes) -> tuple[int, int]:
    """(source port, destination port) of a flow key."""
    p = len(key) - 4
    return (key[p] << 8) | key[p + 1], (key[p + 2] << 8) | key[p + 3]


# -- IP fragments (RFC 791 section 3.2, RFC 8200 section 4.5) ------------------------------------
#
# A fragment never reaches the TCP layer on its own: ``tcp_segment`` refuses it. The engine
# hands such frames to :class:`Fragments`, which keeps fragments per datagram until the
# datagram is whole and returns it as one IP packet (a header rebuilt around the reassembled
# payload) for ``tcp_segment`` to read. Memory is bounded (datagrams and bytes held, a capture
# time limit); what does not fit or never completes is counted, never grown without limit.

_IPV6_CHAIN = frozenset({0, 43, 60, 135, 139, 140})  # length in 8-octet units after 8
_IPV6_AH = 51  # length in 4-octet units, plus 2
_IPV6_FRAGMENT = 44
_IPV4_HDR = struct.Struct("!BBHHHBBH4s4s")
_IPV6_FIX = struct.Struct("!IHBB16s16s")
MAX_EXT_HEADERS = 64  # a chain longer than this is not believed (each header is >= 8 bytes)


def ipv6_transport(buf: memoryview | bytes, off: int) -> tuple[int, int, int]:
    """Walk an IPv6 header chain: (next header, its offset, fragment header offset or -1).

    Every extension header RFC 8200 defines is walked (hop-by-hop, routing, destination
    options, mobility, HIP, shim6, authentication); an atomic fragment header (offset 0, no
    more fragments, RFC 8200 4.5 and RFC 6946) is walked too. The walk stops at a
    non-atomic fragment header (reassembly's business), at an unknown header, or at the
    end of the captured bytes (then next header is -1).
    """
    n = len(buf)
    nxt = buf[off + 6]
    t = off + 40
    for _ in range(MAX_EXT_HEADERS):
        if nxt in _IPV6_CHAIN or nxt == _IPV6_AH:
            if n < t + 8:
                return -1, t, -1
            size = (buf[t + 1] + 2) * 4 if nxt == _IPV6_AH else (buf[t + 1] + 1) * 8
            nxt = buf[t]
            t += size
            continue
        if nxt == _IPV6_FRAGMENT:
            if n < t + 8:
                return -1, t, -1
            fo = _U16.unpack_from(buf, t + 2)[0]
            if fo & 0xFFF9:  # an offset or M set: a real fragment
                return _IPV6_FRAGMENT, t, t
            nxt = buf[t]  # atomic: the whole datagram is here
            t += 8
            continue
        return nxt, t, -1
    return -1, t, -1


class _Datagram:
    __slots__ = ("parts", "size", "total", "header", "first_ts", "held", "frames")

    def __init__(self, ts: float) -> None:
        self.parts: dict[int, bytes] = {}  # fragment offset in bytes -> payload
        self.size = 0  # bytes held
        self.total = -1  # payload length, known from the last fragment
        self.header = b""  # what goes before the payload once whole
        self.first_ts = ts
        self.frames: list[int] = []


class Fragments:
    """Reassembles IPv4 and IPv6 fragments into whole datagrams, within bounds."""

    def __init__(self, max_datagrams: int = 1024, max_bytes: int = 8 << 20,
                 timeout: float = 60.0) -> None:
        from collections import OrderedDict

        self.pending: OrderedDict[bytes, _Datagram] = OrderedDict()
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.held = 0
        self.fragments = 0  # fragment frames seen
        self.reassembled = 0  # datagrams made whole
        self.expired = 0  # datagrams given up (timeout, caps, end of capture)
        self.expired_frames: list[int] = []
        self.conflicts = 0  # overlapping fragments with different bytes (first copy kept)
        self.conflict_frames: list[int] = []
        self.bad = 0  # fragments that cannot be placed (past 65535 bytes, not 8-aligned)
        self.undecodable = 0  # IPv6 packets whose extension header chain cannot be walked

    def add(self, buf, etype: int, off: int, frame: int, ts: float) -> bytes | None:
        """A frame ``tcp_segment`` refused: if it is a fragment, hold it; returns a whole
        IP datagram (bytes, IP header at 0) when this fragment completed one, else None."""
        n = len(buf)
        if etype == ETH_IPV4:
            if n < off + 20:
                return None
            vihl, _tos, total, ident, frag, _ttl, proto, _sum, src, dst = _IPV4_HDR.unpack_from(
                buf, off)
            if not frag & 0x3FFF or vihl >> 4 != 4:
                return None
            ihl = (vihl & 0x0F) * 4
            end = min(n, off + total)
            if ihl < 20 or end < off + ihl:
                return None
            key = b"4" + src + dst + bytes((proto,)) + _U16.pack(ident)
            offset, more = (frag & 0x1FFF) * 8, bool(frag & 0x2000)
            data = bytes(buf[off + ihl:end])
            header = bytes(buf[off:off + ihl]) if offset == 0 else b""
        elif etype == ETH_IPV6:
            if n < off + 40:
                return None
            nxt, t, fh = ipv6_transport(buf, off)
            if fh < 0:
                if nxt < 0:  # a header chain past the captured bytes or MAX_EXT_HEADERS
                    self.undecodable += 1
                return None
            plen = _U16.unpack_from(buf, off + 4)[0]
            end = min(n, off + 40 + plen)
            fo = _U16.unpack_from(buf, fh + 2)[0]
            key = b"6" + bytes(buf[off + 8:off + 40]) + bytes(buf[fh + 4:fh + 8])
            offset, more = fo & 0xFFF8, bool(fo & 1)
            data = bytes(buf[fh + 8:end])
            # once whole: a plain IPv6 header whose next header is the fragment's
            header = (bytes(buf[off:off + 6]) + bytes((buf[fh],)) + bytes(buf[off + 7:off + 40])
                      if offset == 0 else b"")
        else:
            return None
        self.fragments += 1
        self._expire(ts, frame)
        if offset + len(data) > 65535 or (more and len(data) % 8):
            self.bad += 1
            return None
        d = self.pending.get(key)
        if d is None:
            if len(self.pending) >= self.max_datagrams:
                self._drop(next(iter(self.pending)), frame)
            d = self.pending[key] = _Datagram(ts)
        if header:
            d.header = header
        if not more:
            d.total = offset + len(data)
        if len(d.frames) < 8:
            d.frames.append(frame)
        prev = d.parts.get(offset)
        if prev is not None:
            if prev[:len(data)] != data[:len(prev)]:
                self._conflict(frame)
            if len(data) <= len(prev):
                return self._complete(key, d)
            d.size -= len(prev)
            self.held -= len(prev)
        d.parts[offset] = data
        d.size += len(data)
        self.held += len(data)
        while self.held > self.max_bytes and self.pending:
            self._drop(next(iter(self.pending)), frame)
        return self._complete(key, d) if key in self.pending else None

    def _conflict(self, frame: int) -> None:
        self.conflicts += 1
        if len(self.conflict_frames) < 20:
            self.conflict_frames.append(frame)

    def _complete(self, key: bytes, d: _Datagram) -> bytes | None:
        if d.total < 0 or not d.header:
            return None
        out = bytearray(d.total)
        filled = 0  # bytes from the start known to be covered
        for offset in sorted(d.parts):
            part = d.parts[offset]
            if offset > filled:
                return None  # a hole
            end = offset + len(part)
            if offset < filled:  # an overlap: the first copy is kept; differing bytes noted
                common = min(end, filled)
                if bytes(out[offset:common]) != part[:common - offset]:
                    self._conflict(d.frames[-1])
                if end > filled:
                    out[filled:end] = part[filled - offset:]
            else:
                out[offset:end] = part
            filled = max(filled, end)
            if filled >= d.total:
                break
        if filled < d.total:
            return None
        del self.pending[key]
        self.held -= d.size
        self.reassembled += 1
        h = bytearray(d.header)
        if h[0] >> 4 == 4:
            ihl = (h[0] & 0x0F) * 4
            struct.pack_into("!H", h, 2, ihl + d.total)
            struct.pack_into("!H", h, 6, 0)  # no longer a fragment
        else:
            struct.pack_into("!H", h, 4, d.total)
        return bytes(h) + bytes(out[:d.total])

    def _drop(self, key: bytes, frame: int) -> None:
        d = self.pending.pop(key)
        self.held -= d.size
        self.expired += 1
        if len(self.expired_frames) < 20:
            self.expired_frames.append(d.frames[0] if d.frames else frame)

    def _expire(self, ts: float, frame: int) -> None:
        while self.pending:
            key, d = next(iter(self.pending.items()))
            if ts - d.first_ts <= self.timeout:
                return
            self._drop(key, frame)

    def finish(self, frame: int) -> None:
        """End of capture: whatever is still incomplete is given up."""
        while self.pending:
            self._drop(next(iter(self.pending)), frame)
