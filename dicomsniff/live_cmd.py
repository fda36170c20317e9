"""``dicomsniff live -i IFACE``: the DICOM story of an interface as it happens.

The capture helper (tcpdump or dumpcap, see :mod:`dicomsniff.sources.live`) writes pcap to a
pipe; the same reader, reassembler and analyzer as ``analyze`` consume it; each association,
transaction and finding is printed (or written as JSON Lines) the moment it is known. Stopping
(Ctrl-C, SIGTERM, ``--duration``, ``--count``) always goes the same way: the helper is asked to
finish, the pipe is read to its end, open associations are reported as they stand, the files are
closed complete, and a summary with the kernel's drop count closes the output.

Imports stay light at the top: this module is loaded each time ``dicomsniff`` starts.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

EXIT_OK = 0
EXIT_UNUSABLE = 2
EXIT_DAMAGED = 3

LIVE_EPILOG = """\
examples:
  dicomsniff live -i eth0
      one line per association, transaction (coloured by status) and finding, as they happen
  dicomsniff live -i eth0 --port 104 --host 10.1.2.3 --ae CT_SCANNER
      only that port and host (kernel filter: the rest costs nothing) and that AE title
  dicomsniff live -i eth0 --json | jq -c 'select(.type == "transaction")'
      JSON Lines (the records of 'analyze --json'), flushed as they happen
  dicomsniff live -i eth0 -w night.pcapng --rotate-size 100MB --ring 10
      also keep the packets: the newest 10 files of 100 MB each
  dicomsniff live -i eth0 --duration 10m -w ct.pcap
      stop by itself after ten minutes (or --count N packets)
  ssh pacs sudo tcpdump -i eth0 -U -w - port 104 | dicomsniff live -r -
      the live view of a capture made elsewhere
  dicomsniff live -i eth0 --port 104 --tui -w today.pcapng
      browse the associations as they happen (ladders, findings, data sets); q stops

Ctrl-C or SIGTERM stops: the summary shows what was seen and the packets the kernel dropped,
and the files are closed complete.
Capturing needs root, or capabilities for the helper:
  sudo setcap cap_net_raw,cap_net_admin=eip /usr/bin/dumpcap   (or join the wireshark group)

