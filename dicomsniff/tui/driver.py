"""A terminal driver whose output cannot hang the program when the terminal goes away.

textual's ``LinuxDriver`` writes through a thread fed by a bounded queue (textual 8.2:
``drivers/_writer_thread.py``). When the terminal vanishes (tmux session killed, SSH dropped,
the pty closed), the thread's ``write`` raises ``EIO``, the thread dies, the queue fills, and
the next ``put`` blocks for ever: at the latest ``LinuxDriver.close`` -> ``WriterThread.stop``
when the app shuts down, so ``dicomsniff live --tui`` never reaches its summary and never
exits. This driver keeps textual's terminal handling (modes, input, signals) and only replaces
where the bytes go: a writer of its own that notices a dead terminal and drops what follows,
and a shutdown bounded by ``GRACE`` seconds even when the terminal stopped reading.

A terminal can also vanish without the kernel's SIGHUP reaching us (it was not our controlling
terminal, or the hangup went to another process group): then nothing would ever end the app.
A write that fails on the terminal, or its input reporting a hangup (``POLLHUP``; textual's
input thread reads nothing but end-of-file from it for ever), is taken as the hangup it is,
and the process sends itself SIGHUP: ``dicomsniff tui`` ends as on any hangup, ``live --tui``
ends as q does (its SIGHUP handler) and still writes its files and summary. Under ``nohup``
(SIGHUP ignored) the app is asked to exit instead.
"""

from __future__ import annotations

import os
import queue
import select
import signal
import threading
import time
from collections.abc import Callable
from typing import IO

from textual.drivers.linux_driver import LinuxDriver

GRACE = 2.0  # seconds the last screen writes may take once the app is shutting down
QUEUED_WRITES = 30  # as textual's writer: enough to smooth a burst, bounded in memory
_STOP = None


class TerminalWriter(threading.Thread):
    """Writes to the terminal from a thread; never blocks its callers on a dead terminal."""

    def __init__(self, file: IO[str], on_gone: Callable[[], None]) -> None:
        super().__init__(daemon=True, name="dicomsniff-output")
        self._on_gone = on_gone
        self._queue: queue.Queue[str | None] = queue.Queue(QUEUED_WRITES)
        self._file = file
        self.gone = threading.Event()  # the terminal refused a write: drop everything after
        self.deadline: float | None = None  # once set, no write waits beyond it

    def put(self, text: str | None) -> bool:
        """Queue ``text``; False when it was dropped (terminal gone, or past the deadline)."""
        while not self.gone.is_set() and self.is_alive():
            try:
                self._queue.put(text, timeout=0.1)
                return True
            except queue.Full:
                if self.deadline is not None and time.monotonic() > self.deadline:
                    return False
        return False

    def run(self) -> None:
        get, size = self._queue.get, self._queue.qsize
        try:
            while (text := get()) is not _STOP:
                self._file.write(text)
                if size() == 0:
                    self._file.flush()
            self._file.flush()
        except (OSError, ValueError):  # EIO/EPIPE from a vanished terminal, or a closed file
            self.gone.set()
            self._on_gone()

    def stop(self, grace: float = GRACE) -> None:
        """Write what is queued, then end; returns within about ``grace`` seconds."""
        if self.deadline is None:
            self.deadline = time.monotonic() + grace
        self.put(_STOP)
        self.join(max(0.0, self.deadline - time.monotonic()))


class TerminalDriver(LinuxDriver):
    """``LinuxDriver`` with a :class:`TerminalWriter` for its output."""

    writer: TerminalWriter | None = None
    _hung_up = False
    _watching = threading.Event()  # replaced by one per application mode

    def start_application_mode(self) -> None:
        # also called again on SIGCONT (textual's auto-restart): keep a writer that still works
        if self.writer is None or not self.writer.is_alive():
            self.writer = TerminalWriter(self._file, self.hang_up)
            self.writer.start()
        super().start_application_mode()
        self._watching.clear()  # a watcher of an earlier application mode ends
        self._watching = threading.Event()
        self._watching.set()
        threading.Thread(target=self._watch, args=(self._watching,), daemon=True,
                         name="dicomsniff-hangup").start()

    def _watch(self, watching: threading.Event) -> None:
        """Until application mode ends: a hangup on the terminal's input is a hangup."""
        poller = select.poll()
        poller.register(self.fileno, select.POLLHUP)  # POLLERR and POLLNVAL come anyway
        while watching.is_set():
            if poller.poll(250):
                self.hang_up()
                return

    def hang_up(self) -> None:
        """The terminal failed while the app runs: end as on the kernel's SIGHUP (once; not
        while shutting down, when a failed write only means the screen is not restored)."""
        if self._hung_up or (self.writer is not None and self.writer.deadline is not None):
            return
        self._hung_up = True
        if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:  # nohup: no signal will end us,
            try:  # but there is no terminal to show anything on either
                self._app.call_from_thread(self._app.exit)
            except RuntimeError:  # the app is not running (any more)
                pass
            return
        os.kill(os.getpid(), signal.SIGHUP)

    def write(self, data: str) -> None:
        if self.writer is not None:
            self.writer.put(data)

    def stop_application_mode(self) -> None:
        # From here on (leaving the alternate screen, restoring modes) a write may wait only
        # until the grace period ends: a terminal that stopped reading cannot hold us.
        if self.writer is not None and self.writer.deadline is None:
            self.writer.deadline = time.monotonic() + GRACE
        self._watching.clear()
        super().stop_application_mode()

    def close(self) -> None:
        # textual's own writer thread was never given anything to write: stopping it cannot
        # block. Ours is stopped within the grace period.
        super().close()
        if self.writer is not None:
            self.writer.stop()
            self.writer = None
