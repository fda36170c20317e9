"""Two network namespaces joined by a veth pair, and tcpdump on that veth.

The peers never touch the host network: each namespace has only loopback and its veth end,
on TEST-NET-1 (192.0.2.0/24) and the IPv6 documentation prefix (2001:db8::/64), without routes.
Offloads are switched off so that tcpdump sees real MTU-sized segments with valid checksums
instead of 64 KB GSO super-packets.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SCU, SCP = "scu", "scp"


class NetnsError(RuntimeError):
    """Raised when the namespaces, a peer or tcpdump cannot be set up."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def netns_available() -> tuple[bool, str]:
    """Tell whether this process can create namespaces (root and ``ip netns``), and why not."""
    if os.geteuid() != 0:
        return False, "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return False, "iproute2 'ip' command not found"
    if shutil.which("tcpdump") is None:
        return False, "tcpdump not found"
    try:
        _ip("netns", "list")
    except (OSError, subprocess.CalledProcessError) as exc:
        return False, f"'ip netns' unavailable: {exc}"
    return True, ""


@dataclass
class Testbed:
    """The SCU namespace and the SCP namespace with a veth pair between them.

    ``prefix`` names the namespaces (``<prefix>-scu``, ``<prefix>-scp``) so that concurrent
    users (tests, benchmark, CI) do not collide.  Interfaces are created inside the namespaces,
    so their names (``dsr0``/``dsr1``) never clash in the root namespace.
    """

    __test__ = False  # not a pytest test class, whatever its name

    prefix: str = "dsrec"
    mtu: int = 1500
    scu_ip4: str = "192.0.2.1"
    scp_ip4: str = "192.0.2.2"
    scu_ip6: str = "2001:db8::1"
    scp_ip6: str = "2001:db8::2"
    scu_if: str = "dsr0"
    scp_if: str = "dsr1"
    offloads: str = field(default="unknown", init=False)
    _up: bool = field(default=False, init=False)

    def ns(self, side: str) -> str:
        """Namespace name of ``side`` (``"scu"`` or ``"scp"``)."""
        return f"{self.prefix}-{side}"

    def iface(self, side: str) -> str:
        """The veth end inside ``side``'s namespace."""
        return self.scu_if if side == SCU else self.scp_if

    def ip4(self, side: str) -> str:
        return self.scu_ip4 if side == SCU else self.scp_ip4

    def ip6(self, side: str) -> str:
        return self.scu_ip6 if side == SCU else self.scp_ip6

    def cmd(self, side: str, argv: Sequence[str]) -> list[str]:
        """Wrap ``argv`` so that it runs inside ``side``'s namespace."""
        return ["ip", "netns", "exec", self.ns(side), *argv]

    # -- life cycle -------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Remove our namespaces (and processes left in them) from an earlier, crashed run."""
        existing = _ip("netns", "list", check=False).stdout.split()
        for side in (SCU, SCP):
            name = self.ns(side)
            if name not in existing:
                continue
            pids = _ip("netns", "pids", name, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _ip("netns", "del", name, check=False)

    def up(self) -> Testbed:
        """Create both namespaces, the veth pair, addresses; switch offloads off."""
        ok, why = netns_available()
        if not ok:
            raise NetnsError(why)
        self.cleanup()
        self._up = True
        for side in (SCU, SCP):
            _ip("netns", "add", self.ns(side))
        # Created inside the SCU namespace with its peer moved straight into the SCP one.
        _ip("-n", self.ns(SCU), "link", "add", self.scu_if, "mtu", str(self.mtu), "type", "veth",
            "peer", "name", self.scp_if, "mtu", str(self.mtu), "netns", self.ns(SCP))
        for side in (SCU, SCP):
            ns, dev = self.ns(side), self.iface(side)
            _ip("-n", ns, "link", "set", "lo", "up")
            # No link-local address: its DAD and router solicitations would be capture noise.
            _ip("-n", ns, "link", "set", dev, "addrgenmode", "none", check=False)
            _ip("-n", ns, "addr", "add", f"{self.ip4(side)}/24", "dev", dev)
            _ip("-n", ns, "-6", "addr", "add", f"{self.ip6(side)}/64", "dev", dev, "nodad")
            self.offloads = self._offloads_off(side)
            _ip("-n", ns, "link", "set", dev, "up")
        return self

    def _offloads_off(self, side: str) -> str:
        """Disable TSO/GSO/GRO and checksum offload; fall back to a GSO size limit."""
        dev = self.iface(side)
        if shutil.which("ethtool"):
            res = subprocess.run(
                self.cmd(side, ["ethtool", "-K", dev, "rx", "off", "tx", "off", "tso", "off",
                                "gso", "off", "gro", "off"]),
                capture_output=True, text=True, check=False)
            if res.returncode == 0:
                return "ethtool"
        # Without ethtool: cap GSO at one MSS so segments are wire-sized (checksums may be
        # left partial in the capture, which tshark does not check by default).
        _ip("-n", self.ns(side), "link", "set", dev, "gso_max_size", str(self.mtu),
            "gso_max_segs", "1", check=False)
        _ip("-n", self.ns(side), "link", "set", dev, "gro_max_size", str(self.mtu), check=False)
        return "gso-limit"

    def down(self) -> None:
        """Delete both namespaces (which deletes the veth pair too)."""
        if self._up:
            self.cleanup()
            self._up = False

    def __enter__(self) -> Testbed:
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc: object) -> None:
        self.down()


