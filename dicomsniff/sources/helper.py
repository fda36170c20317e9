"""Live capture through a helper process: packets from an interface, through the same streaming
reader as files.

Why a helper process: Python reading an AF_PACKET socket itself (scapy) costs a system call and
a Python object per packet on the core that also runs the analysis, and it falls behind a
storage transfer. libpcap in a separate process (tcpdump, or Wireshark's dumpcap) drains the
kernel's memory-mapped ring on the other core and writes pcap records to a pipe, which
:class:`~dicomsniff.sources.capture.CaptureReader` parses exactly as it parses a file. The kernel
filter (BPF) runs before any of that, so traffic we do not want costs nothing.

Why not ``--immediate-mode``: it makes libpcap use TPACKET_V2, whose ring has one slot per packet
sized for the largest packet; with segmentation offloads on (the default) a slot is the 256 KiB
snapshot length, so 64 MiB holds 256 packets and any pause of ours drops packets (measured).
TPACKET_V3 packs packets into blocks, so the buffer holds its size in packets. Its price: a
block is handed over when full or when its timer runs out (tcpdump: 1 s, dumpcap: 250 ms; up to
two ticks), so a quiet link's packets arrive up to that late. And whatever is still in the
kernel's buffer when the helper stops is lost without being counted as dropped. So stopping
waits until every packet seen before the stop request has reached us (the grace time has passed
and the pipe is empty, or 10 s of backlog at the most) and only then sends SIGINT; the helper
flushes, prints its counters and closes the pipe.

Why :class:`CaptureWriter` writes the ``-w`` files here rather than the helper: a helper writes
to one place only, and a second capture process would double the kernel's work and count drops
of its own. Writing the packets we parse costs one buffered copy (measured: ~1 us a packet, less
than the analysis), gives pcap or pcapng as asked, rotates on exact packet boundaries, and lets
every exit path close a complete file.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import re
import select
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from . import interfaces
from .capture import CaptureError, CaptureReader, Packet
from .interfaces import (
    HELPERS,
    BadFilter,
    LiveError,
    NoPermission,
    NoSuchInterface,
    list_interfaces,
    permission_hint,
)

# The kernel buffer rides out a transfer faster than we analyse (MTU-sized packets on two busy
# cores): measured, 256 MiB took 400 MB at 320-350 MB/s and 1 GB at 530-720 MB/s (offloads on)
# without a drop; 64 MiB dropped 3-15% at full speed. Kernel memory, held while capturing.
DEFAULT_BUFFER_MIB = 256


SNAPLEN = 262144


_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


_PIPE_SIZE = 1 << 20  # the default pipe-max-size; a bigger pipe means fewer, larger reads


# A read that returns less than this (a trickle of a few packets) waits a moment for more,
# rather than a wake-up of both processes every packet or two (measured at 100 MB/s of MTU
# packets: without it dicomsniff took 31-53% of a core and tcpdump 17-18%, with it 23-28% and
# 9-15%). Small on purpose: the wait must never let the 1 MiB pipe fill at full speed (then
# the helper blocks): with 64 KiB / 2 ms it did at 600 MB/s; 8 KiB / 1 ms needs > 1 GB/s.
_COALESCE_BELOW = 8 << 10


_COALESCE_WAIT = 0.001  # seconds: what a quiet link's events are delayed by, at most


@dataclass
class CaptureStats:
    """Counters the helper reported (None: not reported). ``dropped`` is the kernel's count of
    packets lost because the ring buffer was full: the number that says the capture fell behind.
    """

    captured: int | None = None  # packets the helper wrote to us
    received: int | None = None  # packets that passed the kernel filter
    dropped: int | None = None  # dropped by the kernel
    if_dropped: int | None = None  # dropped by the interface or driver

    def to_record(self) -> dict[str, int | None]:
        return {"captured": self.captured, "received": self.received, "dropped": self.dropped,
                "interface_dropped": self.if_dropped}


# tcpdump at exit: "123 packets captured" on its own line, and on SIGUSR1 (tcpdump 4.99)
# "tcpdump: 2 packets captured, 4 packets received by filter, 0 packets dropped by kernel".
_TCPDUMP_STAT = re.compile(
    r"(\d+) packets? (captured|received by filter|dropped by kernel|dropped by interface)")


# dumpcap at exit: "Packets received/dropped on interface 'lo': 2/0 (pcap:0/dumpcap:0/
# flushed:0/ps_ifdrop:0) (100.0%)" and "Packets captured: 2".
_DUMPCAP_STAT = re.compile(r"Packets received/dropped on interface '.*': (\d+)/(\d+)"
                           r"(?: \(pcap:(\d+)/dumpcap:(\d+)/flushed:(\d+)/ps_ifdrop:(\d+)\))?")


_DUMPCAP_CAPTURED = re.compile(r"Packets captured: (\d+)")


def parse_stats(line: str, stats: CaptureStats) -> bool:
    """Update ``stats`` from one line of helper stderr; True if the line held counters."""
    found = False
    for m in _TCPDUMP_STAT.finditer(line):
        n, what = int(m.group(1)), m.group(2)
        if what == "captured":
            stats.captured = n
        elif what == "received by filter":
            stats.received = n
        elif what == "dropped by kernel":
            stats.dropped = n
        else:
            stats.if_dropped = n
        found = True
    m = _DUMPCAP_STAT.search(line)
    if m:
        stats.received = int(m.group(1))
        if m.group(3) is not None:
            stats.dropped = int(m.group(3))  # pcap: the kernel's drops
            stats.if_dropped = int(m.group(6))
        else:
            stats.dropped = int(m.group(2))
        found = True
    m = _DUMPCAP_CAPTURED.search(line)
    if m:
        stats.captured = int(m.group(1))
        found = True
    return found


_PERMISSION = re.compile(r"permission|not permitted|EPERM|capabilit", re.I)


_NO_DEVICE = re.compile(r"no such device|doesn't exist|there is no device|no interface",
                        re.I)


_BAD_FILTER = re.compile(r"syntax error|can't parse filter|invalid capture filter|"
                         r"unknown (host|port|protocol|network)|illegal|filter expression|"
                         r"not supported on|is not a|supported only on", re.I)


class _PipeIn(io.RawIOBase):
    """The read end of the helper's pipe, coalescing small reads.

    A read that finds only a trickle (under 8 KiB) waits 1 ms for more: when we are faster than
    the traffic, reading packets as they land costs a wake-up of both processes every packet or
    two. It keeps the stream's first 24 bytes, the pcap header, so the link type is known
    without a packet.
    """

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        os.set_blocking(fd, False)
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)
        self.head = b""
        self._pre = b""  # bytes read by prefetch, served first
        self.on_idle: Callable[[], None] | None = None  # called before waiting for data
        self.waiting = False  # blocked on an empty pipe right now
        self.drained_at = 0.0  # time.monotonic() when the pipe was last found empty

    def prefetch(self, deadline: float) -> bool:
        """Wait for the 24-byte pcap header: the proof that the helper really captures (dumpcap
        says 'Capturing on' before it finds it may not). False if the pipe ended or time ran out.
        """
        fd = self._fd
        while len(self._pre) < 24:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return False
            try:
                chunk = os.read(fd, 24 - len(self._pre))
            except BlockingIOError:
                continue
            if not chunk:
                return False
            self._pre += chunk
        self.head = self._pre
        return True

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def readinto(self, b) -> int:  # type: ignore[override]
        if self._pre:
            n = min(len(b), len(self._pre))
            b[:n] = self._pre[:n]
            self._pre = self._pre[n:]
            return n
        fd = self._fd
        while True:
            try:
                n = os.readv(fd, [b])
                break
            except BlockingIOError:
                self.drained_at = time.monotonic()
                if self.on_idle is not None:
                    self.on_idle()
                self.waiting = True
                try:
                    select.select([fd], [], [])
                finally:
                    self.waiting = False
        if _COALESCE_WAIT and 0 < n < _COALESCE_BELOW and n < len(b):
            time.sleep(_COALESCE_WAIT)
            with contextlib.suppress(BlockingIOError):
                n += os.readv(fd, [memoryview(b)[n:]])
        if len(self.head) < 24:
            self.head += bytes(memoryview(b)[: 24 - len(self.head)])
        return n

    def linktype(self) -> int | None:
        """Link type from the pcap header read so far (None before it arrived, or pcapng)."""
        h = self.head
        if len(h) < 24:
            return None
        if h[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            return struct.unpack_from("<I", h, 20)[0] & 0xFFFF
        if h[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            return struct.unpack_from(">I", h, 20)[0] & 0xFFFF
        return None


class HelperCapture:
    """tcpdump or dumpcap capturing on an interface into a pipe that we parse.

    ``start`` returns once the helper listens and its pcap header arrived (so nothing sent after
    it is missed), or raises a :class:`LiveError` saying why it cannot (permission, interface,
    filter).
    ``packets`` yields until the helper exits; ``stop`` (safe in a signal handler) asks it to.
    """

    def __init__(self, iface: str, bpf: str, *, helper: str = "auto", count: int | None = None,
                 buffer_mib: int = DEFAULT_BUFFER_MIB, wrap: Sequence[str] = ()) -> None:
        """``wrap`` runs the helper through another command, e.g. ``ip netns exec NS`` (which
        execs the helper, so signals still reach it); the interface is then looked for there,
        not in this process's /sys."""
        self.iface = iface
        self.wrap = list(wrap)
        self.bpf = bpf
        self.count = count
        self.buffer_mib = buffer_mib
        self.choice = helper
        self.name: str | None = None  # the helper that runs
        self.argv: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.stats = CaptureStats()
        self.lines: list[str] = []  # helper stderr, counters excepted
        self._ready = threading.Event()
        self._stderr: threading.Thread | None = None
        self._pipe: _PipeIn | None = None
        self._reader: CaptureReader | None = None
        self._stopping = False
        self._stop_requested: float | None = None  # time.monotonic() of the stop request
        self.max_drain = 10.0  # seconds we keep reading a backlog after a stop request
        self.reader_error: str | None = None
        self.bytes_read = 0
        self.exit_status: int | None = None

    @property
    def grace(self) -> float:
        """Seconds after a stop request by which every packet seen before it has left the
        kernel: a TPACKET_V3 block is handed over at the latest two timer ticks after it
        started (tcpdump's timer: 1 s, dumpcap's: 250 ms), plus a margin."""
        return 2.1 if self.name == "tcpdump" else 0.6

    # -- starting ---------------------------------------------------------------------------
    def candidates(self) -> list[tuple[str, str]]:
        """(name, path) of the helpers to try, best first.

        As root tcpdump comes first: it costs about half as much (measured at 100 MB/s of
        MTU-sized packets: 8-12% of a core against dumpcap's 14-22%) and reports drops while
        running. Otherwise dumpcap, the helper distributions grant capabilities to.
        """
        order = (list(HELPERS) if os.geteuid() == 0 else list(reversed(HELPERS))
                 ) if self.choice == "auto" else [self.choice]
        found = [(n, p) for n in order if (p := interfaces.find_helper(n)) is not None]
        if not found:
            want = "tcpdump or dumpcap" if self.choice == "auto" else self.choice
            raise LiveError(f"no capture helper: {want} is not installed "
                            "(apt-get install tcpdump)")
        return found

    def argv_for(self, name: str, path: str) -> list[str]:
        """The helper's command line: pcap on stdout, every packet at once, whole packets."""
        if name == "tcpdump":
            argv = [*self.wrap, path, "-i", self.iface, "-w", "-", "-U", "-s", "0", "-n",
                    "-B", str(self.buffer_mib * 1024)]
            if self.count:
                argv += ["-c", str(self.count)]
            return argv + ([self.bpf] if self.bpf else [])
        argv = [*self.wrap, path, "-i", self.iface, "-w", "-", "-P", "-q", "-s", str(SNAPLEN),
                "-B", str(self.buffer_mib)]
        if self.count:
            argv += ["-c", str(self.count)]
        return argv + (["-f", self.bpf] if self.bpf else [])

    def start(self, timeout: float = 15.0) -> None:
        exists = None if self.wrap else interfaces.interface_exists(self.iface)
        if exists is False:
            raise NoSuchInterface(self._no_such())
        tried = []
        for name, path in self.candidates():
            tried.append(name)
            try:
                self._start_one(name, path, timeout)
                return
            except NoPermission:  # another helper may have the capabilities
                continue
        raise NoPermission(permission_hint(self.iface, " and ".join(tried)))

    def _no_such(self) -> str:
        names = list_interfaces()
        listed = ", ".join(names) if names else "none found"
        return f"no such interface: {self.iface} (interfaces here: {listed}, or 'any')"

    def _start_one(self, name: str, path: str, timeout: float) -> None:
        self.name = name
        self.argv = self.argv_for(name, path)
        self._ready.clear()
        self.lines = []
        try:
            # Its own session: a terminal's Ctrl-C reaches us only, and we stop it once, in
            # order, after which it flushes, reports its counters and closes the pipe.
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         start_new_session=True)
        except PermissionError:
            raise NoPermission(permission_hint(self.iface, path)) from None
        except OSError as exc:
            raise LiveError(f"cannot run {path}: {exc.strerror or exc}") from None
        self._stderr = threading.Thread(target=self._read_stderr, name="helper-stderr",
                                        daemon=True)
        self._stderr.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                break
        if self._ready.is_set() and self.proc.poll() is None:
            assert self.proc.stdout is not None
            pipe = _PipeIn(self.proc.stdout.fileno())
            if pipe.prefetch(deadline):
                self._pipe = pipe
                return
        self._abandon()
        raise self._start_error(name)

    def _abandon(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        proc.wait()
        if self._stderr is not None:
            self._stderr.join(5)
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        self.proc = None

    def _reason(self, last: int = 3) -> str:
        """The helper's own words, without its banner lines and advice paragraphs."""
        keep = [re.sub(r"^(tcpdump|dumpcap):\s*", "", line.strip()) for line in self.lines
                if line.strip() and not re.search(r"listening on|Capturing on|cap_set_proc|"
                                                  r"^File: ", line)]
        return " ".join(keep[:last])

    def _start_error(self, name: str) -> LiveError:
        text = self._reason()
        if _PERMISSION.search(text):
            return NoPermission(permission_hint(self.iface, name))
        if _NO_DEVICE.search(text):
            return NoSuchInterface(self._no_such())
        if self.bpf and _BAD_FILTER.search(text):
            m = re.search(r"\(([^()]*(?:unknown|syntax|illegal)[^()]*)\)", text)
            why = m.group(1) if m else text.split(". ")[0]
            return BadFilter(f"the capture filter was refused: {why} (filter: {self.bpf})")
        return LiveError(f"{name} could not start capturing on {self.iface}: "
                         f"{text or 'no reason given'}")

    def _read_stderr(self) -> None:
        """Collect the helper's stderr: 'listening' means ready; counters update ``stats``."""
        assert self.proc is not None and self.proc.stderr is not None
        pending = b""
        f = self.proc.stderr
        while True:
            try:
                chunk = os.read(f.fileno(), 4096)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            for raw in lines:
                self._on_line(raw.decode("utf-8", "replace"))
        if pending:
            self._on_line(pending.decode("utf-8", "replace"))
        self._ready.set()

    def _on_line(self, line: str) -> None:
        if not line.strip():
            return
        if parse_stats(line, self.stats):
            return
        if "listening on" in line or "Capturing on" in line:
            self._ready.set()
        if len(self.lines) < 200:
            self.lines.append(line)

    # -- running ----------------------------------------------------------------------------
    def packets(self) -> Iterator[Packet]:
        """Every packet until the helper exits: ``(ts, linktype, data, orig_len)``."""
        assert self._pipe is not None
        try:
            reader = CaptureReader(self._pipe)
        except CaptureError as exc:
            self.reader_error = str(exc)
            return
        self._reader = reader
        try:
            yield from reader
        finally:
            self.bytes_read = reader.bytes_read
            if reader.error and not (self._stopping and "truncated" in reader.error):
                self.reader_error = reader.error

    @property
    def linktype(self) -> int | None:
        return self._pipe.linktype() if self._pipe is not None else None

    @property
    def packets_read(self) -> int:
        """Packets read so far; exact when the reader waits for more (in a ``when_idle``
        callback): every one of them has been handed on by then."""
        return self._reader.packets if self._reader is not None else 0

    def when_idle(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the reading thread) whenever no packet is waiting: the
        moment to hand a file's gathered packets to the disk."""
        if self._pipe is not None:
            self._pipe.on_idle = callback

    def stop(self, now: bool = False) -> None:
        """Ask the helper to finish once everything seen before this call has reached us (or
        ``now``): it flushes, prints its counters and closes the pipe, which ends
        :meth:`packets`. Packets still in the kernel's buffer when the helper stops are lost
        without being counted as drops, hence the wait. Fine in a signal handler."""
        first = not self._stopping
        self._stopping = True
        if now:
            self._interrupt()
        elif first:
            self._stop_requested = time.monotonic()
            threading.Thread(target=self._interrupt_when_drained, name="helper-stop",
                             daemon=True).start()

    def _interrupt_when_drained(self) -> None:
        """SIGINT once the grace time is over and the pipe is empty (we read all the helper
        had), or after ``max_drain`` seconds of backlog at the most."""
        t0 = self._stop_requested
        assert t0 is not None
        proc = self.proc
        while proc is not None and proc.poll() is None:
            now = time.monotonic()
            pipe = self._pipe
            drained = pipe is None or pipe.waiting or pipe.drained_at >= t0 + self.grace
            if (now >= t0 + self.grace and drained) or now >= t0 + self.max_drain:
                self._interrupt()
                return
            time.sleep(0.05)

    def _interrupt(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signal.SIGINT)

    def kill(self) -> None:
        """The helper did not stop when asked: end it now (its counters are lost)."""
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signal.SIGKILL)

    def request_stats(self) -> None:
        """Ask tcpdump for its counters now (SIGUSR1; it prints them and goes on).

        Only tcpdump does this; dumpcap reports at exit only. Sent only once it listens:
        before tcpdump installs its handler, SIGUSR1 would end it.
        """
        proc = self.proc
        if (self.name == "tcpdump" and proc is not None and proc.returncode is None
                and self._ready.is_set() and not self._stopping):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signal.SIGUSR1)

    def close(self, timeout: float = 10.0) -> CaptureStats:
        """Wait for the helper to exit (stopping it if needed) and return its counters."""
        proc = self.proc
        if proc is None:
            return self.stats
        try:  # the pipe ended: the helper is exiting, on request or on its own
            proc.wait(1.0)
        except subprocess.TimeoutExpired:  # we stopped reading (an error): abandon the pipe
            if proc.stdout is not None:
                with contextlib.suppress(OSError):
                    proc.stdout.close()
            self._interrupt()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                proc.wait()
        if self._stderr is not None:
            self._stderr.join(5)
        self.exit_status = proc.returncode
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        return self.stats

    def failure(self) -> str | None:
        """Why the helper ended on its own with an error (the interface went away...), if so."""
        rc = self.exit_status
        if rc in (None, 0) or self._stopping:
            return None
        if rc < 0 and -rc in (signal.SIGINT, signal.SIGTERM):
            return None
        return f"{self.name} stopped (exit status {rc}): {self._reason() or 'no reason given'}"


@dataclass
class Ticker:
    """Periodic chores on a thread: ask tcpdump for its counters every ``stats_every`` seconds
    and call ``on_drops(new, total)`` when the kernel's drop count grew (at once, even if no
    packet comes after), stop the capture when ``duration`` is up."""

    capture: HelperCapture | None
    duration: float | None = None
    stats_every: float = 2.0
    on_drops: Callable[[int, int], None] | None = None
    expired: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _drops: int = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="live-ticker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        next_stats = t0 + self.stats_every
        while not self._stop.wait(0.25 if self.duration else 1.0):
            now = time.monotonic()
            if self.capture is not None and now >= next_stats:
                self.capture.request_stats()
                next_stats = now + self.stats_every
            dropped = self.capture.stats.dropped if self.capture is not None else None
            if dropped is not None and dropped > self._drops:
                if self.on_drops is not None:
                    self.on_drops(dropped - self._drops, dropped)
                self._drops = dropped
            if self.duration is not None and now - t0 >= self.duration and not self.expired:
                self.expired = True
                if self.capture is not None:
                    self.capture.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
