"""Several capture files read as one capture: a streaming k-way merge by timestamp.

A rotated set (``tcpdump -C``, ``dumpcap -b``, ``dicomsniff live --rotate-size``) and the
captures of several sensors (one at the modality switch, one at the PACS) are one story. This
module yields the frames of all of them in timestamp order, as :class:`~.capture.CaptureReader`
yields one file's, so the engine cannot tell the difference and an association that crosses a
rotation boundary, or is seen by two sensors, is one association.

Memory does not depend on the number or the size of the files:

* the files are planned first (each opened just long enough to read its first timestamp, then
  closed) and sorted by that timestamp; a file is opened only when the merge reaches its first
  frame and closed when it ends, so only files that overlap in time are open at once (one per
  sensor for rotated sets);
* the merge is a heap of one head frame per open file; the file in front keeps yielding while
  its frames are earliest, so a rotated set costs one comparison per frame.

**Sensors.** Files open at the same time are different sensors (a rotated set's files follow
each other, so the next one takes over its predecessor's sensor number). When two sensors are
open, the same TCP segment is usually in both: it is recognised by its identity (addresses,
ports, IP identification and length, the whole TCP header except the checksum, which offloading
may leave unfilled on one side, and a CRC-32 of the payload) and kept once, the first copy by
time. A second copy from the *same* sensor is a real retransmission and is kept. Copies more
than ``dedup_window`` seconds apart are not matched (sensor clocks should agree to better than
that), and the table is capped (``max_dedup`` entries), so memory stays bounded.

**Clocks.** The copies also measure how the sensors' clocks compare: for each pair of sensors,
the median of (this sensor's time - the other's) over the copies matched (the path between
the sensors adds to one direction and takes from the other, so with traffic both ways the
median is the clock offset). :meth:`CaptureSet.sensor_offsets` gives it; the analysis says it,
and a warning when it is large. ``time_shift`` (``--time-shift PATTERN=SECONDS``) moves the
timestamps of the files whose name or path matches, as ``editcap -t`` would, before they are
merged: a sensor whose clock is off is put right without rewriting its files.

**Frame references.** Frames are numbered 1, 2, 3... in merged order (for one file, exactly as
Wireshark numbers them). :meth:`CaptureSet.locate` turns such a number back into the file and
the frame number Wireshark shows in that file, from a table of runs (a run is a stretch of
consecutive frames from one file: one per file for a rotated set, more when sensors alternate),
capped at ``max_runs``; beyond the cap the oldest runs are forgotten and their frames answer
None.
"""

from __future__ import annotations

import fnmatch
import heapq
import os
import stat
import struct
import sys
import zlib
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator, Sequence
from functools import partial
from itertools import count, groupby, tee
from operator import gt, itemgetter
from typing import BinaryIO

from dissectors.net import ETH_IPV4, ETH_IPV6, l3_offset

from .capture import CaptureError, CaptureReader, Packet
from .compressed import Decompressed, compression_of, open_decompressed
from .inputs import expand_inputs, natural_key

__all__ = ["DEFAULT_DEDUP_WINDOW", "CaptureRef", "CaptureSet", "FrameMap", "open_capture",
           "open_frames"]

# Seconds between two sensors' copies of one segment: clock skew of NTP-synchronised sensors
# plus the path between them is milliseconds; this much is also watched around each file's
# start and end, so a short rotation at a high rate stays cheap.
DEFAULT_DEDUP_WINDOW = 0.1
DEFAULT_MAX_DEDUP = 1 << 20  # segment identities remembered while two sensors overlap
DEFAULT_MAX_RUNS = 1 << 21  # frame-reference runs remembered (about 20 bytes each)
_PEEK_CHUNK = 1 << 16  # planning reads this much of each file, for its first timestamp
_INF = float("inf")
_first = itemgetter(0)

_IPV4_HEAD = struct.Struct("!BxHHH")  # version/IHL, total length, identification, flags/frag


