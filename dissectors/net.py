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

# IPv6 extension headers we walk over to reach TCP (hop-by-hop, routing, destination options).
_IPV6_EXT = (0, 43, 60)


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
        if frag & 0x3FFF:  # a fragment (MF set or non-zero offset): not reassembled
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
        hops = 0
        while nxt in _IPV6_EXT and hops < 8:
            if n < t + 8:
                return None
            nxt = buf[t]
            t += (buf[t + 1] + 1) * 8
            hops += 1
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
