"""One recording: the peers' processes, their logs, and tcpdump around the client runs.

Scenarios use :class:`Session` to start servers in the SCP namespace (waiting until they
listen), run clients in the SCU namespace, and capture only the client phase, so the pcap
holds the DICOM exchange and nothing of the setup.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .netns import SCP, SCU, NetnsError, Tcpdump, Testbed, stop_process, wait_listening

PND_PEERS = Path(__file__).with_name("pnd_peers.py")


class PeerError(RuntimeError):
    """A peer exited unexpectedly; the message carries the tail of its log."""


class Session:
    """Processes and capture of one scenario run inside a :class:`Testbed`."""

    def __init__(self, bed: Testbed, work: Path, pcap: Path, *, nodelay: bool = False,
                 buffer_kib: int = 32768) -> None:
        self.bed, self.work, self.pcap = bed, work, pcap
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        # dcmtk reads TCP_NODELAY from the environment; Nagle stays on unless asked, as in a
        # default install (it splits PDU headers from their bodies, which analyzers must handle).
        self.env = dict(os.environ, TCP_NODELAY="1" if nodelay else "0")
        self.nodelay = nodelay
        self.buffer_kib = buffer_kib
        self.servers: list[subprocess.Popen[bytes]] = []
        self.tcpdump_stats: dict[str, int] = {}

    # -- processes ----------------------------------------------------------------------------

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def read_log(self, name: str) -> str:
        return self.log(name).read_text(errors="replace")

    def _popen(self, name: str, argv: Sequence[str], side: str,
               cwd: Path | None) -> subprocess.Popen[bytes]:
        fh = open(self.log(name), "wb")  # noqa: SIM115 - handed to the child, closed on exit
        try:
            return subprocess.Popen(self.bed.cmd(side, [str(a) for a in argv]), stdout=fh,
                                    stderr=subprocess.STDOUT, env=self.env,
                                    cwd=cwd or self.work)
        finally:
            fh.close()

    def server(self, name: str, argv: Sequence[str | int | Path], port: int | Sequence[int],
               side: str = SCP, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start a server and return once it listens on every port in ``port``."""
        proc = self._popen(name, [str(a) for a in argv], side, cwd)
        self.servers.append(proc)
        try:
            for p in [port] if isinstance(port, int) else port:
                wait_listening(proc, p)
        except NetnsError as exc:
            raise PeerError(f"{name}: {exc}\n{self._tail(name)}") from exc
        return proc

    def start(self, name: str, argv: Sequence[str | int | Path], side: str = SCU,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start a client without waiting (for concurrent associations)."""
        return self._popen(name, [str(a) for a in argv], side, cwd)

    def wait(self, name: str, proc: subprocess.Popen[bytes], timeout: float = 3600,
             ok: Sequence[int] = (0,)) -> str:
        """Wait for a client; raise with its log if the exit code is unexpected."""
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(proc)
            raise PeerError(f"{name}: timed out after {timeout}s\n{self._tail(name)}") from None
        if rc not in ok:
            raise PeerError(f"{name}: exit code {rc} (expected {list(ok)})\n{self._tail(name)}")
        return self.read_log(name)

    def client(self, name: str, argv: Sequence[str | int | Path], side: str = SCU,
               timeout: float = 3600, ok: Sequence[int] = (0,), cwd: Path | None = None) -> str:
        """Run a client to completion and return its log."""
        return self.wait(name, self.start(name, argv, side, cwd), timeout, ok)

    def python(self, role: str, *args: str | int | Path) -> list[str]:
        """argv for a pynetdicom peer from :mod:`captures.pnd_peers`."""
        argv = [sys.executable, str(PND_PEERS), role, *map(str, args)]
        if self.nodelay:
            argv.insert(2, "--nodelay")
        return argv

    def stop_servers(self) -> None:
        """SIGTERM every server this session started (by pid)."""
        while self.servers:
            stop_process(self.servers.pop())

    def _tail(self, name: str, lines: int = 25) -> str:
        try:
            return "\n".join(self.read_log(name).splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- capture ------------------------------------------------------------------------------

    @contextmanager
    def capture(self, side: str = SCU, pcap: Path | None = None) -> Iterator[Tcpdump]:
        """tcpdump on the veth around the block; the counters land in ``tcpdump_stats``."""
        td = Tcpdump(self.bed, pcap or self.pcap, side=side, buffer_kib=self.buffer_kib)
        td.start()
        try:
            yield td
        finally:
            self.tcpdump_stats = td.stop()

    # -- addresses ----------------------------------------------------------------------------

    @property
    def scp_ip(self) -> str:
        return self.bed.ip4(SCP)

    @property
    def scu_ip(self) -> str:
        return self.bed.ip4(SCU)

    def endpoint(self, requestor: str, ipv6: bool = False) -> dict[str, Any]:
        """Requestor/acceptor addresses of an association opened from ``requestor``'s side."""
        acceptor = SCP if requestor == SCU else SCU
        addr = self.bed.ip6 if ipv6 else self.bed.ip4
        return {"requestor": addr(requestor), "acceptor": addr(acceptor)}