def _identity(linktype: int, buf) -> tuple | None:
    """What makes two sensors' copies of a TCP segment the same segment (None: not TCP).

    Everything a router or a second sensor leaves alone: addresses, IP identification and
    length, ports, sequence and acknowledgement numbers, flags, window, options; the TCP
    checksum is left out (checksum offloading leaves it unfilled in the sender's own capture)
    and the payload counts by its CRC-32. TTL, link-layer addresses and VLAN tags may differ.
    """
    if linktype == 1 and len(buf) >= 34 and buf[12] == 8 and buf[13] == 0:
        etype, off = ETH_IPV4, 14
    else:
        etype, off = l3_offset(linktype, buf)
        if off < 0:
            return None
    n = len(buf)
    if etype == ETH_IPV4:
        if n < off + 20:
            return None
        vihl, total, _ident, _frag = _IPV4_HEAD.unpack_from(buf, off)
        if buf[off + 9] != 6:
            return None
        t = off + (vihl & 0x0F) * 4
        end = off + total if total else n
        head = buf[off + 2:off + 6]  # total length, identification
        addrs = buf[off + 12:off + 20]
    elif etype == ETH_IPV6:
        if n < off + 40:
            return None
        end = off + 40 + ((buf[off + 4] << 8) | buf[off + 5])
        nxt = buf[off + 6]
        t = off + 40
        hops = 0
        while nxt in (0, 43, 60) and hops < 8 and n >= t + 8:  # extension headers
            nxt = buf[t]
            t += (buf[t + 1] + 1) * 8
            hops += 1
        if nxt != 6:
            return None
        head = buf[off + 4:off + 6]
        addrs = buf[off + 8:off + 40]
    else:
        return None
    if n < t + 20:
        return None
    hl = (buf[t + 12] >> 4) * 4
    if end > n:
        end = n
    return (b"".join((head, addrs, buf[t:t + 16], buf[t + 18:t + hl])),
            zlib.crc32(buf[t + hl:end]) if end > t + hl else 0)


def _locate(paths, runs_g, runs_file, runs_f, frame: int, last: int = 0):
    if frame < 1 or (last and frame > last):
        return None
    i = bisect_right(runs_g, frame) - 1
    if i < 0:
        return None
    f = paths[runs_file[i]]
    return (f if isinstance(f, str) else f.path), runs_f[i] + (frame - runs_g[i])


def _describe(locate, frame: int | None) -> str | None:
    if frame is None:
        return None
    where = locate(frame)
    return None if where is None else f"{os.path.basename(where[0])}#{where[1]}"


class FrameMap:
    """Merged frame number -> (file, frame number in it): the runs of a :class:`CaptureSet`."""

    def __init__(self, paths: dict[int, str], runs_g: array, runs_file: array,
                 runs_f: array) -> None:
        self.paths, self.runs_g, self.runs_file, self.runs_f = paths, runs_g, runs_file, runs_f

    def locate(self, frame: int) -> tuple[str, int] | None:
        return _locate(self.paths, self.runs_g, self.runs_file, self.runs_f, frame)

    def describe(self, frame: int | None) -> str | None:
        return _describe(self.locate, frame)


class _File:
    """One capture file of the set, and its place in the merge."""

    __slots__ = ("index", "path", "order", "first_ts", "last_ts", "size", "stream", "reader",
                 "it", "head", "frames", "sensor", "format", "compression", "done", "shift")

    def __init__(self, index: int, path: str) -> None:
        self.index = index
        self.path = path
        self.order = 0
        self.first_ts = 0.0
        self.last_ts = -_INF
        self.size = 0
        self.stream: BinaryIO | None = None
        self.reader: CaptureReader | None = None
        self.it: Iterator[Packet] | None = None
        self.head: Packet | None = None
        self.frames = 0
        self.sensor = 0
        self.format = ""
        self.compression: str | None = None
        self.done = False
        self.shift = 0.0  # seconds added to its timestamps (--time-shift)

    def open(self, chunk_size: int | None = None) -> CaptureReader:
        """Open the file (decompressing if it is compressed) and read its header."""
        path = self.path
        try:
            stream, self.compression = open_decompressed(path)
        except FileNotFoundError:
            raise CaptureError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise CaptureError(f"{path}: is a directory, not a capture file") from None
        except PermissionError:
            raise CaptureError(f"{path}: permission denied") from None
        except OSError as exc:
            raise CaptureError(f"{path}: cannot open: {exc.strerror or exc}") from None
        kw = {"chunk_size": chunk_size} if chunk_size else {}
        try:
            reader = CaptureReader(stream, **kw)
        except CaptureError as exc:
            stream.close()
            msg = str(exc)
            if self.compression and msg.startswith(f"{path}:"):
                msg = f"{path} ({self.compression}):{msg[len(path) + 1:]}"
            raise CaptureError(msg) from None
        except BaseException:
            stream.close()
            raise
        self.stream = stream
        self.format = reader.format
        return reader

    def position(self) -> int:
        """Bytes of the file on disk read so far."""
        s = self.stream
        if s is None:
            return self.size if self.done else 0
        if isinstance(s, Decompressed):
            return s.raw_position()
        try:
            return s.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        self.it = None
        self.head = None


