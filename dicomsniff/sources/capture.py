"""Streaming, hostile-input-safe reader for pcap and pcapng capture files.

This is the first stage of the hot path, so it trades elegance for speed:

* the file is read in large chunks and packets are yielded as ``memoryview`` slices of the chunk
  buffer (no copy per packet).  A buffer is recycled only once no view into it is alive, so a
  view stays valid for as long as the caller keeps it; but a kept view pins its whole chunk
  (1 MiB) in memory, so copy (``bytes(view)``) whatever is kept beyond the packet's processing;
* a regular file is mapped instead, a window of two chunks at a time, when the optional
  compiled module ``_mapped`` is built: no copy at all (:meth:`CaptureReader._fill_mapped`);
  a window is unmapped when the last view into it goes;
* a record straddling a chunk boundary is carried over into the next chunk;
* one tuple per packet, no per-packet objects, precompiled ``struct.Struct`` and hoisted locals;
* no length field is trusted: a bad length stops the iteration with :attr:`CaptureReader.error`
  set (never an exception), so everything before the damage is still delivered.

Pipes (``tcpdump -w -``) are supported: packets are yielded as soon as they are complete in the
data read so far, without waiting for a full chunk.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import sys
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import BinaryIO

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_CAPLEN",
    "CaptureError",
    "CaptureReader",
    "Packet",
    "linktype_name",
]

DEFAULT_CHUNK_SIZE = 1 << 20
DEFAULT_MAX_CAPLEN = 262144  # Wireshark's maximum snapshot length for Ethernet

#: (timestamp in seconds, link type, captured bytes, original length on the wire)
Packet = tuple[float, int, memoryview, int]

_MAX_WARNINGS = 20
# Non-packet pcapng blocks (name resolution, statistics, secrets, custom...) bigger than this are
# corrupt for our purposes; smaller but big ones are skipped without being buffered.
_MAX_SKIP_BLOCK = 1 << 28
# Room for options on top of max_caplen in a block that is buffered (SHB, IDB, EPB, SPB, PB).
_BLOCK_SLACK = 1 << 16

# Chunk buffers kept for reuse: one being parsed, one being filled, one spare.
_POOL_SIZE = 3
# CPython refuses to resize a bytearray while a memoryview of it is alive; that is how a buffer
# is known to be free.  Elsewhere buffers are simply never reused.
_CAN_PROBE = sys.implementation.name == "cpython"

# Windows onto a regular file (``_mapped.c``): no copy from the page cache into a buffer, which
# is a third of a bulk capture's analysis after start-up (docs/performance.md). Optional: without
# a C compiler, or with DICOMSNIFF_NO_ACCEL set, files are read.
_Window = None
_PAGE = 4096
if os.environ.get("DICOMSNIFF_NO_ACCEL", "") in ("", "0"):
    try:
        from ._mapped import PAGE as _PAGE
        from ._mapped import Window as _Window
    except ImportError:
        pass
# a window maps this many chunks: a window costs its mapping only, not a buffer's copy, and
# fewer windows mean fewer chunk edges (measured on bulk: 1 MiB windows 65 ms, 2 MiB 61 ms,
# 4 MiB 61 ms); each window the analysis still looks into stays resident, so not more
_MAP_CHUNKS = 2

_SHB = 0x0A0D0D0A
_IDB = 1
_PB = 2
_SPB = 3
_EPB = 6
# blocks we parse, so keep whole in a buffer, with the least length that can hold them
_MIN_LENGTH = {_SHB: 28, _IDB: 20, _PB: 32, _SPB: 16, _EPB: 32}
_BUFFERED_BLOCKS = frozenset(_MIN_LENGTH)

# pcap magic as the first four file bytes -> (byte order, ticks per second, record header size)
_PCAP_MAGICS: dict[bytes, tuple[str, int, int]] = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000, 16),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000, 16),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000, 16),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000, 16),
    # Alexey Kuznetzov's "modified" pcap: 8 extra bytes (ifindex, protocol, pkt_type) per record
    b"\x34\xcd\xb2\xa1": ("<", 1_000_000, 24),
    b"\xa1\xb2\xcd\x34": (">", 1_000_000, 24),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"

_LINKTYPE_NAMES: dict[int, str] = {
    0: "BSD loopback/null",
    1: "Ethernet",
    6: "IEEE 802.5 Token Ring",
    8: "SLIP",
    9: "PPP",
    10: "FDDI",
    12: "raw IP",
    14: "raw IP",
    50: "PPP in HDLC framing",
    51: "PPPoE",
    101: "raw IP",
    104: "Cisco HDLC",
    105: "IEEE 802.11",
    107: "Frame Relay",
    108: "OpenBSD loopback",
    113: "Linux cooked (SLL)",
    117: "OpenBSD pflog",
    119: "IEEE 802.11 Prism",
    127: "IEEE 802.11 radiotap",
    192: "PPI",
    195: "IEEE 802.15.4",
    220: "Linux USB",
    227: "SocketCAN",
    228: "raw IPv4",
    229: "raw IPv6",
    239: "Linux netfilter log (NFLOG)",
    249: "USBPcap",
    252: "Wireshark upper PDU",
    274: "Ethernet mPackets",
    276: "Linux cooked v2 (SLL2)",
}


def linktype_name(linktype: int) -> str:
    """Human name of a pcap LINKTYPE_ value, for messages."""
    name = _LINKTYPE_NAMES.get(linktype)
    if name is not None:
        return name
    if 147 <= linktype <= 162:
        return f"user-defined {linktype - 147}"
    return f"link type {linktype}"


class CaptureError(Exception):
    """File-level problem the user must see as one line (missing, unreadable, not a capture)."""


def _describe(head: bytes) -> str:
    """Guess what a non-capture file is, so the error message helps the user."""
    signatures = (
        (b"\x1f\x8b", "gzip-compressed data (decompress it first)"),
        (b"\x28\xb5\x2f\xfd", "zstd-compressed data (decompress it first)"),
        (b"\xfd7zXZ\x00", "xz-compressed data (decompress it first)"),
        (b"BZh", "bzip2-compressed data (decompress it first)"),
        (b"PK\x03\x04", "a zip archive"),
        (b"snoop\x00\x00\x00", "a Solaris snoop capture (convert it: editcap -F pcap)"),
        (b"GMBU", "a Microsoft Network Monitor capture (convert it: editcap -F pcap)"),
        (b"\x7fELF", "an executable"),
        (b"%PDF", "a PDF document"),
    )
    for magic, what in signatures:
        if head.startswith(magic):
            return what
    if head[128:132] == b"DICM":
        return "a DICOM file (Part 10), not a network capture"
    sample = head[:256]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte sequence may be cut at the end of the sample
        text = sample[: exc.start].decode("utf-8") if exc.start > len(sample) - 4 else ""
    if text and all(c.isprintable() or c in "\t\r\n\f" for c in text):
        first = text.strip().splitlines()[0] if text.strip() else ""
        if len(first) > 40:
            first = first[:40] + "..."
        return f"text: {first!r}" if first else "text (blank)"
    return "unknown data starting with " + head[:8].hex(" ")


def _pcapng_structs(endian: str) -> tuple[Callable[..., tuple[int, ...]], ...]:
    """Unpackers for one byte order: block header, block + EPB header, EPB header, PB header,
    a 32-bit word."""
    return tuple(
        struct.Struct(endian + fmt).unpack_from for fmt in ("II", "IIIIIII", "IIIII", "HHIIII", "I")
    )


def _grow_pipe(fd: int) -> None:
    """Ask for a 1 MiB pipe buffer (Linux): a live ``tcpdump -w -`` writer then blocks less,
    and so drops fewer packets, while the analyzer is momentarily busy.  Best effort."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass


