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

from dissectors.net import l3_offset, reverse_key, tcp_segment

__all__ = ["ConnectionFilter", "ShardFilter", "flow_shard"]

_FAST = struct.Struct("!12xHB8xB")  # Ethernet type, IPv4 version/IHL, protocol
_EMPTY = memoryview(b"")
_MAX_CACHE = 1 << 18  # flow keys remembered (their shard); the cache is cleared beyond
_MAX_DEALT = 1 << 16  # connections dealt out in order by ConnectionFilter (then hashed)


def flow_shard(key: bytes, count: int, *, ports: bool = False) -> int:
    """The shard (0..count-1) of a flow key (``src addr + dst addr + src port + dst port``, as
    :func:`dissectors.net.tcp_segment` gives it): a hash of the two host addresses, in either
    order. Ports are left out by default: the associations DICOM ties together run between
    the same two hosts (a C-MOVE and the sub-association bringing its C-STOREs back to the
    requestor, a storage commitment result on a new association, MPPS beside the images), so
    one worker sees both, and a cluster needs no step after its shards.

    ``ports=True`` hashes the two endpoints (address and port), so the connections between
    two hosts spread over the shards: what the one-machine workers (``-j N``,
    :mod:`.local`) use, whose parent links the associations after the merge."""
    half = (len(key) - 4) // 2
    a, b = key[:half], key[half:2 * half]
    if ports:
        a, b = a + key[2 * half:2 * half + 2], b + key[2 * half + 2:2 * half + 4]
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


# Ethernet type, IPv4 version/IHL, flags/offset, protocol, then addresses and ports (the key)
_IPV4 = struct.Struct("!12xHB5xHxB2x12s")


class ConnectionFilter:
    """Shard ``index`` of ``count`` by connection, for the ``-j`` workers (see :meth:`owns`).

    A TCP segment goes to the worker of its connection; every other frame (not TCP, an IP
    fragment, a header too short to read) goes to every worker: each worker's engine then
    reassembles the fragments itself and keeps the datagram only if its connection is its own
    (:meth:`owns`), and capture-level findings about such frames are taken from one worker.

    :meth:`wanted` is asked about every frame in order (the worker's engine is given the runs
    of frames it wants, numbered where they are in the capture, and never sees the others):
    ``frame`` is the number of the last frame asked about, so while the engine analyses a
    frame it is that frame's number (the merge orders the workers' events by it); ``done``
    turns true once every frame was read."""

    def __init__(self, index: int, count: int) -> None:
        if not 0 <= index < count:
            raise ValueError(f"shard {index} of {count}")
        self.index = index
        self.count = count
        self.frame = 0
        self.shared_frame = 0  # the last frame every worker is given (not a TCP segment)
        self.done = False
        self.kept = 0
        self._cache: dict[bytes, bool] = {}  # flow key -> mine, as dealt
        self._dealt = 0
        self._hashed: dict[bytes, bool] = {}  # beyond _MAX_DEALT: flow key -> mine, hashed
        self._unpack = _IPV4.unpack_from

    def owns(self, key: bytes) -> bool:
        """Is the connection of flow key ``key`` this worker's?

        Connections are dealt out in the order they first appear (both directions at once):
        every worker reads the same frames in the same order, so all deal alike, and the
        shares are even whatever the hash would have made of a few large connections (a
        bulk capture is often four). Beyond :data:`_MAX_DEALT` connections, the hash of the
        two endpoints decides (a table that never forgets must be bounded)."""
        cache = self._cache
        mine = cache.get(key)
        if mine is None:
            if self._dealt < _MAX_DEALT:
                mine = self._dealt % self.count == self.index
                self._dealt += 1
                cache[key] = cache[reverse_key(key)] = mine
            else:
                mine = self._hashed.get(key)
                if mine is None:
                    if len(self._hashed) >= _MAX_CACHE:
                        self._hashed.clear()
                    mine = self._hashed[key] = flow_shard(key, self.count,
                                                          ports=True) == self.index
        return mine

    def wanted(self, pkt: tuple) -> bool:
        """Does this worker analyse frame ``pkt`` (the next one of the capture)?"""
        self.frame += 1
        _ts, linktype, buf, _olen = pkt
        if linktype == 1 and len(buf) >= 38:
            etype, vihl, frag, proto, key = self._unpack(buf, 0)
            if etype == 0x0800 and vihl == 0x45 and proto == 6 and not frag & 0x3FFF:
                mine = self._cache.get(key)
                return self.owns(key) if mine is None else mine
        etype, off = l3_offset(linktype, buf)
        seg = tcp_segment(buf, etype, off) if off >= 0 else None
        if seg is None:  # not a whole TCP segment: every worker
            self.shared_frame = self.frame
            return True
        return self.owns(seg[0])
