"""The ``-w`` files of a live capture: pcap or pcapng, rotated by size or time, a ring of
the newest, written on a thread of their own (see :mod:`dicomsniff.sources.helper` for why
here and not by the helper)."""

from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .capture import Packet
from .helper import SNAPLEN, CaptureStats
from .interfaces import LiveError

_PCAP_HEADER = struct.Struct("<IHHiIII")


_PCAP_RECORD = struct.Struct("<IIII")


_EPB = struct.Struct("<IIIIIII")


_U32 = struct.Struct("<I")


_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")


def pcap_header(linktype: int, snaplen: int = SNAPLEN) -> bytes:
    """The classic pcap file header (microseconds, little endian)."""
    return _PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(ts: float, data: bytes, orig_len: int) -> bytes:
    """One classic pcap record, header and bytes."""
    us = round(ts * 1_000_000)
    n = len(data)
    return _PCAP_RECORD.pack(us // 1_000_000, us % 1_000_000, n, max(orig_len, n)) + data


class PcapWriter:
    """A plain pcap file: one link type, no rotation, written as called (the TUI's export,
    developer scripts). The live ``-w`` files are :class:`CaptureWriter`'s, in the same format."""

    def __init__(self, out: BinaryIO, linktype: int, snaplen: int = SNAPLEN) -> None:
        self.out = out
        self.linktype = linktype
        out.write(pcap_header(linktype, snaplen))
        self.count = 0

    def write(self, ts: float, data: bytes, orig_len: int) -> None:
        self.out.write(pcap_record(ts, data, orig_len))
        self.count += 1


def _pcapng_option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _pcapng_block(btype: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + _U32.pack(n)


@dataclass
class _File:
    path: Path
    packets: int = 0
    bytes: int = 0


@dataclass
class WrittenFile:
    """A closed output file, for the summary."""

    path: str
    packets: int
    bytes: int


_CHUNK = 1 << 20  # bytes gathered before they are handed to the disk thread


class _DiskThread:
    """Writes, closes and deletes files in order, on its own thread.

    Why: a disk slower than the traffic (or the kernel's dirty-page throttling, measured here at
    ~100 MB/s sustained) blocks ``write`` for long moments; done on the analysis thread, that
    stalls reading the pipe and the kernel drops packets. The queue (64 MiB by default) rides
    out such moments; when it is full the capture waits, as it would without it.
    """

    def __init__(self, max_bytes: int) -> None:
        import queue

        self._q: queue.Queue[tuple] = queue.Queue(maxsize=max(2, max_bytes // _CHUNK))
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    def put(self, *op: object) -> None:
        self._q.put(op)

    def _run(self) -> None:
        while True:
            op = self._q.get()
            kind = op[0]
            if kind == "stop":
                return
            if self.error is not None:  # after a failure: only close what is open
                if kind == "close":
                    with contextlib.suppress(OSError):
                        op[1].close()
                continue
            try:
                if kind == "write":
                    op[1].write(op[2])
                elif kind == "close":
                    f, sync = op[1], op[2]
                    if sync:
                        os.fsync(f.fileno())
                    f.close()
                elif kind == "unlink":
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(op[1])
            except OSError as exc:
                self.error = f"cannot write {getattr(op[1], 'name', op[1])}: " \
                             f"{exc.strerror or exc}"

    def finish(self) -> None:
        self._q.put(("stop",))
        self._thread.join()


class CaptureWriter:
    """pcap or pcapng output (by the file's extension) with rotation and a ring of files.

    Without rotation the file is exactly the path given. With ``rotate_size`` (bytes) or
    ``rotate_time`` (seconds) files are named like dumpcap's, ``out_00001_20240115093000.pcap``,
    and with ``ring`` only the newest ``ring`` files are kept. Rotation happens between packets,
    so every file starts with its own header and is readable on its own. The header waits for
    the first packet's link type (or ``close``'s), so an empty capture is still a valid file.

    Packets are gathered in memory and written by :class:`_DiskThread`; :meth:`flush` hands over
    what is gathered (call it when the input is idle, so a quiet link's file is current). All
    methods are for one thread, the one reading packets.
    """

    def __init__(self, path: str | os.PathLike[str], *, rotate_size: int | None = None,
                 rotate_time: float | None = None, ring: int | None = None,
                 interface: str | None = None, snaplen: int = SNAPLEN,
                 queue_bytes: int = 64 << 20) -> None:
        self.base = Path(path)
        self.pcapng = self.base.suffix.lower() in (".pcapng", ".ntar")
        self.rotate_size = rotate_size
        self.rotate_time = rotate_time
        self.ring = ring
        self.interface = interface
        self.snaplen = snaplen
        self.queue_bytes = queue_bytes
        self.rotating = bool(rotate_size or rotate_time)
        self.files: deque[_File] = deque()  # kept files, oldest first (the last is open)
        self.deleted = 0
        self.packets = 0
        self._disk: _DiskThread | None = None
        self._f: io.RawIOBase | None = None
        self._cur: _File | None = None
        self._buf = bytearray()
        self._seq = 0
        self._linktype: int | None = None
        self._ifaces: dict[int, int] = {}  # pcapng: link type -> interface id
        self._limit = 1 << 62
        self._deadline = float("inf")

    def _name(self) -> Path:
        if not self.rotating:
            return self.base
        stamp = time.strftime("%Y%m%d%H%M%S", time.localtime())
        b = self.base
        return b.with_name(f"{b.stem}_{self._seq:05d}_{stamp}{b.suffix}")

    def open(self) -> None:
        """Create the next file now (the first one before capturing, so that a path we cannot
        write is reported at once)."""
        if self._disk is None:
            self._disk = _DiskThread(self.queue_bytes)
        self._seq += 1
        path = self._name()
        try:
            f = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by the disk thread
        except OSError as exc:
            raise LiveError(f"cannot write {path}: {exc.strerror or exc}") from None
        self._f = f
        self._cur = _File(path)
        self.files.append(self._cur)
        self._ifaces = {}
        self._limit = self.rotate_size or 1 << 62
        # time rotation counts from the file's first packet (set in write)
        self._deadline = float("-inf") if self.rotate_time else float("inf")
        if self._linktype is not None:
            self._header(self._linktype)
        if self.ring:
            while len(self.files) > self.ring:
                self._disk.put("unlink", str(self.files.popleft().path))
                self.deleted += 1

    def _header(self, linktype: int) -> None:
        assert self._cur is not None
        self._linktype = linktype
        if self.pcapng:
            from .. import __version__

            shb = _pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                                + _pcapng_option(4, f"dicomsniff {__version__}".encode())
                                + _pcapng_option(0, b""))
            data = shb + self._idb(linktype)
        else:
            data = pcap_header(linktype, self.snaplen)
        self._buf += data
        self._cur.bytes += len(data)

    def _idb(self, linktype: int) -> bytes:
        self._ifaces[linktype] = len(self._ifaces)
        opts = b""
        if self.interface:
            opts += _pcapng_option(2, self.interface.encode("utf-8", "replace"))
        opts += _pcapng_option(9, b"\x06") + _pcapng_option(0, b"")
        return _pcapng_block(1, struct.pack("<HHI", linktype, 0, self.snaplen) + opts)

    def write(self, pkt: Packet) -> None:
        """One packet, as the reader yields it. The hot path: two or three appends a packet."""
        ts, linktype, data, olen = pkt
        if ts >= self._deadline:
            self._next_interval(ts)
        cur = self._cur
        if cur is None:
            return
        if cur.bytes >= self._limit:  # full: this packet starts the next file, so the ring
            self.rotate()  # never ends on an empty file that pushed out one with packets
            cur = self._cur
            assert cur is not None
        if linktype != self._linktype or not cur.bytes:
            self._new_linktype(linktype)
        us = round(ts * 1_000_000)
        n = len(data)
        buf = self._buf
        if self.pcapng:
            blen = 32 + n + (-n % 4)
            buf += _EPB.pack(6, blen, self._ifaces.get(linktype, 0), us >> 32, us & 0xFFFFFFFF,
                             n, olen)
            buf += data
            buf += _PAD[n & 3] + _U32.pack(blen)
            size = blen
        else:
            buf += _PCAP_RECORD.pack(us // 1_000_000, us % 1_000_000, n, olen)
            buf += data
            size = 16 + n
        cur.packets += 1
        cur.bytes += size
        self.packets += 1
        if len(buf) >= _CHUNK:
            self.flush()

    def _next_interval(self, ts: float) -> None:
        """``--rotate-time``: the first packet of a file starts its interval; the first packet
        past it goes to a new file (so a quiet link rotates when traffic comes, like tcpdump)."""
        assert self.rotate_time is not None
        if self._cur is not None and self._cur.packets:
            self.rotate()
        self._deadline = ts + self.rotate_time

    def _new_linktype(self, linktype: int) -> None:
        assert self._cur is not None
        if not self._cur.bytes:
            self._header(linktype)
        elif self.pcapng and linktype not in self._ifaces:
            idb = self._idb(linktype)
            self._buf += idb
            self._cur.bytes += len(idb)
        self._linktype = linktype

    def flush(self) -> None:
        """Hand what was gathered to the disk thread (waits if its queue is full)."""
        if self._buf and self._f is not None and self._disk is not None:
            if self._disk.error:
                raise LiveError(self._disk.error)
            self._disk.put("write", self._f, self._buf)
            self._buf = bytearray()

    def rotate(self) -> None:
        """Close the current file and start the next one."""
        self._close_file(sync=False)
        self.open()

    def _close_file(self, stats: CaptureStats | None = None, linktype: int | None = None,
                    sync: bool = True) -> None:
        f, cur = self._f, self._cur
        if f is None or cur is None or self._disk is None:
            return
        if not cur.bytes:  # nothing came: a valid, empty capture
            self._header(self._linktype if self._linktype is not None else
                         linktype if linktype is not None else 1)
        if self.pcapng and stats is not None:
            isb = self._isb(stats)
            self._buf += isb
            cur.bytes += len(isb)
        self.flush()
        self._disk.put("close", f, sync)
        self._f = None

    def _isb(self, stats: CaptureStats) -> bytes:
        """Interface statistics, so whoever reads the file later knows what the kernel lost."""
        us = round(time.time() * 1_000_000)
        opts = b""
        if stats.received is not None:
            opts += _pcapng_option(4, struct.pack("<Q", stats.received))  # isb_ifrecv
        if stats.dropped is not None:
            opts += _pcapng_option(5, struct.pack("<Q", stats.dropped))  # isb_ifdrop
        if not opts:
            return b""
        opts += _pcapng_option(0, b"")
        return _pcapng_block(5, struct.pack("<III", 0, us >> 32, us & 0xFFFFFFFF) + opts)

    def close(self, stats: CaptureStats | None = None,
              linktype: int | None = None) -> list[WrittenFile]:
        """Finish the last file (statistics block in pcapng), wait until everything is on
        disk, and list the files kept. Raises :class:`LiveError` if a write failed."""
        try:
            self._close_file(stats, linktype)
        finally:
            if self._disk is not None:
                self._disk.finish()
        if self._disk is not None and self._disk.error:
            raise LiveError(self._disk.error)
        return [WrittenFile(str(f.path), f.packets, f.bytes) for f in self.files]

    def discard(self) -> None:
        """The capture never started: remove the (empty) file created by ``open``."""
        if self._f is not None:
            with contextlib.suppress(OSError):
                self._f.close()
            self._f = None
        if self._disk is not None:
            self._disk.finish()
        while self.files:
            with contextlib.suppress(OSError):
                self.files.pop().path.unlink()


def tee(packets: Iterable[Packet], writer: CaptureWriter,
        on_error: Callable[[str], None]) -> Iterator[Packet]:
    """Yield ``packets`` after writing each to ``writer`` (written first: a packet we analysed
    is in the file). If writing fails (disk full), ``on_error`` hears why once and the analysis
    goes on without the file."""
    write: Callable[[Packet], None] | None = writer.write
    for p in packets:
        if write is not None:
            try:
                write(p)
            except LiveError as exc:
                on_error(str(exc))
                write = None
        yield p
