"""``dicomsniff live -i IFACE``: the DICOM story of an interface as it happens.

The capture side is :class:`dicomsniff.live.run.LiveRun`; this module parses the options into
its :class:`~dicomsniff.live.run.LiveOptions` and shows what it sees (lines, JSON Lines or the
TUI). The capture helper (tcpdump or dumpcap, see :mod:`dicomsniff.sources.helper`) writes pcap to a
pipe; the same reader, reassembler and analyzer as ``analyze`` consume it; each association,
transaction and finding is printed (or written as JSON Lines) the moment it is known. Stopping
(Ctrl-C, SIGTERM, ``--duration``, ``--count``) always goes the same way: the helper is asked to
finish, the pipe is read to its end, open associations are reported as they stand, the files are
closed complete, and a summary with the kernel's drop count closes the output.

Imports stay light at the top: this module is loaded each time ``dicomsniff`` starts.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .args import (
    EXIT_UNUSABLE,
    add_limit_options,
    add_rule_options,
    add_tls_option,
    duration,
    keylog_from,
    limits_from,
    port,
    positive_int,
    rules_from,
    settle,
    size,
)

if TYPE_CHECKING:
    from ..live.run import LiveOptions, LiveRun

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


def add_parser(subparsers: Any) -> None:
    """Register ``live``."""
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
    src.add_argument("--port", type=port, action="append", default=[], metavar="PORT",
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
    out.add_argument("--localtime", action="store_true",
                     help="times of day in this machine's time zone instead of UTC")
    out.add_argument("-w", "--write", metavar="FILE",
                     help="also write the packets to FILE (.pcapng for pcapng, else pcap)")
    out.add_argument("--rotate-size", type=size, metavar="SIZE",
                     help="start a new file when this size is reached (e.g. 100MB, 1GiB)")
    out.add_argument("--rotate-time", type=duration, metavar="TIME",
                     help="start a new file after this long (e.g. 30m, 1h)")
    out.add_argument("--ring", type=positive_int, metavar="N",
                     help="keep only the newest N files (with --rotate-size/--rotate-time)")
    stop = p.add_argument_group("when to stop (default: Ctrl-C or SIGTERM)")
    stop.add_argument("--duration", type=duration, metavar="TIME",
                      help="stop after this long (e.g. 90s, 10m, 2h)")
    stop.add_argument("--count", type=positive_int, metavar="N",
                      help="stop after N packets")
    cap = p.add_argument_group("capture helper")
    cap.add_argument("--helper", choices=("auto", "tcpdump", "dumpcap"), default="auto",
                     help="program that reads the interface (default: tcpdump as root, else "
                          "dumpcap, then the other)")
    cap.add_argument("--buffer-size", type=positive_int, default=256, metavar="MiB",
                     help="kernel capture buffer: what absorbs a fast transfer while the "
                          "analysis catches up (default 256; kernel memory while capturing)")
    add_tls_option(p)
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


def options(args: argparse.Namespace) -> LiveOptions:
    """The :class:`~dicomsniff.live.run.LiveOptions` of ``live``'s parsed options."""
    from ..live.run import LiveOptions

    return LiveOptions(interface=args.interface, read=args.read, port=tuple(args.port),
                       host=tuple(args.host), bpf=args.bpf, helper=args.helper,
                       buffer_size=args.buffer_size, count=args.count, duration=args.duration,
                       write=args.write, rotate_size=args.rotate_size,
                       rotate_time=args.rotate_time, ring=args.ring,
                       limits=limits_from(args), rules=rules_from(args),
                       tls_keylog=keylog_from(args, follow=True))


def cmd_live(args: argparse.Namespace) -> int:
    problem = _usage(args)
    if problem:
        return _fail(problem)
    settle()  # the collector resumes before the capture starts (see args.settle)
    if args.tui:
        return _cmd_tui(args)
    from ..live.run import LiveRun
    from ..sources.interfaces import LiveError

    run = LiveRun(options(args))
    lines = _LineOutput(run, args)
    try:
        run.start()
    except LiveError as exc:
        run.discard()
        return _fail(str(exc))
    return lines.run()


class _LineOutput:
    """``dicomsniff live`` without --tui: one line (or JSON record) per event, then the
    summary."""

    def __init__(self, run: LiveRun, args: argparse.Namespace) -> None:
        from rich.console import Console

        from ..report.live import ConsoleOutput, JsonOutput, LiveFeed

        self.args = args
        self.run_ = run
        self.output: ConsoleOutput | JsonOutput
        if args.json:
            self.output = JsonOutput(sys.stdout)
        else:
            self.output = ConsoleOutput(Console(file=sys.stdout, highlight=False,
                                                soft_wrap=True,
                                                width=None if sys.stdout.isatty() else 160),
                                        local=args.localtime)
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

    from ..report.live import ConsoleOutput
    from ..sources.interfaces import LiveError
    from ..tui.browse import browse
    from ..tui.filter import FilterError, parse
    from ..tui.live import LiveSource

    filter_text = _ae_filter(args.ae)
    try:
        parse(filter_text)
    except FilterError as exc:
        return _fail(f"--ae: {exc}")
    source = LiveSource.from_options(options(args))
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
    try:
        ConsoleOutput(Console(file=sys.stdout, highlight=False, soft_wrap=True,
                              width=None if sys.stdout.isatty() else 160)
                      ).summary(rec, source.service_table())
        sys.stdout.flush()
    except OSError as exc:  # the terminal went away (EIO): the files are written all the same
        if exc.errno != errno.EIO:
            raise
        _quiet_stdout()
    return run.exit_code()


def _quiet_stdout() -> None:
    """Standard output is a terminal that is gone: point it at /dev/null so that Python's
    flush at exit does not fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


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