# -- processes inside the namespaces ---------------------------------------------------------


def _listening(pid: int, port: int) -> bool:
    """Whether process ``pid``'s namespace has a TCP socket listening on ``port``.

    Reads ``/proc/<pid>/net/tcp*`` (the view of that process's namespace) rather than
    connecting, so that no probe traffic ends up in the capture.
    """
    want = f":{port:04X}"
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 3 and parts[1].endswith(want) and parts[3] == "0A":
                return True
    return False


def wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float = 15.0) -> None:
    """Block until ``proc`` listens on ``port``; fail early if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NetnsError(f"server {proc.args!r} exited with {proc.returncode} before listening")
        if _listening(proc.pid, port):
            return
        time.sleep(0.05)
    raise NetnsError(f"server {proc.args!r} did not listen on port {port} in {timeout}s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Stop one process we started: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


_STAT_RE = re.compile(r"(\d+) packets? (captured|received by filter|dropped by kernel)")


class Tcpdump:
    """tcpdump on one veth end: started before the peers, stopped with SIGINT after them."""

    def __init__(self, bed: Testbed, out: Path, side: str = SCU, buffer_kib: int = 32768,
                 bpf: str | None = None) -> None:
        self.bed, self.out, self.side = bed, Path(out), side
        # --immediate-mode: without it TPACKET_V3 blocks still in the ring at SIGINT are lost.
        self.argv = ["tcpdump", "-i", bed.iface(side), "-w", str(self.out), "-U",
                     "--immediate-mode", "-s", "0", "-n", "-B", str(buffer_kib)]
        if bpf:
            self.argv.append(bpf)
        self.proc: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None
        self.stats: dict[str, int] = {}

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.append(line.rstrip())
            if "listening on" in line:
                self._ready.set()
        self._ready.set()

    def start(self, timeout: float = 15.0) -> None:
        """Start tcpdump and wait for its 'listening on' line, i.e. until it really captures."""
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.bed.cmd(self.side, self.argv), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            raise NetnsError("tcpdump did not start: " + " | ".join(self._lines))
        # The handle is active once the line is printed; a short pause lets the ring settle.
        time.sleep(0.2)

    def stop(self, settle: float = 0.3) -> dict[str, int]:
        """Let the last segments arrive, SIGINT tcpdump, wait, and parse its counters."""
        if self.proc is None:
            return self.stats
        if self.proc.poll() is None:
            time.sleep(settle)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        for line in self._lines:
            m = _STAT_RE.search(line)
            if m:
                self.stats[m.group(2).replace(" ", "_")] = int(m.group(1))
        self.proc = None
        return self.stats

    def __enter__(self) -> Tcpdump:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
