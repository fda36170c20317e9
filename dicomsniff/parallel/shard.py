"""Flows sharded by a hash of the connection's endpoints: the unit of parallel work.

As in Zeek cluster workers and Suricata, a TCP connection belongs to one shard, whichever
direction a packet travels, so an association is analysed whole by one worker; the hash is of
the two hosts' addresses (not the ports), so associations that DICOM ties together between two
hosts stay together too. Each worker reads
every frame of every file (reading is the cheap part) and analyses only its shard's flows: the
other frames are replaced by an empty placeholder, so frame numbers, and therefore every frame
reference in the records, are those one process gives. Non-TCP frames go to shard 0 alone, so
capture-level oddities (an unsupported link type) are reported once.

:func:`flow_shard` is the one definition of the shard; the one-machine workers (``-j N``) and the
Dask workers (``--dask``) both use it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator

from dissectors.net import l3_offset, tcp_segment

__all__ = ["ShardFilter", "flow_shard"]

_FAST = struct.Struct("!12xHB8xB")  # Ethernet type, IPv4 version/IHL, protocol
_EMPTY = memoryview(b"")
_MAX_CACHE = 1 << 18  # flow keys remembered (their shard); the cache is cleared beyond


def flow_shard(key: bytes, count: int) -> int:
    """The shard (0..count-1) of a flow key (``src addr + dst addr + src port + dst port``, as
    :func:`dissectors.net.tcp_segment` gives it): a hash of the two host addresses, in either
    order. Ports are left out on purpose: the associations DICOM ties together run between
    the same two hosts (a C-MOVE and the sub-association bringing its C-STOREs back to the
    requestor, a storage commitment result on a new association, MPPS beside the images), so
    one worker sees both."""
    half = (len(key) - 4) // 2
    a, b = key[:half], key[half:2 * half]
    return zlib.crc32(a + b if a <= b else b + a) % count


class ShardFilter:
    """Iterate over ``packets`` keeping shard ``index`` of ``count``; others become placeholders
    (same timestamp, link type 1, no bytes) that the engine counts as frames and skips."""

    def __init__(self, packets: Iterable, index: int, count: int) -> None:
        if not 0 <= index < count:
            raise ValueError(f"shard {index} of {count}")
        self.packets = packets
        self.index = index
        self.count = count
        self.kept = 0
        self.skipped = 0

    def __iter__(self) -> Iterator:
        index, count = self.index, self.count
        cache: dict[bytes, bool] = {}
        unpack = _FAST.unpack_from
        empty = _EMPTY
        kept = skipped = 0
        try:
            for pkt in self.packets:
                ts, linktype, buf, _olen = pkt
                key = None
                if linktype == 1 and len(buf) >= 38:
                    etype, vihl, proto = unpack(buf, 0)
                    if etype == 0x0800 and vihl == 0x45 and proto == 6:
                        key = bytes(buf[26:38])
                if key is None:
                    etype, off = l3_offset(linktype, buf)
                    seg = tcp_segment(buf, etype, off) if off >= 0 else None
                    if seg is None:  # not TCP: shard 0 reports it
                        if index == 0:
                            kept += 1
                            yield pkt
                        else:
                            skipped += 1
                            yield ts, 1, empty, 0
                        continue
                    key = seg[0]
                mine = cache.get(key)
                if mine is None:
                    if len(cache) >= _MAX_CACHE:
                        cache.clear()
                    mine = cache[key] = flow_shard(key, count) == index
                if mine:
                    kept += 1
                    yield pkt
                else:
                    skipped += 1
                    yield ts, 1, empty, 0
        finally:
            self.kept, self.skipped = kept, skipped