def _unexported(buf: bytearray) -> bool:
    """True if no memoryview into ``buf`` is alive (checked by trying to resize it)."""
    try:
        buf.append(0)
    except BufferError:
        return False
    del buf[-1]
    return True


def _where(offset: int) -> str:
    return f"pcapng block at offset {offset}"


class CaptureReader:
    """Iterate over the packets of a pcap or pcapng file or stream.

    Iterating yields ``(timestamp_seconds, linktype, data, orig_len)`` in file order, where
    ``data`` is a ``memoryview`` into a chunk buffer that is not overwritten while the view
    lives.  The reader can be iterated once.  After iteration :attr:`error` says why reading
    stopped early (or is None), :attr:`packets` is exact, and a file opened by the reader is
    closed.
    """

    path: str | None
    format: str
    size: int
    bytes_read: int
    packets: int
    error: str | None
    warnings: list[str]

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_caplen: int = DEFAULT_MAX_CAPLEN,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        if max_caplen < 1:
            raise ValueError("max_caplen must be positive")
        self.chunk_size = chunk_size
        self.max_caplen = max_caplen
        self.path = None
        self.format = ""
        self.size = 0
        self.bytes_read = 0
        self.packets = 0
        self.last_ts: float | None = None  # of the last packet read, once per chunk and at end
        self.error = None
        self.warnings = []
        self._warned: set[str] = set()
        self._eof = False
        self._io_error: str | None = None
        self._started = False
        self.on_done: Callable[[], None] | None = None
        self._owns = False
        self._pool: list[bytearray] = []

        if isinstance(source, (str, os.PathLike)):
            path = os.fsdecode(source)
            self.path = path
            label = path
            try:
                f: BinaryIO = open(path, "rb", buffering=0)  # closed by close()
            except FileNotFoundError:
                raise CaptureError(f"{label}: no such file") from None
            except IsADirectoryError:
                raise CaptureError(f"{label}: is a directory, not a capture file") from None
            except PermissionError:
                raise CaptureError(f"{label}: permission denied") from None
            except OSError as exc:
                raise CaptureError(f"{label}: cannot open: {exc.strerror or exc}") from None
            self._owns = True
        else:
            f = source
            if not hasattr(f, "read"):
                raise TypeError(f"expected a path or a binary stream, not {type(f).__name__}")
            if isinstance(f, io.TextIOBase):  # e.g. sys.stdin: read its binary layer
                binary = getattr(f, "buffer", None)
                if binary is None:
                    raise CaptureError("capture stream is in text mode; pass a binary stream")
                f = binary
            name = getattr(source, "name", None)
            label = name if isinstance(name, str) else "<stream>"
        self._label = label
        self._f = f

        regular = False
        try:
            st = os.fstat(f.fileno())
        except (AttributeError, OSError, ValueError):
            pass
        else:
            regular = stat.S_ISREG(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                self.close()
                raise CaptureError(f"{label}: is a directory, not a capture file")
            if regular:
                self.size = st.st_size
            elif stat.S_ISFIFO(st.st_mode):
                _grow_pipe(f.fileno())
        # Regular files are read in full chunks.  Anything else (pipe, socket, BytesIO) is read
        # with readinto1/readinto (one system call, returns what is there) so a live stream is
        # never held back waiting for a full chunk; read1/read is the last resort.
        self._regular = regular
        readinto = getattr(f, "readinto", None)
        if not regular:
            readinto = getattr(f, "readinto1", None) or readinto
        self._readinto: Callable[[memoryview], int | None] | None = readinto
        self._read: Callable[[int], bytes | None] = getattr(f, "read1", None) or f.read
        # map windows of the file rather than read it (a regular file, when the compiled module
        # is there), from where its position is now: the reader is its only reader
        self._mapping = False
        self._origin = 0  # the file offset of the capture's first byte
        if _Window is not None and regular:
            try:
                self._origin = f.tell()
                self._mapping = True
            except (OSError, ValueError, AttributeError):
                pass
        self._window = None  # the newest window mapped
        self._shrank = False  # a window saw the file shrink under it
        self._cur: memoryview | None = None  # the whole buffer being filled...
        self._cur_end = 0  # ...and the end of the data in it
        # a stream keeps filling the current buffer in place while this much room is left
        self._min_room = min(chunk_size, 1 << 14)

        try:
            self._parse_header()
        except BaseException:
            self.close()
            raise

    # -- header -------------------------------------------------------------------------------

    def _head(self, buf: memoryview, need: int) -> memoryview:
        """Make sure the header buffer holds ``need`` bytes if the file has them."""
        if len(buf) < need:
            buf = self._fill(buf, need)
        if self._io_error is not None:
            raise CaptureError(f"{self._label}: {self._io_error}")
        return buf

    def _parse_header(self) -> None:
        label = self._label
        buf = self._head(memoryview(b""), 4)
        if not buf:
            raise CaptureError(f"{label}: empty file")
        if len(buf) < 4:
            raise CaptureError(f"{label}: not a capture file (only {len(buf)} bytes)")
        magic = bytes(buf[:4])
        pcap = _PCAP_MAGICS.get(magic)
        if pcap is not None:
            endian, ticks, reclen = pcap
            buf = self._head(buf, 24)
            if len(buf) < 24:
                raise CaptureError(
                    f"{label}: truncated pcap file header (got {len(buf)} of 24 bytes)"
                )
            vmaj, vmin, _zone, _sigfigs, snaplen, ltfield = struct.unpack_from(
                endian + "HHiIII", buf, 4
            )
            self.format = "pcap"
            self._endian = endian
            self._ticks = ticks
            self._reclen = reclen
            self._linktype = ltfield & 0xFFFF
            if (vmaj, vmin) != (2, 4):
                self._warn(f"unusual pcap version {vmaj}.{vmin}")
            if ltfield & 0x04000000:
                fcs = ((ltfield >> 28) & 0xF) * 2
                self._warn(f"frames end with a {fcs}-byte frame check sequence (FCS)")
            self._check_linktype(self._linktype, "")
            self._check_snaplen(snaplen, "")
        elif magic == _PCAPNG_MAGIC:
            buf = self._head(buf, 28)
            if len(buf) < 28:
                raise CaptureError(
                    f"{label}: truncated pcapng section header (got {len(buf)} of 28 bytes)"
                )
            bom = bytes(buf[8:12])
            if bom == _BOM_LE:
                endian = "<"
            elif bom == _BOM_BE:
                endian = ">"
            else:
                raise CaptureError(f"{label}: corrupt pcapng file (bad byte-order magic)")
            vmaj, vmin = struct.unpack_from(endian + "HH", buf, 12)
            if vmaj != 1:
                raise CaptureError(f"{label}: unsupported pcapng version {vmaj}.{vmin}")
            self.format = "pcapng"
            self._endian = endian
        else:
            buf = self._head(buf, 256)  # same sample whatever the chunking: same message
            raise CaptureError(
                f"{label}: not a pcap or pcapng capture file "
                f"(looks like {_describe(bytes(buf[:256]))})"
            )
        self._first = buf

    def _warn(self, msg: str) -> None:
        """Record a non-fatal oddity once; hostile files cannot make the list grow unbounded."""
        if len(self.warnings) > _MAX_WARNINGS or msg in self._warned:
            return
        if len(self.warnings) == _MAX_WARNINGS:
            self.warnings.append("further warnings suppressed")
            return
        self._warned.add(msg)
        self.warnings.append(msg)

    def _check_linktype(self, linktype: int, where: str) -> None:
        if linktype not in _LINKTYPE_NAMES:
            self._warn(f"{where}unknown link type {linktype}")

    def _check_snaplen(self, snaplen: int, where: str) -> None:
        if 0 < snaplen < 65535:
            self._warn(
                f"{where}snapshot length is {snaplen} bytes: "
                "longer packets were cut short when captured"
            )

    # -- input --------------------------------------------------------------------------------

    def _fill(self, tail: memoryview, need: int) -> memoryview:
        """Return a buffer holding ``tail`` (the unparsed end of the previous one) plus more
        data, at least ``need`` bytes in all unless the input ends first (then ``_eof`` is set).

        Regular files get a full chunk (one big read is cheapest).  Streams return as soon as
        ``need`` bytes are there, so a live capture is not held back, and are read into the room
        left after the tail in the current buffer, so short pipe reads cost no copying.
        """
        if self._eof:
            return tail
        if self._mapping:
            got = self._fill_mapped(tail, need)
            if got is not None:
                return got
        readinto = self._readinto
        if readinto is None:
            return self._fill_by_read(tail, need)
        have = len(tail)
        cur = self._cur
        end = self._cur_end
        start = end - have
        if self._regular or cur is None or len(cur) - end < max(need - have, self._min_room):
            size = max(self.chunk_size, need)
            cur = memoryview(self._buffer(size))
            if have:
                cur[:have] = tail
            start = 0
            end = have
            limit = size if self._regular else need
        else:
            limit = start + need
        self._cur = cur
        pos = end
        try:
            while pos < limit:
                got = readinto(cur[pos:])
                if got is None:  # non-blocking stream with nothing to read yet
                    time.sleep(0.002)
                    continue
                if not got:
                    self._eof = True
                    break
                pos += got
                self.bytes_read += got
        except (OSError, ValueError) as exc:  # ValueError: the file was closed under us
            self._read_failed(exc)
        self._cur_end = pos
        return cur[start:pos]

    def _fill_mapped(self, tail: memoryview, need: int) -> memoryview | None:
        """:meth:`_fill` for a regular file, by mapping the next window of it (the tail's pages
        and what follows): the tail is not copied, and neither is anything else. None: the
        window could not be mapped (the file is then read from where the windows ended)."""
        have = len(tail)
        f = self._f
        try:
            fd = f.fileno()
            size = os.fstat(fd).st_size
        except (OSError, ValueError):
            size = -1
        at = self._origin + self.bytes_read - have  # the file offset of tail[0]
        base = at - at % _PAGE
        want = (at - base) + max(self.chunk_size * _MAP_CHUNKS, need)
        end = min(base + want, size)
        win = None
        if end > self._origin + self.bytes_read:
            try:
                win = _Window(fd, base, end - base)  # type: ignore[misc]
            except (OSError, BufferError, ValueError):
                pass
        elif size >= 0:  # nothing new: the end of the file, as read() would find it
            self._eof = True
            return tail
        if win is None:
            self._mapping = False
            try:  # read on from where the windows ended
                f.seek(self._origin + self.bytes_read)
            except (OSError, ValueError) as exc:
                self._read_failed(exc)
                return tail
            return None
        if self._window is not None and self._window.truncated:
            self._shrank = True
        self._window = win
        if base + want > size:
            self._eof = True  # the whole file as it is now
        self.bytes_read = end - self._origin
        return memoryview(win)[at - base :]

    def _fill_by_read(self, tail: memoryview, need: int) -> memoryview:
        """:meth:`_fill` for file-like objects that only have read1/read."""
        have = len(tail)
        parts: list[bytes | memoryview] = [tail] if have else []
        read = self._read
        try:
            while have < need:
                data = read(self.chunk_size)
                if data is None:  # non-blocking stream with nothing to read yet
                    time.sleep(0.002)
                    continue
                if not data:
                    self._eof = True
                    break
                parts.append(data)
                have += len(data)
                self.bytes_read += len(data)
        except (OSError, ValueError) as exc:
            self._read_failed(exc)
        if len(parts) == 1:
            return memoryview(parts[0])
        return memoryview(b"".join(parts))

    def _read_failed(self, exc: Exception) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self._io_error = f"read error after {self.bytes_read} bytes: {reason}"
        self._eof = True

    def _buffer(self, size: int) -> bytearray:
        """A buffer of at least ``size`` bytes that no live view looks into.

        Recycling buffers saves the page faults and zeroing of a fresh allocation per chunk.  A
        buffer is reused only when no view into it (a packet handed out, the previous chunk's
        tail) is alive, so a view a caller keeps is never overwritten; callers that keep views
        just make the reader allocate fresh buffers.
        """
        pool = self._pool
        if _CAN_PROBE:
            for buf in pool:
                if len(buf) >= size and _unexported(buf):
                    return buf
        buf = bytearray(size)
        pool.append(buf)
        if len(pool) > _POOL_SIZE:
            del pool[0]
        return buf

    def _discard(self, count: int) -> tuple[int, memoryview]:
        """Consume and drop ``count`` bytes (an oversized block being skipped) without keeping
        them; return how many were dropped and the bytes read past them."""
        done = 0
        empty = memoryview(b"")
        while done < count:
            got = self._fill(empty, 1)
            if not got:
                break
            if len(got) > count - done:
                return count, got[count - done :]
            done += len(got)
        return done, empty

    # -- iteration ----------------------------------------------------------------------------

    @property
    def walks(self) -> bool:
        """Does iterating accept ``send(walker)``? It does: the iterator calls
        ``walker(chunk, off, layout)`` on the records after the last one it yielded, where
        ``layout`` is ("pcap", big-endian, ticks per second, record header length, max
        caplen, link type) or ("pcapng", big-endian, max caplen, max block length,
        interfaces as (link type, ticks per second, offset in ticks)); the walker returns a
        tuple whose first three items are the offset it stopped at (a record or block
        boundary), the records it consumed and the last one's timestamp; the reader goes on
        from there and ``send`` returns that tuple (the engine's bulk runs,
        :mod:`dicomsniff.analysis.accel`); another walker may be sent before the next
        ``next()`` (a -j worker counts its records, then its engine walks them). After a
        pcapng block the reader read the slow way it returns (offset, 0, None): no walk."""
        return self.format in ("pcap", "pcapng")

    def __iter__(self) -> Iterator[Packet]:
        if self._started:
            raise RuntimeError("a CaptureReader can only be iterated once")
        self._started = True
        if self.format == "pcap":
            return self._iter_pcap()
        return self._iter_pcapng()

    def _truncated(self, what: str, offset: int, got: int, total: int) -> str:
        """Message for input that ended (or failed) in the middle of a record or block."""
        if self._io_error is not None:
            return self._io_error
        return (
            f"capture truncated: last {what} at offset {offset} cut short "
            f"(got {got} of {total} bytes)"
        )

    def _iter_pcap(self) -> Iterator[Packet]:
        buf = self._first
        del self._first
        base = 0  # file offset of buf[0]
        off = 24
        hlen = self._reclen
        unpack = struct.Struct(self._endian + "IIII").unpack_from
        linktype = self._linktype
        ticks = self._ticks
        maxcap = self.max_caplen
        count = 0
        last_ts = None
        layout = ("pcap", self._endian == ">", ticks, hlen, maxcap, linktype)
        try:
            while True:
                n = len(buf)
                try:
                    while True:  # the hot loop
                        sec, frac, caplen, olen = unpack(buf, off)
                        start = off + hlen
                        end = start + caplen
                        if end > n or caplen > maxcap:
                            break
                        off = end
                        count += 1
                        # exact integer division: correctly rounded, same float as pcapng gives
                        last_ts = (sec * ticks + frac) / ticks
                        walker = yield last_ts, linktype, buf[start:end], olen
                        while walker is not None:  # the caller walks a run of records itself
                            got = walker(buf, off, layout)
                            if got[1]:
                                off = got[0]
                                count += got[1]
                                last_ts = got[2]
                            # what send() returns; the next packet goes to next(), another
                            # walker may be sent first
                            walker = yield got
                except struct.error:  # fewer than 16 bytes left
                    pass
                self.packets = count
                self.last_ts = last_ts
                left = n - off
                if left >= hlen:
                    caplen = unpack(buf, off)[2]
                    if caplen > maxcap:
                        self.error = (
                            f"record at offset {base + off}: captured length {caplen} exceeds "
                            f"the maximum of {maxcap} bytes (corrupt file?)"
                        )
                        return
                    if self._eof:
                        self.error = self._truncated("record", base + off, left - hlen, caplen)
                        return
                    need = hlen + caplen
                else:
                    if self._eof:
                        if left or self._io_error:
                            self.error = self._truncated("record header", base + off, left, hlen)
                        return
                    need = hlen
                base += off
                buf = self._fill(buf[off:], need)
                off = 0
        finally:
            self.packets = count
            self.last_ts = last_ts if count else None
            self._done()

    def _iter_pcapng(self) -> Iterator[Packet]:
        buf = self._first
        del self._first
        base = 0  # file offset of buf[0]
        off = 0
        maxcap = self.max_caplen
        maxblock = maxcap + _BLOCK_SLACK
        endian = self._endian
        hdr, epbhdr, epb, pb, u32 = _pcapng_structs(endian)
        # per interface: (linktype, ticks per second, offset in ticks); snaplens kept apart
        ifaces: list[tuple[int, int, int]] = []
        snaplens: list[int] = []
        nif = 0
        last_ts = 0.0
        count = 0
        err: str | None = None
        need = 8
        partial = "block header"
        try:
            while True:
                n = len(buf)
                while True:
                    try:
                        while True:  # the hot loop: well-formed enhanced packet blocks
                            btype, blen, ifid, hi, lo, caplen, olen = epbhdr(buf, off)
                            end = off + blen
                            if (
                                btype != 6
                                or end > n
                                or caplen > maxcap
                                or caplen + 32 > blen
                                or blen > maxblock
                                or ifid >= nif
                                or blen & 3
                                or u32(buf, end - 4)[0] != blen
                            ):
                                break
                            linktype, ticks, tsoff = ifaces[ifid]
                            start = off + 28
                            off = end
                            count += 1
                            last_ts = ((hi << 32 | lo) + tsoff) / ticks
                            walker = yield last_ts, linktype, buf[start : start + caplen], olen
                            while walker is not None:  # the caller walks a run of blocks
                                got = walker(buf, off, ("pcapng", endian == ">", maxcap,
                                                        maxblock, tuple(ifaces)))
                                if got[1]:
                                    off = got[0]
                                    count += got[1]
                                    last_ts = got[2]
                                walker = yield got  # what send() returns (another walker may
                                # be sent before the next packet)
                    except struct.error:  # fewer than 28 bytes left
                        pass

                    # The slow path: any other block, or the diagnosis of a bad EPB.  Checks run
                    # in a fixed order, needing only the bytes they look at, so that the outcome
                    # does not depend on where chunk boundaries fall.
                    left = n - off
                    if left < 8:
                        need, partial = 8, "block header"
                        break
                    btype, blen = hdr(buf, off)
                    at = base + off
                    if btype == _SHB:  # may switch byte order, so read its length again
                        if left < 12:
                            need, partial = 12, "block header"
                            break
                        bom = bytes(buf[off + 8 : off + 12])
                        if bom == _BOM_LE:
                            new_endian = "<"
                        elif bom == _BOM_BE:
                            new_endian = ">"
                        else:
                            err = f"corrupt {_where(at)}: bad byte-order magic in section header"
                            break
                        if new_endian != endian:
                            endian = new_endian
                            hdr, epbhdr, epb, pb, u32 = _pcapng_structs(endian)
                        blen = hdr(buf, off)[1]
                    if blen < 12 or blen & 3:
                        err = f"corrupt {_where(at)}: bad block length {blen}"
                        break
                    if blen > _MAX_SKIP_BLOCK:
                        err = (
                            f"corrupt {_where(at)}: block length {blen} exceeds the "
                            f"maximum of {_MAX_SKIP_BLOCK} bytes"
                        )
                        break
                    buffered = btype in _BUFFERED_BLOCKS
                    if buffered:
                        if blen < _MIN_LENGTH[btype]:
                            err = f"corrupt {_where(at)}: block length {blen} too short"
                            break
                        if btype == _EPB or btype == _PB:
                            if left < 28:
                                need, partial = 28, "block"
                                break
                            caplen = epb(buf, off + 8)[3] if btype == _EPB else pb(buf, off + 8)[4]
                            if caplen > maxcap:
                                err = (
                                    f"{_where(at)}: captured length {caplen} exceeds the "
                                    f"maximum of {maxcap} bytes (corrupt file?)"
                                )
                                break
                        if blen > maxblock:
                            err = (
                                f"corrupt {_where(at)}: block length {blen} exceeds the "
                                f"maximum of {maxblock} bytes"
                            )
                            break
                    end = off + blen
                    if end > n:  # the block is not all in the buffer
                        if buffered or blen <= maxblock or end - 4 < n:
                            need, partial = blen, "block"
                            break
                        # A big block we do not need: drop it without buffering it, then
                        # continue from its trailing length.
                        drop = end - 4 - n
                        dropped, rest = self._discard(drop)
                        if dropped < drop:
                            err = self._truncated("block", at, left + dropped, blen)
                            break
                        if len(rest) < 4:
                            rest = self._fill(rest, 4)
                            if len(rest) < 4:
                                err = self._truncated("block", at, blen - 4 + len(rest), blen)
                                break
                        trailer = u32(rest, 0)[0]
                        if trailer != blen:
                            err = (
                                f"corrupt {_where(at)}: trailing length {trailer} does not match "
                                f"block length {blen}"
                            )
                            break
                        base += end - 4
                        buf = rest
                        n = len(buf)
                        off = 4
                        continue
                    trailer = u32(buf, end - 4)[0]
                    if trailer != blen:
                        err = (
                            f"corrupt {_where(at)}: trailing length {trailer} does not match "
                            f"block length {blen}"
                        )
                        break
                    if btype == _EPB or btype == _PB:
                        if btype == _EPB:
                            ifid, hi, lo, caplen, olen = epb(buf, off + 8)
                        else:
                            ifid, _drops, hi, lo, caplen, olen = pb(buf, off + 8)
                        if caplen > blen - 32:
                            err = (
                                f"corrupt {_where(at)}: captured length {caplen} does not fit in "
                                f"block length {blen}"
                            )
                            break
                        if ifid >= nif:
                            err = (
                                f"{_where(at)}: unknown interface id {ifid} "
                                f"({nif} interfaces defined in this section)"
                            )
                            break
                        linktype, ticks, tsoff = ifaces[ifid]
                        start = off + 28
                        off = end
                        count += 1
                        last_ts = ((hi << 32 | lo) + tsoff) / ticks
                        walker = yield last_ts, linktype, buf[start : start + caplen], olen
                        while walker is not None:  # no walk after a block read the slow way
                            walker = yield off, 0, None
                    elif btype == _SPB:
                        if not nif:
                            err = f"{_where(at)}: simple packet block but no interface defined"
                            break
                        olen = u32(buf, off + 8)[0]
                        caplen = min(olen, blen - 16)
                        if snaplens[0]:
                            caplen = min(caplen, snaplens[0])
                        if caplen > maxcap:
                            err = (
                                f"{_where(at)}: captured length {caplen} exceeds the maximum of "
                                f"{maxcap} bytes (corrupt file?)"
                            )
                            break
                        start = off + 12
                        off = end
                        count += 1
                        walker = yield last_ts, ifaces[0][0], buf[start : start + caplen], olen
                        while walker is not None:  # no walk after a simple packet block
                            walker = yield off, 0, None
                    elif btype == _IDB:
                        linktype, _res, snaplen = struct.unpack_from(endian + "HHI", buf, off + 8)
                        ticks, tsoff = self._idb_options(buf, off + 16, end - 4, endian, at)
                        prefix = f"interface {nif}: "
                        self._check_linktype(linktype, prefix)
                        self._check_snaplen(snaplen, prefix)
                        ifaces.append((linktype, ticks, tsoff * ticks))
                        snaplens.append(snaplen)
                        nif += 1
                        off = end
                    elif btype == _SHB:
                        vmaj, vmin = struct.unpack_from(endian + "HH", buf, off + 12)
                        if vmaj != 1:
                            err = f"{_where(at)}: unsupported pcapng version {vmaj}.{vmin}"
                            break
                        if vmin not in (0, 2):
                            self._warn(f"unusual pcapng version {vmaj}.{vmin}")
                        ifaces = []
                        snaplens = []
                        nif = 0
                        off = end
                    else:
                        off = end  # any other block type is skipped
                self.packets = count
                self.last_ts = last_ts
                if err is not None:
                    self.error = err
                    return
                if self._eof:
                    left = n - off
                    if left or self._io_error:
                        self.error = self._truncated(partial, base + off, left, need)
                    return
                base += off
                buf = self._fill(buf[off:], need)
                off = 0
        finally:
            self.packets = count
            self.last_ts = last_ts if count else None
            self._done()

    def _idb_options(
        self, buf: memoryview, pos: int, limit: int, endian: str, at: int
    ) -> tuple[int, int]:
        """Return (ticks per second, offset in seconds) from an interface block's options."""
        ticks = 1_000_000
        tsoff = 0
        opt = struct.Struct(endian + "HH").unpack_from
        while pos + 4 <= limit:
            code, length = opt(buf, pos)
            if code == 0:
                break
            value = pos + 4
            if value + length > limit:
                self._warn(f"{_where(at)}: malformed interface options ignored")
                break
            if code == 9 and length >= 1:  # if_tsresol
                res = buf[value]
                if res & 0x80:
                    ticks = 1 << (res & 0x7F)
                else:
                    ticks = 10**res
            elif code == 14 and length >= 8:  # if_tsoffset, seconds
                tsoff = struct.unpack_from(endian + "q", buf, value)[0]
            pos = value + ((length + 3) & ~3)
        return ticks, tsoff

    # -- lifecycle ----------------------------------------------------------------------------

    def _done(self) -> None:
        """End of iteration: report a pending read error, close what we opened, and call
        ``on_done`` (set by whoever hands this reader's frames on without a wrapper)."""
        if self.error is None and self._io_error is not None:
            self.error = self._io_error
        if self._shrank or (self._window is not None and self._window.truncated):
            # pages of a window vanished and read as 0xFF (_mapped.c): whatever the parse
            # made of them, the cause is this
            self.error = (f"the file shrank while being read (another program truncated "
                          f"it?): read up to {self.bytes_read} bytes")
        self._window = None
        self.close()
        if self.on_done is not None:
            self.on_done()

    def close(self) -> None:
        """Close the file if the reader opened it (a stream passed in is left to its owner)."""
        self._pool.clear()
        self._cur = None
        if self._owns:
            self._owns = False
            self._f.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
