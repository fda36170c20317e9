"""Live capture: packets from an interface, through the same streaming reader as files.

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
import shutil
import signal
import struct
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .capture import CaptureError, CaptureReader, Packet

__all__ = [
    "BadFilter",
    "CaptureStats",
    "CaptureWriter",
    "HelperCapture",
    "LiveError",
    "NoPermission",
    "NoSuchInterface",
    "build_filter",
    "find_helper",
    "list_interfaces",
    "parse_size",
    "parse_duration",
    "permission_hint",
]

SYS_NET = Path("/sys/class/net")
HELPERS = ("tcpdump", "dumpcap")
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


class LiveError(Exception):
    """The capture cannot start (or stopped by itself): one line for the user, exit status 2."""


class NoPermission(LiveError):
    """The process may not capture on the interface."""


class NoSuchInterface(LiveError):
    """The interface does not exist; the message lists those that do."""


class BadFilter(LiveError):
    """libpcap refused the BPF filter expression."""


def permission_hint(iface: str, helper: str | None) -> str:
    """How to get permission to capture: the one line the user needs."""
    dumpcap = find_helper("dumpcap") or "/usr/bin/dumpcap"
    what = f" (tried {helper})" if helper else ""
    return (f"no permission to capture on {iface}{what}: run as root, or grant the capture "
            f"helper the capabilities (sudo setcap cap_net_raw,cap_net_admin=eip {dumpcap}) "
            "or add your user to the wireshark group (sudo usermod -aG wireshark $USER, then "
            "log in again)")


def list_interfaces() -> list[str]:
    """Interfaces that exist in this network namespace (``ip netns exec`` remounts /sys)."""
    try:
        names = sorted(p.name for p in SYS_NET.iterdir())
    except OSError:
        names = []
    if names:
        return names
    tcpdump = find_helper("tcpdump")
    if tcpdump is None:
        return []
    try:
        out = subprocess.run([tcpdump, "-D"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    # "1.eth0 [Up, Running, Connected]"
    return [m.group(1) for m in re.finditer(r"^\d+\.(\S+)", out, re.M)]


def interface_exists(iface: str) -> bool | None:
    """True/False from /sys/class/net; None when that cannot tell (no sysfs, 'any', an index)."""
    if iface == "any" or iface.isdigit() or not SYS_NET.is_dir():
        return None
    return (SYS_NET / iface).exists()


def is_ethernet(iface: str) -> bool:
    """Whether frames on ``iface`` may carry 802.1Q tags (ARPHRD_ETHER), for the filter."""
    try:
        return (SYS_NET / iface / "type").read_text().strip() == "1"
    except OSError:
        return False


def build_filter(*, ports: Iterable[int] = (), hosts: Iterable[str] = (), bpf: str | None = None,
                 vlan: bool = False) -> str:
    """The kernel filter: TCP, narrowed by ports, hosts and the user's expression.

    ``vlan`` repeats the expression inside one 802.1Q tag (libpcap's ``vlan`` shifts the offsets
    of what follows it), so tagged trunk traffic is not silently filtered out.
    """
    parts = ["tcp"]
    ports = sorted(set(ports))
    if ports:
        parts.append("(" + " or ".join(f"port {p}" for p in ports) + ")")
    hosts = list(dict.fromkeys(hosts))
    if hosts:
        parts.append("(" + " or ".join(("net " if "/" in h else "host ") + h for h in hosts)
                     + ")")
    if bpf and bpf.strip():
        parts.append(f"({bpf.strip()})")
    expr = " and ".join(parts)
    if vlan and not (bpf and re.search(r"\b(vlan|mpls|pppoes|geneve)\b", bpf)):
        expr = f"({expr}) or (vlan and {expr})"
    return expr


def find_helper(name: str) -> str | None:
    """Full path of a capture helper; sbin is searched too (not on a normal user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin", "/usr/local/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*$", re.I)
_TIME_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)", re.I)


def parse_size(text: str) -> int:
    """'100MB' -> 100_000_000, '64MiB' -> 67108864, '4096' -> 4096 bytes."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 100MB, 512kB, 1GiB)")
    num, unit, binary = float(m.group(1)), m.group(2).lower(), m.group(3)
    power = " kmgt".index(unit) if unit else 0
    value = int(num * ((1024 if binary else 1000) ** power))
    if value <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return value


def parse_duration(text: str) -> float:
    """'1h' -> 3600, '1h30m' -> 5400, '90' -> 90 seconds."""
    t = text.strip()
    pos = 0
    total = 0.0
    for m in _TIME_RE.finditer(t):
        if m.start() != pos or not m.group(0):
            break
        total += float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[
            m.group(2).lower()]
        pos = m.end()
    if not t or pos != len(t):
        raise ValueError(f"not a duration: {text!r} (examples: 30s, 15m, 1h, 1h30m)")
    if total <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return total


# -- the capture helper ------------------------------------------------------------------------


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
        found = [(n, p) for n in order if (p := find_helper(n)) is not None]
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
        exists = None if self.wrap else interface_exists(self.iface)
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


class ReplayCapture:
    """``-r FILE`` (or ``-r -``, a pcap stream such as ``ssh host tcpdump -U -w -``) through
    the live pipeline: the same outputs, files and summary as a capture, for remote captures
    and for trying the live view on a recording."""

    name = "file"

    def __init__(self, source: str, *, count: int | None = None) -> None:
        self.source = source
        self.count = count
        self.stats = CaptureStats()
        self.reader_error: str | None = None
        self.bytes_read = 0
        self.linktype: int | None = None
        self._reader: CaptureReader | None = None
        self._stopping = False

    def start(self, timeout: float = 0.0) -> None:
        import sys

        try:
            self._reader = CaptureReader(sys.stdin.buffer if self.source == "-" else self.source)
        except CaptureError as exc:
            raise LiveError(str(exc)) from None

    def packets(self) -> Iterator[Packet]:
        assert self._reader is not None
        reader = self._reader
        left = self.count or -1
        try:
            for p in reader:
                if self._stopping:
                    break
                yield p
                left -= 1
                if not left:
                    break
        finally:
            self.bytes_read = reader.bytes_read
            self.stats.captured = reader.packets
            self.reader_error = reader.error
            reader.close()

    @property
    def packets_read(self) -> int:
        return self._reader.packets if self._reader is not None else 0

    def stop(self, now: bool = False) -> None:
        self._stopping = True

    def kill(self) -> None:
        self._stopping = True

    def request_stats(self) -> None:
        """A file has no kernel counters."""

    def when_idle(self, callback: Callable[[], None]) -> None:
        """Reading a file is never idle for long: the writer flushes by size and at the end."""

    def close(self, timeout: float = 0.0) -> CaptureStats:
        return self.stats

    def failure(self) -> str | None:
        return None


# -- writing the packets -----------------------------------------------------------------------

_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")
_EPB = struct.Struct("<IIIIIII")
_U32 = struct.Struct("<I")
_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")


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
            data = _PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, self.snaplen, linktype)
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
        if cur.bytes >= self._limit:
            self.rotate()

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

