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
    from .cli import _port, _positive_int

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
    out.add_argument("--tui", action="store_true", help="open the interactive view (not yet)")
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
    lim = p.add_argument_group("limits (memory stays bounded however long it runs)")
    lim.add_argument("--max-streams", type=_positive_int, default=10_000, metavar="N",
                     help="DICOM connections tracked at once (default 10000)")
    lim.add_argument("--max-tcp-buffer", type=_positive_int, default=4 << 20, metavar="BYTES",
                     help="out-of-order bytes held per TCP direction (default 4 MiB)")
    lim.add_argument("--max-findings", type=_positive_int, default=100_000, metavar="N",
                     help="findings kept in memory; more are counted (default 100000)")
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
    return None


class _Stopper:
    """SIGINT/SIGTERM/SIGHUP: the first asks the helper to finish once the last packets are
    handed over (everything is still read and reported); a second stops it at once; a third
    kills it and interrupts us."""

    def __init__(self, capture: Any) -> None:
        self.capture = capture
        self.reason: str | None = None
        self.signals = 0
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
    if args.tui:
        return _fail("--tui is not available yet (the interactive view is still being "
                     "built); use the line output (the default) or --json")
    problem = _usage(args)
    if problem:
        return _fail(problem)
    from .sources.live import LiveError

    run = _LiveRun(args)
    try:
        run.start()
    except LiveError as exc:
        run.discard()
        return _fail(str(exc))
    return run.run()


