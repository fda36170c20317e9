"""The live pipeline: a capture (helper process or replayed file), the ``-w`` files and the
analyzer, driven from :meth:`LiveRun.start` to the end of :meth:`LiveRun.capture_packets`.

Whatever shows it (``dicomsniff live``'s lines or JSON Lines, the TUI) builds a
:class:`LiveOptions` and a :class:`LiveRun`; nothing here knows about argparse or the terminal
beyond one-line notes on stderr.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_DAMAGED = 3


@dataclass(frozen=True)
class LiveOptions:
    """What to capture, what to write and when to stop (``dicomsniff live``'s options).

    ``interface`` or ``read`` (a file or '-'), not both. ``limits`` and ``rules``: the default
    analyzer's (None: the engine's defaults); ``tls_keylog``: the KeyLog it decrypts TLS with
    (``--tls-keylog``)."""

    interface: str | None = None
    read: str | None = None
    port: Sequence[int] = ()
    host: Sequence[str] = ()
    bpf: str | None = None
    helper: str = "auto"
    buffer_size: int = 256  # MiB
    count: int | None = None
    duration: float | None = None
    write: str | None = None
    rotate_size: int | None = None
    rotate_time: float | None = None
    ring: int | None = None
    limits: Any = None
    rules: Any = None
    tls_keylog: Any = None


def _cpu() -> dict[str, float]:
    """CPU used by us and by the (waited-for) capture helper: did the capture keep up cheaply?"""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"dicomsniff": round(me.ru_utime + me.ru_stime, 3),
            "helper": round(kids.ru_utime + kids.ru_stime, 3)}


class LiveRun:
    """The capture side of one ``dicomsniff live``, whatever shows it (lines, JSON Lines or
    the TUI): the capture helper (or ``-r``), the ``-w`` files and the analyzer, driven from
    :meth:`start` to the end of :meth:`capture_packets`, which leaves the files closed and the
    analyzer finished.

    ``analyzer``: the one to feed (default: an Analyzer with the limits and rules options).
    ``quiet``: say nothing on stderr once capturing (the TUI owns the terminal then); kernel
    drops and a failing file are findings anyway. ``wrap``: run the helper through this
    command (``ip netns exec NS``: tests).
    """

    def __init__(self, options: LiveOptions, *, analyzer: Any = None, quiet: bool = False,
                 wrap: Sequence[str] = ()) -> None:
        from ..analysis.engine import Analyzer
        from ..sources.capwriter import CaptureWriter
        from ..sources.helper import HelperCapture
        from ..sources.interfaces import build_filter, is_ethernet
        from ..sources.replay import ReplayCapture

        self.options = opts = options
        self.quiet = quiet
        if analyzer is None:
            analyzer = Analyzer(ports=opts.port, limits=opts.limits, keep=False,
                                rules=opts.rules, tls_keylog=opts.tls_keylog)
        self.analyzer = analyzer
        self.bpf = ""
        self.capture: HelperCapture | ReplayCapture
        if opts.read:
            self.capture = ReplayCapture(opts.read, count=opts.count)
        else:
            self.bpf = build_filter(ports=opts.port, hosts=opts.host, bpf=opts.bpf,
                                    vlan=not wrap and is_ethernet(opts.interface))
            self.capture = HelperCapture(opts.interface, self.bpf, helper=opts.helper,
                                         count=opts.count, buffer_mib=opts.buffer_size,
                                         wrap=wrap)
        self.writer = None if not opts.write else CaptureWriter(
            opts.write, rotate_size=opts.rotate_size, rotate_time=opts.rotate_time,
            ring=opts.ring, interface=opts.interface)
        self.write_error: str | None = None
        self.reported_drops = 0
        self.started = False
        self.ticker: Any = None
        self.on_frames: Callable[[int], None] | None = None
        # set by capture_packets():
        self.frame = 0
        self.kernel: Any = None  # CaptureStats once the helper is gone
        self.failure: str | None = None
        self.forced = False
        self.files: list[Any] = []
        self.elapsed = 0.0

    def _say(self, line: str) -> None:
        if not self.quiet:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def start(self) -> None:
        """Open the first file, then start capturing (each raises LiveError: exit 2)."""
        if self.writer is not None:
            self.writer.open()
        self.capture.start()
        self.started = True
        opts = self.options
        if opts.read:
            note = "dicomsniff: reading " + ("standard input" if opts.read == "-" else opts.read)
        else:
            note = (f"dicomsniff: capturing on {opts.interface} with {self.capture.name}, "
                    f"filter '{self.bpf}'")
        if self.writer is not None:
            note += f", writing {self.writer.files[-1].path}" + (
                " (rotating)" if self.writer.rotating else "")
        if self.quiet:  # the TUI comes next: stopping is its q
            sys.stderr.write(note + "\n")
        else:
            sys.stderr.write(note + ("; Ctrl-C to stop\n" if opts.interface else "\n"))
        sys.stderr.flush()

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.discard()

    def stop(self, now: bool = False) -> None:
        """Ask the capture to end (any thread): what was seen before is still analysed."""
        self.capture.stop(now=now)

    @property
    def single_file(self) -> str | None:
        """The ``-w`` file whose frame numbers are the analyzer's (not rotating), if any."""
        if self.writer is None or self.writer.rotating:
            return None
        return str(self.writer.base)

    # -- while running (on the analysis thread) -----------------------------------------------
    def check_drops(self, frame: int) -> None:
        """Between packets (every few thousand, and at the end): the kernel's drops as a
        finding."""
        dropped = self.capture.stats.dropped
        if dropped is not None and dropped > self.reported_drops:
            self.analyzer.capture_finding(
                "warning", "CAPTURE-KERNEL-DROPS",
                f"the kernel dropped {dropped - self.reported_drops} packets ({dropped} so "
                "far): the capture fell behind the traffic, so reassembly has gaps (raise "
                "--buffer-size, narrow with --port/--host)", frame or None)
            self.reported_drops = dropped

    @staticmethod
    def drops_now(new: int, total: int) -> None:
        """On the ticker's thread, so stderr only: drops show even if no packet follows."""
        sys.stderr.write(f"dicomsniff: the kernel dropped {new} packets ({total} so far): the "
                         "capture is falling behind\n")
        sys.stderr.flush()

    def cannot_write(self, message: str) -> None:
        """The file failed (disk full...): say so once; the analysis goes on."""
        if self.write_error is not None:
            return
        self.write_error = message
        self.analyzer.capture_finding("error", "CAPTURE-WRITE-FAILED",
                                      f"{message}: the capture file stops here",
                                      self.analyzer.stats.frames or None)
        self._say(f"dicomsniff live: {message}; the analysis goes on without the file")

    def _progress(self, frame: int) -> None:
        self.check_drops(frame)
        if self.on_frames is not None:
            self.on_frames(frame)

    def _idle(self) -> None:
        """No packet waiting: hand the file its packets; tell the TUI the frame count."""
        from ..sources.interfaces import LiveError

        if self.writer is not None and self.write_error is None:
            try:
                self.writer.flush()
            except LiveError as exc:
                self.cannot_write(str(exc))
        if self.on_frames is not None:
            frame = self.capture.packets_read
            self.check_drops(frame)
            self.on_frames(frame)

    def capture_packets(self, on_frames: Callable[[int], None] | None = None,
                        every: int = 4096) -> None:
        """Analyse until the capture ends (see :meth:`stop`), then report what is still open
        and close the files. ``on_frames(count)``, on this thread, every ``every`` packets
        and whenever the capture waits for more. Sets frame, kernel, failure, forced, files,
        elapsed; never raises LiveError (a failing file is ``write_error``)."""
        from ..analysis.run import SUPPORTED_LINKTYPES
        from ..sources.capture import linktype_name
        from ..sources.capwriter import tee
        from ..sources.helper import HelperCapture, Ticker
        from ..sources.interfaces import LiveError

        capture, analyzer, writer = self.capture, self.analyzer, self.writer
        self.on_frames = on_frames
        ticker = self.ticker = Ticker(capture if isinstance(capture, HelperCapture) else None,
                                      duration=self.options.duration,
                                      on_drops=None if self.quiet else self.drops_now)
        ticker.start()
        t0 = time.monotonic()
        packets = capture.packets()
        if writer is not None:
            packets = tee(packets, writer, self.cannot_write)
        if writer is not None or on_frames is not None:
            capture.when_idle(self._idle)
        frame = 0
        try:
            try:
                frame = analyzer.consume(packets, progress=self._progress, every=every)
            except KeyboardInterrupt:  # the third signal
                self.forced = True
                capture.kill()
                frame = analyzer.stats.frames
            finally:
                ticker.stop()
                self.kernel = capture.close()
            analyzer.stats.frames = frame
            analyzer.stats.bytes = capture.bytes_read
            if not self.forced:
                self.check_drops(0)
            for lt in sorted(analyzer.linktypes - SUPPORTED_LINKTYPES):
                analyzer.capture_finding("warning", "CAPTURE-LINKTYPE",
                                         f"frames with unsupported link type {lt} "
                                         f"({linktype_name(lt)}) were skipped", None)
            self.failure = failure = capture.failure() or capture.reader_error
            if failure:
                analyzer.capture_finding("error", "CAPTURE-DAMAGED" if capture.reader_error
                                         else "CAPTURE-STOPPED", failure, frame or None)
            analyzer.finish()
        finally:
            if writer is not None:
                try:
                    self.files = writer.close(capture.stats, capture.linktype)
                except LiveError as exc:
                    self.write_error = self.write_error or str(exc)
            self.frame = frame
            self.elapsed = time.monotonic() - t0

    # -- the end ----------------------------------------------------------------------------
    def record(self, signal_name: str | None, counts: dict[str, Any]) -> dict[str, Any]:
        """The summary record (``--json``'s last line) of a finished capture."""
        opts = self.options
        if signal_name:
            stopped_by = signal_name
        elif self.ticker is not None and self.ticker.expired:
            stopped_by = "duration"
        elif opts.count and self.frame >= opts.count:
            stopped_by = "count"
        elif opts.read:
            stopped_by = "end of input"
        else:
            stopped_by = "the capture helper exiting"
        st = self.analyzer.stats
        kernel = self.kernel if self.kernel is not None else self.capture.stats
        return {
            "frames": self.frame, "bytes": st.bytes, **counts,
            "findings_dropped": st.findings_dropped,
            "ignored_connections": st.ignored_connections, "evicted_connections": st.evicted,
            "capture_error": self.failure or None, "interrupted": self.forced,
            "interface": opts.interface or opts.read, "filter": self.bpf or None,
            "capture_helper": self.capture.name, "kernel": kernel.to_record(),
            "elapsed": round(self.elapsed, 3), "stopped_by": stopped_by,
            "files": [f.__dict__ for f in self.files],
            "files_deleted": self.writer.deleted if self.writer is not None else 0,
            "file_error": self.write_error,
            "cpu_seconds": _cpu(),
        }

    def one_line(self, rec: dict[str, Any]) -> str:
        """The summary on one stderr line (with --json, whose stdout is for tools)."""
        k = rec["kernel"]["dropped"]
        return (f"dicomsniff: {rec['frames']} packets, {rec['associations']} associations, "
                f"{rec['transactions']} transactions, {rec['findings']} findings; kernel "
                f"dropped {'?' if k is None else k}"
                + "".join(f"; wrote {f.path}" for f in self.files) + "\n")

    def exit_code(self) -> int:
        """0, or 3 with one line on stderr when the capture or its file failed part-way."""
        problem = None
        if self.failure:
            problem = f"the capture ended early: {self.failure}"
        elif self.write_error:
            problem = f"the capture file is incomplete: {self.write_error}"
        if problem is None:
            return EXIT_OK
        sys.stderr.write(f"dicomsniff live: {problem}\n")
        sys.stderr.flush()
        return EXIT_DAMAGED