class CaptureSet:
    """One or more capture files (or a stream) read as one capture.

    Iterate once for ``(timestamp, linktype, data, orig_len)`` tuples in timestamp order, like
    :class:`~.capture.CaptureReader`. Afterwards :attr:`problems` holds one line per file that
    could not be read or was damaged part-way (the rest was analysed), :attr:`warnings` the
    readers' warnings naming their file, :attr:`duplicates` the segments seen by two sensors
    and kept once.
    """

    def __init__(self, paths: Sequence[str], *, dedup_window: float = DEFAULT_DEDUP_WINDOW,
                 max_dedup: int = DEFAULT_MAX_DEDUP, max_runs: int = DEFAULT_MAX_RUNS,
                 problems: Sequence[str] = (), chunk_size: int | None = None,
                 stream: BinaryIO | None = None,
                 time_shift: Sequence[tuple[str, float]] = ()) -> None:
        self.dedup_window = dedup_window
        self.time_shift = list(time_shift)
        self.max_dedup = max_dedup
        self.max_runs = max_runs
        self.chunk_size = chunk_size
        self.problems: list[str] = list(problems)
        self.warnings: list[str] = []
        self.damaged: list[str] = []  # files damaged part-way (also in problems)
        self.duplicates = 0
        self.problems_said = 0  # problems already told to the user (sources/options.py)
        self.sensors = 0
        self.packets = 0
        self._bytes_read = 0
        self._done_size = 0
        self._started = False
        self._files: list[_File] = []
        self._files_by_index: dict[int, _File] = {}
        self._active: list[_File] = []
        self._runs_g = array("q")
        self._runs_file = array("l")
        self._runs_f = array("q")
        self._runs_dropped = 0
        self._sensor_end: dict[int, float] = {}  # sensor number -> when its last file ended
        self._quiet_from = -_INF  # no copies to look for from then on, while one file is open
        self._table: dict = {}  # segment identity -> (first time, sensors that sent it: bits)
        # frames of the window before a file starts, kept until it does (a few MB at most: the
        # window's worth of the capture's rate)
        self._ring: deque = deque(maxlen=1 << 18)
        self._ring_bit = 1  # the sensor of the frames in the ring (one file is open meanwhile)
        # (sensor, other sensor) -> time differences of their copies (a bounded sample)
        self._offsets: dict[tuple[int, int], list[float]] = {}
        # one file read directly; several, or one among unusable others, through the merge
        self.single = (len(paths) == 1 and not self.problems) or stream is not None
        if stream is not None:
            self._open_stream(stream)
        elif self.single:
            f = _File(0, paths[0])
            f.reader = f.open(chunk_size)  # a lone unusable file raises: exit status 2
            f.size = f.reader.size if f.compression is None else _disk_size(f.path)
            self._files = [f]
        else:
            self._plan(paths)
        self.size = sum(f.size for f in self._files)

    # -- planning ---------------------------------------------------------------------------
    def _open_stream(self, stream: BinaryIO) -> None:
        """Standard input (or any stream): one capture, possibly compressed."""
        name = getattr(stream, "name", None)
        label = name if isinstance(name, str) else "<stream>"
        if label == "<stdin>" or stream is getattr(sys.stdin, "buffer", None):
            label = "<stdin>"
        f = _File(0, label)
        peek = getattr(stream, "peek", None)
        kind = compression_of(bytes(peek(6)[:6])) if peek is not None else None
        if kind is not None:
            stream = Decompressed(stream, kind, label)  # type: ignore[assignment]
            f.compression = kind
        f.reader = CaptureReader(stream, chunk_size=self.chunk_size or 1 << 20)
        f.format = f.reader.format
        f.size = f.reader.size
        self._files = [f]

    def _plan(self, paths: Sequence[str]) -> None:
        """Read each file's first timestamp and order the files by it (then by name)."""
        if "-" in paths:
            raise CaptureError("standard input ('-') cannot be merged with other files; "
                               "give it alone")
        planned: list[_File] = []
        for i, path in enumerate(paths):
            f = _File(i, path)
            try:
                reader = f.open(_PEEK_CHUNK)
            except CaptureError as exc:
                self.problems.append(str(exc))
                continue
            try:
                first = next(iter(reader), None)
                if first is None:
                    if reader.error:
                        self.problems.append(f"{path}: capture damaged: {reader.error}")
                    else:
                        self.warnings.append(f"{path}: no packets")
                    continue
                f.shift = _shift_for(path, self.time_shift)
                f.first_ts = first[0] + f.shift
            finally:
                reader.close()
                f.close()
            f.size = _disk_size(path)
            planned.append(f)
        if not planned:
            raise CaptureError("\n".join(self.problems) or "no capture files given")
        planned.sort(key=lambda f: (f.first_ts, natural_key(f.path)))
        for order, f in enumerate(planned):
            f.order = order
        self._files = planned
        self._files_by_index = {f.index: f for f in planned}

    # -- what the analysis and the user see ---------------------------------------------------
    @property
    def paths(self) -> list[str]:
        """The files in merge order (by first timestamp)."""
        return [f.path for f in self._files]

    @property
    def format(self) -> str:
        return "+".join(sorted({f.format for f in self._files if f.format}))

    @property
    def bytes_read(self) -> int:
        """Capture bytes read (decompressed), for the summary."""
        if self.single:
            r = self._files[0].reader
            return r.bytes_read if r is not None else 0
        return self._bytes_read + sum(f.reader.bytes_read for f in self._active
                                      if f.reader is not None)

    def position(self) -> int:
        """Bytes of the files on disk read so far (what ``size`` counts), for progress."""
        if self.single:
            f = self._files[0]
            return f.reader.bytes_read if f.compression is None else f.position()  # type: ignore[union-attr]
        return self._done_size + sum(f.position() for f in self._active)

    @property
    def error(self) -> str | None:
        """The first file's damage (one file) or the first problem (several), else None."""
        return self.problems[0] if self.problems else None

    def frame_map(self) -> FrameMap:
        """The frame references of this capture as a small picklable object (for workers
        that send them to the process writing the records)."""
        if self.single:
            return FrameMap({0: self._files[0].path}, array("q", [1]), array("l", [0]),
                            array("q", [1]))
        return FrameMap({f.index: f.path for f in self._files}, self._runs_g, self._runs_file,
                        self._runs_f)

    def locate(self, frame: int) -> tuple[str, int] | None:
        """(file, frame number in that file, as Wireshark numbers it) of merged frame ``frame``,
        or None if it is not known (beyond the run cap, or not a frame of this capture)."""
        if frame < 1:
            return None
        if self.single:
            return self._files[0].path, frame
        return _locate(self._files_by_index, self._runs_g, self._runs_file, self._runs_f,
                       frame, self.packets)

    def describe(self, frame: int | None) -> str | None:
        """``name#n``: the file's base name and the frame number in it, or None."""
        return _describe(self.locate, frame)

    @property
    def walks(self) -> bool:
        """Does iterating accept ``send(walker)`` (:attr:`.capture.CaptureReader.walks`)? One
        file, read as it is, does; a merge does not."""
        if not self.single or len(self._files) != 1:
            return False
        reader = self._files[0].reader
        return reader is not None and reader.walks

    # -- the merge ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Packet]:
        if self._started:
            raise RuntimeError("a CaptureSet can only be iterated once")
        self._started = True
        if self.single:
            reader = self._files[0].reader
            assert reader is not None
            # The reader's own frames, with no generator of ours in between (one resumption
            # per frame fewer); what one file leaves to say is taken when it ends.
            reader.on_done = self._single_done
            return iter(reader)
        return self._merge()

    def _single_done(self) -> None:
        f = self._files[0]
        reader = f.reader
        assert reader is not None
        self.packets = reader.packets
        if reader.error:
            self.problems.append(reader.error)
            self.damaged.append(f.path)
        self.warnings.extend(reader.warnings)
        f.done = True
        f.close()

    def _activate(self, f: _File, heap: list) -> None:
        """Open a planned file and put its first frame on the heap."""
        try:
            reader = f.open(self.chunk_size)
        except CaptureError as exc:  # changed since planning
            self.problems.append(str(exc))
            f.done = True
            self._done_size += f.size
            return
        f.reader = reader
        f.it = iter(reader) if not f.shift else _shifted(reader, f.shift)
        # The file that ended last is most likely continued by the one starting now (a
        # rotation); a file starting while another is open is another sensor.
        used = {a.sensor for a in self._active}
        free = [s for s in self._sensor_end if s not in used]
        if free:
            s = max(free, key=self._sensor_end.__getitem__)
        else:
            s = 0
            while s in used:
                s += 1
        f.sensor = s
        self.sensors = max(self.sensors, s + 1)
        ring = self._ring
        if ring:
            # The frames the file in front read in the last window before this one started:
            # if it is still open, this is another sensor, whose first frames may copy them.
            if any(a is not f for a in self._active):
                table = self._table
                bit = self._ring_bit
                for pkt in ring:
                    key = _identity(pkt[1], pkt[2])
                    if key is not None and key not in table:
                        table[key] = (pkt[0], bit)
            ring.clear()
        self._active.append(f)
        f.head = next(f.it, None)
        if f.head is None:
            self._finish(f)
        else:
            heapq.heappush(heap, (f.head[0], f.order, f))

    def _finish(self, f: _File) -> None:
        r = f.reader
        assert r is not None
        if r.error:
            self.problems.append(f"{f.path}: capture damaged: {r.error} (its {f.frames} frames "
                                 "before the damage were analysed)")
            self.damaged.append(f.path)
        self.warnings.extend(f"{f.path}: {w}" for w in r.warnings)
        self._bytes_read += r.bytes_read
        self._done_size += f.size
        self._sensor_end[f.sensor] = f.last_ts
        if len(self._active) > 1:
            # its copies in the other sensors' files may still come, up to a window later
            self._quiet_from = max(self._quiet_from, f.last_ts + self.dedup_window)
        self._active.remove(f)
        f.done = True
        f.close()

    def _merge(self) -> Iterator[Packet]:
        files = self._files
        runs_g, runs_file, runs_f = self._runs_g, self._runs_file, self._runs_f
        heap: list[tuple[float, int, _File]] = []
        nfiles = len(files)
        pending = 0  # files[pending] is the next to open
        g = 0  # merged frame number
        table = self._table
        ring = self._ring
        window = self.dedup_window
        push, pop = heapq.heappush, heapq.heappop
        try:
            while True:
                if not heap:
                    if pending >= nfiles:
                        break
                    self._activate(files[pending], heap)
                    pending += 1
                    continue
                ts, order, f = heap[0]
                if pending < nfiles:
                    p = files[pending]
                    if (p.first_ts, p.order) < (ts, order):
                        self._activate(p, heap)  # it starts before what is in front
                        pending += 1
                        continue
                pop(heap)
                # The front file yields while it is earliest: up to the next head or next file.
                if heap:
                    bts, bord = heap[0][0], heap[0][1]
                else:
                    bts, bord = _INF, nfiles
                if pending < nfiles and (files[pending].first_ts, pending) < (bts, bord):
                    bts, bord = files[pending].first_ts, pending
                pkt = f.head
                it = f.it
                fr = f.frames
                fo = f.order
                assert pkt is not None and it is not None
                # Copies are looked for while another file is open, and for a window before a
                # file starts and after one ends (its sensor's clock may differ from ours).
                watch = files[pending].first_ts - window if pending < nfiles else _INF
                t = pkt[0]
                if not heap and self._quiet_from <= t < watch:  # one sensor: no copies
                    if not (runs_g and runs_file[-1] == f.index
                            and runs_f[-1] + (g + 1 - runs_g[-1]) == fr + 1):
                        runs_g.append(g + 1)
                        runs_file.append(f.index)
                        runs_f.append(fr + 1)
                    g += 1
                    fr += 1
                    yield pkt
                    # The hot path, all in C: frames before the limit pass through groupby
                    # (keyed on ``frame < (limit,)``, a tuple comparison on the timestamp), zip
                    # counts them; the first frame at or past the limit is the next group's
                    # first and becomes this file's head again (the heap sorts out ties).
                    lim = bts if bts < watch else watch
                    groups = groupby(it, partial(gt, (lim,)))
                    pkt = None
                    for before, grp in groups:
                        if before:
                            counter = count()
                            yield from map(_first, zip(grp, counter, strict=False))
                            n = next(counter)
                            g += n
                            fr += n
                        else:
                            pkt = next(grp)
                            break
                    if pkt is None:
                        t = f.reader.last_ts + f.shift if f.reader.last_ts is not None else t
                    else:
                        t = pkt[0]
                elif not heap and self._quiet_from <= t:
                    # One file open, another starts within a window: these frames also go to
                    # the ring, looked at only if the other turns out to be another sensor. The
                    # same C-level stretch as above; tee hands the stretch to the ring after.
                    self._ring_bit = 1 << f.sensor
                    if not (runs_g and runs_file[-1] == f.index
                            and runs_f[-1] + (g + 1 - runs_g[-1]) == fr + 1):
                        runs_g.append(g + 1)
                        runs_file.append(f.index)
                        runs_f.append(fr + 1)
                    g += 1
                    fr += 1
                    ring.append(pkt)
                    yield pkt
                    groups = groupby(it, partial(gt, (bts,)))
                    pkt = None
                    for before, grp in groups:
                        if before:
                            counter = count()
                            passed, kept = tee(grp)
                            yield from map(_first, zip(passed, counter, strict=False))
                            ring.extend(kept)
                            n = next(counter)
                            g += n
                            fr += n
                        else:
                            pkt = next(grp)
                            break
                    if pkt is None:
                        t = f.reader.last_ts + f.shift if f.reader.last_ts is not None else t
                    else:
                        t = pkt[0]
                else:  # two sensors or more: each TCP segment is looked up once
                    bit = 1 << f.sensor
                    alone = not heap
                    quiet = self._quiet_from
                    while True:
                        fr += 1
                        key = _identity(pkt[1], pkt[2])
                        dup = False
                        if key is not None:
                            e = table.get(key)
                            if e is not None:
                                if t - e[0] <= window and not e[1] & bit:
                                    table[key] = (e[0], e[1] | bit)
                                    dup = True
                                    self._offset(e[1], f.sensor, t - e[0])
                                else:  # same sensor again (a retransmission) or too old
                                    del table[key]
                            if not dup:
                                table[key] = (t, bit)
                                if len(table) > self.max_dedup:
                                    _expire(table, t - window, self.max_dedup // 2)
                        if dup:
                            self.duplicates += 1
                        else:
                            g += 1
                            if not (runs_g and runs_file[-1] == f.index
                                    and runs_f[-1] + (g - runs_g[-1]) == fr):
                                runs_g.append(g)
                                runs_file.append(f.index)
                                runs_f.append(fr)
                            yield pkt
                        pkt = next(it, None)
                        if pkt is None:
                            break
                        t = pkt[0]
                        if t > bts or (t == bts and fo > bord):
                            break
                        if alone and quiet <= t < watch:
                            break  # back to the one-sensor loop
                        if g & 0x3FF == 0 and table:
                            _expire(table, t - window, len(table))
                    if len(runs_g) > self.max_runs:
                        cut = len(runs_g) // 2
                        del runs_g[:cut], runs_file[:cut], runs_f[:cut]
                        self._runs_dropped += cut
                f.frames = fr
                if pkt is None:
                    f.last_ts = t
                    self._finish(f)
                else:
                    f.head = pkt
                    push(heap, (pkt[0], fo, f))
        finally:
            self.packets = g
            for f in list(self._active):
                self._finish(f)

    def _offset(self, first: int, sensor: int, late: float) -> None:
        """A copy from ``sensor``, ``late`` seconds after the first (sensors ``first``: bits)."""
        other = (first & -first).bit_length() - 1  # the first copy's sensor
        a, b = (other, sensor) if other < sensor else (sensor, other)
        sample = self._offsets.get((a, b))
        if sample is None:
            sample = self._offsets[(a, b)] = []
        if len(sample) < 4096:
            sample.append(late if a == other else -late)

    def sensor_offsets(self) -> list[tuple[str, str, float, int]]:
        """For each pair of sensors whose copies matched: (sensor A's files, sensor B's, the
        median of B's time - A's over the copies, how many copies were sampled)."""
        names: dict[int, list[str]] = {}
        for f in self._files:
            names.setdefault(f.sensor, []).append(os.path.basename(f.path))

        def label(s: int) -> str:
            n = names.get(s) or ["?"]
            return n[0] if len(n) == 1 else f"{n[0]} (+{len(n) - 1} more)"

        out = []
        for (a, b), sample in sorted(self._offsets.items()):
            s = sorted(sample)
            out.append((label(a), label(b), s[len(s) // 2], len(s)))
        return out

    def close(self) -> None:
        """Close whatever is still open (iteration closes each file as it ends)."""
        for f in self._files:
            f.close()
        self._active.clear()


def _expire(table: dict, before: float, budget: int) -> None:
    """Forget identities first seen before ``before`` (oldest first), and at most ``budget``
    when the table is over its cap."""
    over = len(table) - budget if budget < len(table) else 0
    it = iter(table)
    drop = []
    for key in it:
        if table[key][0] >= before and len(drop) >= over:
            break
        drop.append(key)
    for key in drop:
        del table[key]


def _shift_for(path: str, shifts: Sequence[tuple[str, float]]) -> float:
    """The seconds ``--time-shift`` adds to ``path`` (the last pattern that matches its path
    or its name wins)."""
    out = 0.0
    name = os.path.basename(path)
    for pattern, seconds in shifts:
        if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(name, pattern):
            out = seconds
    return out


def _shifted(reader: CaptureReader, shift: float) -> Iterator[Packet]:
    """A file's frames, ``shift`` seconds later (only files given a --time-shift pay this)."""
    for ts, linktype, data, olen in reader:
        yield ts + shift, linktype, data, olen


def _disk_size(path: str) -> int:
    try:
        st = os.stat(path)
    except OSError:
        return 0
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


class CaptureRef(str):
    """A capture to read again and again (the TUI reads frames back, ``show`` reads twice).

    It is its display name (the file, or the first and a count), so code that names things
    after the capture keeps working, and :meth:`open` gives the same CaptureSet each time."""

    specs: list[str]
    dedup_window: float
    time_shift: list[tuple[str, float]]

    def __new__(cls, specs: Sequence[str], dedup_window: float = DEFAULT_DEDUP_WINDOW,
                time_shift: Sequence[tuple[str, float]] = ()) -> CaptureRef:
        specs = [os.fsdecode(s) for s in specs]
        name = specs[0] if len(specs) == 1 else f"{specs[0]} (+{len(specs) - 1} more)"
        ref = super().__new__(cls, name)
        ref.specs = specs
        ref.dedup_window = dedup_window
        ref.time_shift = list(time_shift)
        return ref

    def open(self) -> CaptureSet:
        return open_capture(self.specs, dedup_window=self.dedup_window,
                            time_shift=self.time_shift)


def open_frames(source: str | CaptureRef):
    """The frames of a capture from the start: a CaptureReader for a path, the merged set for a
    CaptureRef (for code that reads frames back by number)."""
    return source.open() if isinstance(source, CaptureRef) else CaptureReader(source)


def open_capture(specs: str | Sequence[str] | BinaryIO, *,
                 dedup_window: float = DEFAULT_DEDUP_WINDOW,
                 chunk_size: int | None = None,
                 time_shift: Sequence[tuple[str, float]] = ()) -> CaptureSet:
    """The one way every subcommand opens its input: file names, directories, globs, ``-`` for
    standard input, or an open binary stream.

    Raises :class:`~.capture.CaptureError` (one line per unusable file) when nothing can be
    read. When some files are unusable and others are fine, the set opens and
    :attr:`CaptureSet.problems` lists them, one line each.
    """
    if hasattr(specs, "read"):
        return CaptureSet((), stream=specs, chunk_size=chunk_size)  # type: ignore[arg-type]
    if isinstance(specs, (str, os.PathLike)):
        specs = [os.fsdecode(specs)]
    specs = [os.fsdecode(s) for s in specs]
    if specs == ["-"]:
        return CaptureSet((), stream=sys.stdin.buffer, chunk_size=chunk_size)
    files, problems = expand_inputs(specs)
    if not files:
        raise CaptureError("\n".join(problems) or "no capture files given")
    if len(files) == 1 and not problems and len(specs) == 1 and not os.path.isdir(specs[0]):
        return CaptureSet(files, dedup_window=dedup_window, chunk_size=chunk_size)
    return CaptureSet(files, dedup_window=dedup_window, chunk_size=chunk_size,
                      problems=problems, time_shift=time_shift)