class _LiveRun:
    """One ``dicomsniff live``: set up, capture until told to stop, summarise."""

    def __init__(self, args: argparse.Namespace) -> None:
        from rich.console import Console

        from .analysis.engine import Analyzer, Limits
        from .report.live import ConsoleOutput, JsonOutput, LiveFeed
        from .sources.live import (
            CaptureWriter,
            HelperCapture,
            ReplayCapture,
            build_filter,
            is_ethernet,
        )

        self.args = args
        limits = Limits(max_streams=args.max_streams, max_tcp_buffer=args.max_tcp_buffer,
                        max_findings=args.max_findings)
        self.analyzer = Analyzer(ports=args.port, limits=limits, keep=False)
        self.output: ConsoleOutput | JsonOutput
        if args.json:
            self.output = JsonOutput(sys.stdout)
        else:
            self.output = ConsoleOutput(Console(file=sys.stdout, highlight=False,
                                                soft_wrap=True,
                                                width=None if sys.stdout.isatty() else 160))
        self.feed = LiveFeed(self.analyzer, self.output, ae=args.ae)
        self.bpf = ""
        self.capture: HelperCapture | ReplayCapture
        if args.read:
            self.capture = ReplayCapture(args.read, count=args.count)
        else:
            self.bpf = build_filter(ports=args.port, hosts=args.host, bpf=args.bpf,
                                    vlan=is_ethernet(args.interface))
            self.capture = HelperCapture(args.interface, self.bpf, helper=args.helper,
                                         count=args.count, buffer_mib=args.buffer_size)
        self.writer = None if not args.write else CaptureWriter(
            args.write, rotate_size=args.rotate_size, rotate_time=args.rotate_time,
            ring=args.ring, interface=args.interface)
        self.write_error: str | None = None
        self.reported_drops = 0

    def start(self) -> None:
        """Open the first file, then start capturing (each raises LiveError: exit 2)."""
        if self.writer is not None:
            self.writer.open()
        self.capture.start()
        args = self.args
        if args.read:
            note = "dicomsniff: reading " + ("standard input" if args.read == "-" else args.read)
        else:
            note = (f"dicomsniff: capturing on {args.interface} with {self.capture.name}, "
                    f"filter '{self.bpf}'")
        if self.writer is not None:
            note += f", writing {self.writer.files[-1].path}" + (
                " (rotating)" if self.writer.rotating else "")
        sys.stderr.write(note + ("; Ctrl-C to stop\n" if args.interface else "\n"))
        sys.stderr.flush()

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.discard()

    # -- while running ----------------------------------------------------------------------
    def check_drops(self, frame: int) -> None:
        """Between packets (every 4096, and at the end): the kernel's drops as a finding."""
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
        sys.stderr.write(f"dicomsniff live: {message}; the analysis goes on without the file\n")

    def idle_flush(self) -> None:
        from .sources.live import LiveError

        if self.writer is not None and self.write_error is None:
            try:
                self.writer.flush()
            except LiveError as exc:
                self.cannot_write(str(exc))

    def run(self) -> int:
        from .analysis.run import SUPPORTED_LINKTYPES
        from .sources.capture import linktype_name
        from .sources.live import HelperCapture, LiveError, Ticker, tee

        capture, analyzer, writer = self.capture, self.analyzer, self.writer
        stopper = _Stopper(capture)
        stopper.install()
        ticker = Ticker(capture if isinstance(capture, HelperCapture) else None,
                        duration=self.args.duration, on_drops=self.drops_now)
        ticker.start()
        t0 = time.monotonic()
        packets = capture.packets()
        if writer is not None:
            packets = tee(packets, writer, self.cannot_write)
            capture.when_idle(self.idle_flush)
        frame = 0
        forced = False
        files = []
        try:
            try:
                frame = analyzer.consume(packets, progress=self.check_drops, every=4096)
            except KeyboardInterrupt:  # the third signal
                forced = True
                capture.kill()
                frame = analyzer.stats.frames
            finally:
                ticker.stop()
                stats = capture.close()
                stopper.restore()
            analyzer.stats.frames = frame
            analyzer.stats.bytes = capture.bytes_read
            if not forced:
                self.check_drops(0)
            for lt in sorted(analyzer.linktypes - SUPPORTED_LINKTYPES):
                analyzer.capture_finding("warning", "CAPTURE-LINKTYPE",
                                         f"frames with unsupported link type {lt} "
                                         f"({linktype_name(lt)}) were skipped", None)
            failure = capture.failure() or capture.reader_error
            if failure:
                analyzer.capture_finding("error", "CAPTURE-DAMAGED" if capture.reader_error
                                         else "CAPTURE-STOPPED", failure, frame or None)
            analyzer.finish()
        finally:
            if writer is not None:
                try:
                    files = writer.close(capture.stats, capture.linktype)
                except LiveError as exc:
                    self.write_error = self.write_error or str(exc)
        self.summary(frame, stats, failure, forced, stopper.reason, ticker.expired, files,
                     time.monotonic() - t0)
        if failure:
            return _fail(f"the capture ended early: {failure}", EXIT_DAMAGED)
        if self.write_error:
            return _fail(f"the capture file is incomplete: {self.write_error}", EXIT_DAMAGED)
        return EXIT_OK

    # -- the end ----------------------------------------------------------------------------
    def summary(self, frame: int, stats: Any, failure: str | None, forced: bool,
                signal_name: str | None, expired: bool, files: list[Any],
                elapsed: float) -> None:
        args = self.args
        if signal_name:
            stopped_by = signal_name
        elif expired:
            stopped_by = "duration"
        elif args.count and frame >= args.count:
            stopped_by = "count"
        elif args.read:
            stopped_by = "end of input"
        else:
            stopped_by = "the capture helper exiting"
        st = self.analyzer.stats
        rec: dict[str, Any] = {
            "frames": frame, "bytes": st.bytes, **self.feed.counts(),
            "findings_dropped": st.findings_dropped,
            "ignored_connections": st.ignored_connections, "evicted_connections": st.evicted,
            "capture_error": failure or None, "interrupted": forced,
            "interface": args.interface or args.read, "filter": self.bpf or None,
            "capture_helper": self.capture.name, "kernel": stats.to_record(),
            "elapsed": round(elapsed, 3), "stopped_by": stopped_by,
            "files": [f.__dict__ for f in files],
            "files_deleted": self.writer.deleted if self.writer is not None else 0,
            "file_error": self.write_error,
            "cpu_seconds": _cpu(),
        }
        if self.feed.ae:
            rec["ae_filter"] = sorted(self.feed.ae)
            rec["ignored_associations"] = self.feed.ignored
        self.output.summary(rec, self.feed.summary.table())
        if args.json:
            k = stats.dropped
            sys.stderr.write(
                f"dicomsniff: {frame} packets, {rec['associations']} associations, "
                f"{rec['transactions']} transactions, {rec['findings']} findings; kernel "
                f"dropped {'?' if k is None else k}"
                + "".join(f"; wrote {f.path}" for f in files) + "\n")