exit status: 0 capture ended as asked; 2 cannot capture (permission, interface, filter, file) or
bad usage; 3 the capture, or writing its file, failed part-way (what came before is reported).
"""


def _size(text: str) -> int:
    from .sources.live import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _duration(text: str) -> float:
    from .sources.live import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(subparsers: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Add ``live`` to the command line (called by :func:`dicomsniff.cli.build_parser`)."""
    from .cli import _port, _positive_int, add_limit_options, add_rule_options

    p = subparsers.add_parser(
        "live", help="watch DICOM on a network interface as it happens",
        description="Capture on an interface and print each association, DIMSE transaction "
                    "and finding as it completes (or JSON Lines with --json), optionally "
                    "writing the packets to rotating capture files.",
        epilog=LIVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("what to capture")
    src.add_argument("-i", "--interface", metavar="IFACE",
                     help="network interface to capture on ('any' for all)")
    src.add_argument("-r", "--read", metavar="FILE",
                     help="instead of capturing, read a capture file or '-' (a pcap stream on "
                          "standard input, e.g. from 'tcpdump -U -w -')")
    src.add_argument("--port", type=_port, action="append", default=[], metavar="PORT",
                     help="capture only this TCP port, and treat it as DICOM (repeatable)")
    src.add_argument("--host", action="append", default=[], metavar="HOST",
                     help="capture only traffic to or from this address, name or network "
                          "(CIDR) (repeatable)")
    src.add_argument("--bpf", metavar="EXPR",
                     help="also require this BPF (tcpdump) filter expression")
    src.add_argument("--ae", action="append", default=[], metavar="AE",
                     help="show only associations with this calling or called AE title; "
                          "judged after decoding, so it does not reduce the capture "
                          "(repeatable, case-insensitive)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true",
                     help="stream JSON Lines (the records of 'analyze --json') instead of lines")
    out.add_argument("--tui", action="store_true",
                     help="browse it in the interactive view ('dicomsniff tui', fed as packets "
                          "arrive; q stops the capture); with -w FILE the data sets and bytes "
                          "of every message can be shown too")
    out.add_argument("-w", "--write", metavar="FILE",
                     help="also write the packets to FILE (.pcapng for pcapng, else pcap)")
    out.add_argument("--rotate-size", type=_size, metavar="SIZE",
                     help="start a new file when this size is reached (e.g. 100MB, 1GiB)")
    out.add_argument("--rotate-time", type=_duration, metavar="TIME",
                     help="start a new file after this long (e.g. 30m, 1h)")
    out.add_argument("--ring", type=_positive_int, metavar="N",
                     help="keep only the newest N files (with --rotate-size/--rotate-time)")
    stop = p.add_argument_group("when to stop (default: Ctrl-C or SIGTERM)")
    stop.add_argument("--duration", type=_duration, metavar="TIME",
                      help="stop after this long (e.g. 90s, 10m, 2h)")
    stop.add_argument("--count", type=_positive_int, metavar="N",
                      help="stop after N packets")
    cap = p.add_argument_group("capture helper")
    cap.add_argument("--helper", choices=("auto", "tcpdump", "dumpcap"), default="auto",
                     help="program that reads the interface (default: tcpdump as root, else "
                          "dumpcap, then the other)")
    cap.add_argument("--buffer-size", type=_positive_int, default=256, metavar="MiB",
                     help="kernel capture buffer: what absorbs a fast transfer while the "
                          "analysis catches up (default 256; kernel memory while capturing)")
    add_limit_options(p, "limits (the analysis' memory stays bounded however long it runs)")
    add_rule_options(p)
    p.set_defaults(handler=cmd_live)


def _fail(message: str, code: int = EXIT_UNUSABLE) -> int:
    sys.stderr.write(f"dicomsniff live: {message}\n")
    sys.stderr.flush()
    return code


def _usage(args: argparse.Namespace) -> str | None:
    """Option combinations argparse cannot check; None when all is well."""
    if bool(args.interface) == bool(args.read):
        return "give an interface (-i IFACE) or a capture to read (-r FILE)"
    if args.write == "-":
        return "-w - is not possible here (standard output carries the report); give a file"
    if (args.rotate_size or args.rotate_time) and not args.write:
        return "--rotate-size/--rotate-time need -w FILE"
    if args.ring and not (args.rotate_size or args.rotate_time):
        return "--ring needs --rotate-size or --rotate-time"
    if args.read and (args.port or args.host or args.bpf):
        return "--port/--host/--bpf filter a capture; with -r filter it where it is made"
    if args.tui and args.json:
        return "--tui and --json are two different outputs: choose one"
    if args.tui and args.read == "-":
        return "--tui reads the keyboard on standard input, so it cannot read a capture there"
    return None


class _Stopper:
    """SIGINT/SIGTERM/SIGHUP: the first asks the helper to finish once the last packets are
    handed over (everything is still read and reported); a second stops it at once; a third
    kills it and interrupts us. ``asked``: a stop was already requested (after the TUI)."""

    def __init__(self, capture: Any, asked: bool = False) -> None:
        self.capture = capture
        self.reason: str | None = None
        self.signals = 1 if asked else 0
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._old[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _handle(self, signum: int, _frame: Any) -> None:
        import signal

        self.signals += 1
        if self.signals == 1:
            self.reason = signal.Signals(signum).name
            self.capture.stop()
            grace = getattr(self.capture, "grace", 0)
            if grace and sys.stderr.isatty():
                sys.stderr.write(f"\ndicomsniff: stopping once the kernel has handed over the "
                                 f"last packets (about {grace:.0f} s; Ctrl-C again: now)\n")
        elif self.signals == 2:
            self.capture.stop(now=True)
        else:
            self.capture.kill()
            raise KeyboardInterrupt


def _cpu() -> dict[str, float]:
    """CPU used by us and by the (waited-for) capture helper: did the capture keep up cheaply?"""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"dicomsniff": round(me.ru_utime + me.ru_stime, 3),
            "helper": round(kids.ru_utime + kids.ru_stime, 3)}


def cmd_live(args: argparse.Namespace) -> int:
    problem = _usage(args)
    if problem:
        return _fail(problem)
    if args.tui:
        return _cmd_tui(args)
    from .sources.live import LiveError

    run = LiveRun(args)
    lines = _LineOutput(run)
    try:
        run.start()
    except LiveError as exc:
        run.discard()
        return _fail(str(exc))
    return lines.run()


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

    def __init__(self, args: argparse.Namespace, *, analyzer: Any = None, quiet: bool = False,
                 wrap: Sequence[str] = ()) -> None:
        from .analysis.engine import Analyzer
        from .cli import limits_from, rules_from
        from .sources.live import (
            CaptureWriter,
            HelperCapture,
            ReplayCapture,
            build_filter,
            is_ethernet,
        )

        self.args = args
        self.quiet = quiet
        if analyzer is None:
            analyzer = Analyzer(ports=args.port, limits=limits_from(args), keep=False,
                                rules=rules_from(args))
        self.analyzer = analyzer
        self.bpf = ""
        self.capture: HelperCapture | ReplayCapture
        if args.read:
            self.capture = ReplayCapture(args.read, count=args.count)
        else:
            self.bpf = build_filter(ports=args.port, hosts=args.host, bpf=args.bpf,
                                    vlan=not wrap and is_ethernet(args.interface))
            self.capture = HelperCapture(args.interface, self.bpf, helper=args.helper,
                                         count=args.count, buffer_mib=args.buffer_size,
                                         wrap=wrap)
        self.writer = None if not args.write else CaptureWriter(
            args.write, rotate_size=args.rotate_size, rotate_time=args.rotate_time,
            ring=args.ring, interface=args.interface)
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
        args = self.args
        if args.read:
            note = "dicomsniff: reading " + ("standard input" if args.read == "-" else args.read)
        else:
            note = (f"dicomsniff: capturing on {args.interface} with {self.capture.name}, "
                    f"filter '{self.bpf}'")
        if self.writer is not None:
            note += f", writing {self.writer.files[-1].path}" + (
                " (rotating)" if self.writer.rotating else "")
        if self.quiet:  # the TUI comes next: stopping is its q
            sys.stderr.write(note + "\n")
        else:
            sys.stderr.write(note + ("; Ctrl-C to stop\n" if args.interface else "\n"))
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
        from .sources.live import LiveError

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
        from .analysis.run import SUPPORTED_LINKTYPES
        from .sources.capture import linktype_name
        from .sources.live import HelperCapture, LiveError, Ticker, tee

        capture, analyzer, writer = self.capture, self.analyzer, self.writer
        self.on_frames = on_frames
        ticker = self.ticker = Ticker(capture if isinstance(capture, HelperCapture) else None,
                                      duration=self.args.duration,
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
        args = self.args
        if signal_name:
            stopped_by = signal_name
        elif self.ticker is not None and self.ticker.expired:
            stopped_by = "duration"
        elif args.count and self.frame >= args.count:
            stopped_by = "count"
        elif args.read:
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
            "interface": args.interface or args.read, "filter": self.bpf or None,
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
        if self.failure:
            return _fail(f"the capture ended early: {self.failure}", EXIT_DAMAGED)
        if self.write_error:
            return _fail(f"the capture file is incomplete: {self.write_error}", EXIT_DAMAGED)
        return EXIT_OK


class _LineOutput:
    """``dicomsniff live`` without --tui: one line (or JSON record) per event, then the
    summary."""

    def __init__(self, run: LiveRun) -> None:
        from rich.console import Console

        from .report.live import ConsoleOutput, JsonOutput, LiveFeed

        args = self.args = run.args
        self.run_ = run
        self.output: ConsoleOutput | JsonOutput
        if args.json:
            self.output = JsonOutput(sys.stdout)
        else:
            self.output = ConsoleOutput(Console(file=sys.stdout, highlight=False,
                                                soft_wrap=True,
                                                width=None if sys.stdout.isatty() else 160))
        self.feed = LiveFeed(run.analyzer, self.output, ae=args.ae)

    def run(self) -> int:
        run = self.run_
        stopper = _Stopper(run.capture)
        stopper.install()
        try:
            run.capture_packets()
        finally:
            stopper.restore()
        rec = run.record(stopper.reason, self.feed.counts())
        if self.feed.ae:
            rec["ae_filter"] = sorted(self.feed.ae)
            rec["ignored_associations"] = self.feed.ignored
        self.output.summary(rec, self.feed.summary.table())
        if self.args.json:
            sys.stderr.write(run.one_line(rec))
        return run.exit_code()


# -- --tui -------------------------------------------------------------------------------------


def _ae_filter(titles: Sequence[str]) -> str:
    """--ae as the TUI's initial filter (the same key twice means either)."""
    out = []
    for t in titles:
        t = t.strip()
        if t:
            out.append(f'ae:"{t}"' if any(c.isspace() for c in t) else f"ae:{t}")
    return " ".join(out)


def _cmd_tui(args: argparse.Namespace) -> int:
    """``live --tui``: start capturing (errors are one line and exit 2, before any screen),
    browse until q, then stop the capture as Ctrl-C does without --tui and print the
    summary."""
    from rich.console import Console

    from .report.live import ConsoleOutput
    from .sources.live import LiveError
    from .tui.cli import browse
    from .tui.filter import FilterError, parse
    from .tui.live import LiveSource

    filter_text = _ae_filter(args.ae)
    try:
        parse(filter_text)
    except FilterError as exc:
        return _fail(f"--ae: {exc}")
    source = LiveSource.from_args(args)
    run = source.live
    try:
        run.start()
    except LiveError as exc:
        run.discard()
        return _fail(str(exc))
    try:
        browse(source, filter_text=filter_text, stop_signals=True)
    finally:
        reason = _wait_after_tui(source)
    rec = run.record(reason, source.counts())
    ConsoleOutput(Console(file=sys.stdout, highlight=False, soft_wrap=True,
                          width=None if sys.stdout.isatty() else 160)
                  ).summary(rec, source.service_table())
    return run.exit_code()


def _wait_after_tui(source: Any) -> str | None:
    """The app is gone: stop the capture if it still runs and wait until its last packets
    are analysed and the files closed (Ctrl-C again: at once; a third time: kill it). A
    replayed capture that blocks (a FIFO with nothing coming) is given up on the first Ctrl-C.
    Returns why the capture stopped, for the summary."""
    run = source.live
    source.close()  # asks the capture to stop (the app's quit already did)
    if source.done.is_set():
        return source.stopped_by
    stopper = _Stopper(run.capture, asked=True)
    grace = getattr(run.capture, "grace", 0)
    if grace:
        _tell(f"dicomsniff: stopping once the kernel has handed over the last packets (about "
              f"{grace:.0f} s; Ctrl-C: now)")
    else:
        stopper.signals = 2  # nothing to stop gently: the next signal gives up
    stopper.install()
    t0 = time.monotonic()
    told = bool(grace)
    try:
        while not source.done.wait(0.1):
            if not told and time.monotonic() - t0 > 1:
                _tell("dicomsniff: waiting for the capture to end (Ctrl-C: give up)")
                told = True
    except KeyboardInterrupt:  # the helper was killed, or we give up on the input
        run.forced = True
        if not source.done.wait(5):
            run.failure = run.failure or ("gave up waiting for the capture to end: the summary "
                                          "and the files may lack the last packets")
    finally:
        stopper.restore()
    return source.stopped_by


def _tell(line: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
