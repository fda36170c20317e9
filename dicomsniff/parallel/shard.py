"""Connections dealt out to workers: the unit of parallel work.

As in Zeek cluster workers and Suricata, a TCP connection belongs to one worker, whichever
direction a packet travels, so an association and its TCP stream are analysed whole by one
worker. Each worker reads every frame of every file (reading is the cheap part) and analyses
only its connections, numbering every frame where it is in the capture, so every frame
reference in the records is one process's. What ties connections together (C-MOVE links,
the rules across associations, the study journey) is replayed after the merge
(:mod:`.local`).

:class:`ConnectionFilter` is the one definition of the shard; the one-machine workers
(``-j N``) and the Dask workers (``--dask``) both use it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Any

from dissectors.net import l3_offset, reverse_key, tcp_segment

__all__ = ["ConnectionFilter", "flow_shard"]

_MAX_CACHE = 1 << 18  # flow keys remembered (their shard); the cache is cleared beyond
_MAX_DEALT = 1 << 16  # connections dealt out in order by ConnectionFilter (then hashed)


def flow_shard(key: bytes, count: int) -> int:
    """The shard (0..count-1) of a flow key (``src addr + dst addr + src port + dst port``, as
    :func:`dissectors.net.tcp_segment` gives it): a hash of its two endpoints (address and
    port), in either order, so both directions of a connection go together. Used beyond the
    connections :class:`ConnectionFilter` deals out in order."""
    half = (len(key) - 4) // 2
    a = key[:half] + key[2 * half:2 * half + 2]
    b = key[half:2 * half] + key[2 * half + 2:2 * half + 4]
    return zlib.crc32(a + b if a <= b else b + a) % count


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

    @property
    def connections(self) -> int:
        """TCP connections seen so far (dealt out in order; those hashed beyond not counted)."""
        return self._dealt

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
                    mine = self._hashed[key] = flow_shard(key, self.count) == self.index
        return mine

    def skipper(self) -> Callable[[Any, int, tuple], tuple] | None:
        """A walker for the reader (``CaptureReader.walks``: ``send`` it after a record of
        another worker) that passes over the records that follow as long as :meth:`wanted`
        would give each to another worker from its first branch (a plain IPv4 TCP segment on
        Ethernet of a connection already dealt out), in C (:mod:`dicomsniff.analysis.accel`,
        ``dissectors/_runs.c`` ``skip``); None without the compiled walker. The reader's
        reply is ``(offset, records, last timestamp)``: tell :meth:`skipped` the records."""
        from ..analysis import accel

        skip = accel.skip
        if skip is None:
            return None
        cache = self._cache

        def walker(chunk: Any, off: int, layout: tuple) -> tuple:
            return skip(chunk, off, layout, cache, -1)

        return walker

    def counter(self) -> Callable[[Any, int, tuple], tuple] | None:
        """Like :meth:`skipper`, a walker for the reader, but one that counts the records of
        this worker's connections that follow (those :meth:`wanted` gives this worker from its
        first branch) and takes none: its reply is ``(offset, 0, None, count)``, so the
        worker reads that many records knowing they are its own (``parallel.local``).
        Each of them must still be counted (:meth:`skipped`) as it is read."""
        from ..analysis import accel

        skip = accel.skip
        if skip is None:
            return None
        cache = self._cache

        def walker(chunk: Any, off: int, layout: tuple) -> tuple:
            return off, 0, None, skip(chunk, off, layout, cache, -1, True)[1]

        return walker

    def skipped(self, records: int) -> None:
        """``records`` frames after the last one asked about were read without asking (walked
        by :meth:`skipper`, or counted by :meth:`counter`): counted as :meth:`wanted` counts
        them."""
        self.frame += records

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
