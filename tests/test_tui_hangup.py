"""The TUI when its terminal goes away (tmux session killed, SSH dropped, pty closed).

textual's writer thread dies on the first write to a vanished terminal; its queue then fills
and ``LinuxDriver.close`` blocked for ever in ``WriterThread.stop``, so ``live --tui`` never
wrote its summary nor exited. A terminal that is not the controlling one hangs up without any
SIGHUP, and the app never learned of it. ``dicomsniff.tui.driver`` bounds both.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from dicomsniff.sources.capture import CaptureReader
from dicomsniff.tui.driver import QUEUED_WRITES, TerminalWriter

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"
ENV = dict(os.environ, TERM="xterm-256color", PYTHONPATH=os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
for _k in ("COLUMNS", "LINES"):
    ENV.pop(_k, None)


class Pty:
    """``python -m dicomsniff ARGS`` on a pty of its own (not its controlling terminal, so
    closing it sends no SIGHUP), standard output to ``stdout`` (None: the pty too); the
    screen is read from the master side until :meth:`hang_up` closes it."""

    def __init__(self, args: list[str], stdout: Path | None, nohup: bool = False) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
        out = slave if stdout is None else os.open(stdout, os.O_WRONLY | os.O_CREAT, 0o644)
        # SIGHUP as a terminal leaves it (or ignored, as nohup does), whatever the test run's
        sighup = signal.SIG_IGN if nohup else signal.SIG_DFL
        self.proc = subprocess.Popen([sys.executable, "-m", "dicomsniff", *args],
                                     stdin=slave, stderr=slave, stdout=out, env=ENV, cwd=ROOT,
                                     start_new_session=True,
                                     preexec_fn=lambda: signal.signal(signal.SIGHUP, sighup))
        os.close(slave)
        if out != slave:
            os.close(out)
        self.seen = bytearray()
        self._reading = True
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # never blocked inside read(): a master closed while a read is pending stays open
        while self._reading:
            if select.select([self.master], [], [], 0.05)[0]:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    return
                if not data:
                    return
                self.seen.extend(data)

    def wait_for(self, text: bytes, timeout: float = 30.0) -> None:
        t0 = time.monotonic()
        while text not in self.seen:
            assert self.proc.poll() is None, f"exited {self.proc.returncode} before {text!r}"
            assert time.monotonic() - t0 < timeout, f"{text!r} never appeared"
            time.sleep(0.05)

    def hang_up(self) -> float:
        self._reading = False
        self._reader.join()
        os.close(self.master)
        return time.monotonic()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def frames_in(path: Path) -> int:
    r = CaptureReader(path)
    n = sum(1 for _ in r)
    assert r.error is None, r.error
    return n


def test_live_tui_ends_with_its_summary_when_the_terminal_is_closed(tmp_path: Path) -> None:
    out, summary = tmp_path / "w.pcapng", tmp_path / "summary.txt"
    term = Pty(["live", "--tui", "-r", str(CAPTURES / "move.pcap"), "-w", str(out)], summary)
    try:
        term.wait_for(b"MOVESCU")
        t0 = term.hang_up()
        code = term.proc.wait(timeout=20)
        took = time.monotonic() - t0
    finally:
        term.kill()
    assert code == 0
    assert took < 5, f"{took:.1f} s to notice the terminal was gone"
    text = summary.read_text()
    assert "2 association(s) (2 released)" in text and f"wrote {out} (150 packets" in text
    assert frames_in(out) == 150


def test_live_tui_summary_to_the_closed_terminal_is_no_error(tmp_path: Path) -> None:
    out = tmp_path / "w.pcapng"
    term = Pty(["live", "--tui", "-r", str(CAPTURES / "move.pcap"), "-w", str(out)], None)
    try:
        term.wait_for(b"MOVESCU")
        term.hang_up()
        code = term.proc.wait(timeout=20)
    finally:
        term.kill()
    assert code == 0  # the run went well; only its summary had nowhere to go
    assert frames_in(out) == 150


@pytest.mark.parametrize("nohup", [False, True])
def test_tui_ends_when_the_terminal_is_closed(tmp_path: Path, nohup: bool) -> None:
    term = Pty(["tui", str(CAPTURES / "move.pcap")], tmp_path / "stdout.txt", nohup)
    try:
        term.wait_for(b"MOVESCU")
        t0 = term.hang_up()
        code = term.proc.wait(timeout=20)
        took = time.monotonic() - t0
    finally:
        term.kill()
    assert code == (0 if nohup else -signal.SIGHUP)  # as any program on a hangup
    assert took < 5, f"{took:.1f} s to notice the terminal was gone"


# -- the writer on its own ----------------------------------------------------------------------


class DeadTerminal:
    """A terminal that went away: every write is EIO."""

    writes = 0

    def write(self, text: str) -> None:
        self.writes += 1
        raise OSError(5, "Input/output error")

    def flush(self) -> None:
        raise OSError(5, "Input/output error")


class StuckTerminal:
    """A terminal that stopped reading: a write never returns."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def write(self, text: str) -> None:
        self.release.wait()

    def flush(self) -> None:
        pass


def test_writes_to_a_dead_terminal_never_block_and_stop_returns() -> None:
    hung_up = threading.Event()
    dead = DeadTerminal()
    w = TerminalWriter(dead, hung_up.set)  # type: ignore[arg-type]
    w.start()
    t0 = time.monotonic()
    for _ in range(1000):  # textual's writer blocked for ever after 30 of these
        w.put("\x1b[2J frame")
    w.stop(grace=1.0)
    assert time.monotonic() - t0 < 3
    assert dead.writes == 1 and w.gone.is_set() and hung_up.is_set()
    assert not w.is_alive()


def test_stop_is_bounded_when_the_terminal_stopped_reading() -> None:
    stuck = StuckTerminal()
    w = TerminalWriter(stuck, lambda: None)  # type: ignore[arg-type]
    w.start()
    queued = []

    def fill() -> None:  # one frame in the write that never returns, then a full queue
        while w.put("frame"):
            queued.append(1)

    filler = threading.Thread(target=fill, daemon=True)
    filler.start()
    t0 = time.monotonic()
    while len(queued) < QUEUED_WRITES + 1:
        assert time.monotonic() - t0 < 10
        time.sleep(0.01)
    t0 = time.monotonic()
    w.stop(grace=0.5)
    filler.join(2)  # its blocked put gave up at the deadline too
    assert time.monotonic() - t0 < 2.5 and not filler.is_alive()
    assert len(queued) == QUEUED_WRITES + 1
    stuck.release.set()
