"""``dicomsniff analyze CAPTURE``: the DICOM story of a capture file, as a report or JSON Lines.

Only argparse is imported at start-up; the analysis loads when the command runs.
"""

from __future__ import annotations

# The C module: signal.py builds three enums at import (0.5 ms of every start) and this
# command needs only signal(), SIGTERM, SIGINT and SIG_IGN, plain ints here.
import _signal as signal
import argparse
import os
import sys
from typing import Any

from ..parallel.options import add_cluster_options, add_jobs_option
from ..report.options import add_format_options, add_selection_options, selection_from
from .args import (
    EXIT_DAMAGED,
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Progress,
    add_capture_arguments,
    add_limit_options,
    add_port_option,
    add_rule_options,
    add_tls_option,
    capture_name,
    fail,
    finish_input,
    keylog_from,
    limits_from,
    open_input,
    open_output,
    quiet_broken_pipe,
    rules_from,
)

EPILOG = """\
examples:
  dicomsniff analyze night.pcapng
      every association, its negotiation and DIMSE transactions, findings, and the
      service response time table
  dicomsniff analyze night.pcapng --findings-only
      just what went wrong, worst first
  dicomsniff analyze capture.pcap --port 4100 --port 4101
      also treat these ports as DICOM (DICOM is detected on any port by its first bytes)
  dicomsniff analyze night.pcapng --json > night.jsonl
      JSON Lines for scripts: association, transaction, finding and summary records
  dicomsniff analyze night.pcapng --fail-on error
      exit status 1 when any error finding exists (for CI pipelines)
  dicomsniff analyze night.pcapng --ae CT01 --status failure --since 02:00 --until 03:00
      only CT01's failed operations between 2 and 3 o'clock (UTC; --localtime for local)
  dicomsniff analyze night.pcapng --csv transactions > night.csv
      one table for a spreadsheet (or findings, associations, tls)
  dicomsniff analyze tls.pcapng --tls-keylog keys.log
      DICOM over TLS decrypted with the key log a peer wrote (SSLKEYLOGFILE); without
      it every TLS handshake is still explained and encrypted DICOM is counted

exit status: 0 analysed; 1 findings at --fail-on level; 2 file unusable or bad usage;
3 capture damaged part-way (what came before was analysed); 130 interrupted.
"""


def add_parser(subparsers: Any) -> None:
    """Register ``analyze``."""
    a = subparsers.add_parser(
        "analyze", help="analyse a pcap/pcapng capture file",
        description="Read a pcap or pcapng capture and tell its DICOM story: associations, "
                    "negotiation, DIMSE transactions with their statuses and timing, "
                    "findings, and a response time summary.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_capture_arguments(a)
    a.add_argument("--json", action="store_true",
                   help="write JSON Lines (one record per line) instead of the report")
    add_port_option(a)
    a.add_argument("--findings-only", action="store_true",
                   help="print only the findings (worst first)")
    a.add_argument("--fail-on", choices=("error", "warning", "info"), default=None,
                   help="exit with status 1 if a finding of this severity or worse exists")
    a.add_argument("--all-contexts", action="store_true",
                   help="list every presentation context (default: those used or rejected)")
    a.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    a.add_argument("-o", "--output", metavar="FILE",
                   help="write the report or JSON Lines to FILE instead of standard output")
    add_format_options(a)
    add_selection_options(a)
    add_tls_option(a)
    add_limit_options(a)
    add_rule_options(a)
    from ..store.options import add_store_options

    add_store_options(a)
    add_jobs_option(a)
    add_cluster_options(a)
    a.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """The ``analyze`` handler."""
    from ..analysis.engine import Analyzer
    from ..analysis.run import analyze_source
    from ..analysis.summary import Summary
    from ..report.tls import TLSCounts
    from ..sources.capture import CaptureError

    if args.json and args.csv:
        return fail("--json and --csv: choose one")
    sel = selection_from(args)
    streamed = args.json or args.csv is not None
    from ..store.options import store_from

    if args.dask and args.jobs:
        return fail("--dask and -j: choose one (--workers sizes a local cluster)")
    if args.dask and args.capture == ["-"]:
        return fail("--dask: the workers read capture files, not standard input")
    keylog = keylog_from(args)  # before the capture opens: a bad key log is one line, exit 2
    try:
        capture = open_input(args)
    except CaptureError as exc:
        return fail(str(exc))
    limits, rules = limits_from(args), rules_from(args)
    analyzer = Analyzer(ports=args.port, limits=limits, keep=not streamed, rules=rules,
                        tls_keylog=keylog)
    try:
        store = store_from(args, capture)
    except Exception as exc:  # the store's module (uuid, platform) loads only when asked for
        from ..store.writer import StoreError

        if not isinstance(exc, StoreError):
            raise
        capture.close()
        return fail(str(exc))
    from ..analysis.http import session

    summary = Summary()
    analyzer.on_association.append(summary.add)
    analyzer.on_retire.append(summary.retire)  # a long association's early transactions
    web = session(analyzer)  # DICOMweb: HTTP connections told in the same story
    web.on_transaction.append(summary.add_web)
    web.on_connection.append(summary.add_http_connection)
    tls_counts = TLSCounts()
    analyzer.on_tls.append(tls_counts.add)
    out = open_output(args.output)
    writer = None
    if args.json:
        from ..report.jsonl import JsonLinesWriter

        writer = JsonLinesWriter(out, findings_only=args.findings_only, selection=sel,
                                 locate=None if capture.single else capture.locate)

        def json_association(a: Any) -> None:
            sel.first_time(analyzer.stats.first_ts)  # for relative and time-of-day bounds
            writer.association(a)

        analyzer.on_association.append(json_association)
        analyzer.on_retire.append(writer.retire)
        analyzer.on_finding.append(writer.finding)
        if sel.empty:  # the selection options select associations
            web.on_connection.append(writer.http_connection)
        analyzer.on_tls.append(writer.tls)
    elif args.csv:
        from ..report.csvout import CsvWriter

        table = CsvWriter(out, args.csv, local=args.localtime)

        def csv_association(a: Any) -> None:
            sel.first_time(analyzer.stats.first_ts)
            if sel.association(a, bool(table.spool.count.get(a.id))):
                table.association(a, sel.transactions(a))
            else:
                table.spool.drop(a.id)

        analyzer.on_association.append(csv_association)
        analyzer.on_retire.append(lambda a, t: table.retire(a, t) if sel.transaction(t)
                                  else None)
        analyzer.on_finding.append(lambda f: table.finding(f) if f.association is None
                                   else None)
        analyzer.on_tls.append(table.tls)  # --csv tls (as --json, whatever the selection)

    facts = None
    if store is not None:  # the store holds everything (a selection narrows what is shown)
        analyzer.on_association.append(store.association)
        analyzer.on_retire.append(store.retire)
        analyzer.on_finding.append(store.finding)
        # ... and, as they are released, the studies; at the end, conformance as observed
        analyzer.journey.on_study.append(
            lambda st: store.record(st.record(), analyzer.stats.first_ts))
        from ..conformance.facts import ConformanceBuilder, Facts

        facts = Facts()
        ConformanceBuilder(capture.paths, lambda n: store.locate(n) if store.locate else None,
                           facts).attach(analyzer)
        analyzer.on_tls.append(store.tls)
        web.on_connection.append(store.http_connection)  # DICOMweb's tables
    where = None if capture.single else capture.describe
    result = None
    if args.dask and store is not None and not (args.db or args.json or args.csv):
        # only the Parquet dataset: each shard writes its part, the client stays small
        previous = signal.signal(signal.SIGTERM, _terminated)
        try:
            return _parts_on_dask(args, capture, limits, rules, store, out)
        except KeyboardInterrupt as exc:
            return _dask_interrupted(exc)
        except Exception as exc:  # the cluster's own errors (address, workers): one line
            return fail(f"--dask {args.dask}: {type(exc).__name__}: {exc}")
        finally:
            signal.signal(signal.SIGTERM, previous)
    reader_error_j = None
    read_by: tuple[int, int] | None = None  # -j interrupted: the fewest and most frames read
    if args.dask:
        previous = signal.signal(signal.SIGTERM, _terminated)
        try:
            reader_error_j, fmap = _on_dask(args, capture, analyzer, limits, rules, writer,
                                            store)
        except KeyboardInterrupt as exc:
            return _dask_interrupted(exc)
        except BrokenPipeError:
            raise  # output closed (| head): quiet, as without --dask
        except Exception as exc:  # the cluster's own errors (address, workers): one line
            return fail(f"--dask {args.dask}: {type(exc).__name__}: {exc}")
        finally:
            signal.signal(signal.SIGTERM, previous)
        if not capture.single:
            where = fmap.describe
    jobs = 1
    if not args.dask:
        from ..parallel.options import jobs_for, sample_shape

        paths = getattr(capture, "paths", None) or ()  # the files, in the merge's order
        first = paths[0] if paths else None
        jobs = jobs_for(args.jobs, args.capture, capture.size or 0,
                        sample=None if first is None else lambda: sample_shape(first))
    bar = Progress(capture, args.no_progress or bool(args.dask), "reading")
    interrupted = 0  # the signal that stopped the reading
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        if not args.dask and jobs > 1:
            from ..parallel.local import TooBig, WorkerFailed

            try:
                reader_error_j, interrupted, read_by, fmap = _on_cores(
                    args, capture, analyzer, jobs, limits, rules, bar.callback, writer, store)
                if fmap is not None and not capture.single:
                    where = fmap.describe
            except WorkerFailed as exc:
                bar.stop()
                return fail(f"-j {jobs}: {exc}")
            except TooBig as exc:  # memory stays bounded: one process streams instead
                sys.stderr.write(f"dicomsniff: -j {jobs}: {exc}; analysing in one process\n")
                jobs = 1
                capture = _reopen(args, capture)
                if not capture.single:  # frame references from the new reading
                    where = capture.describe
                    if writer is not None:
                        writer.locate = capture.locate
                    if store is not None:
                        store.locate = capture.locate
        if not args.dask and jobs == 1:
            result = analyze_source(capture, analyzer, bar.callback)
    except CaptureError as exc:
        bar.stop()
        return fail(str(exc))
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM through _terminated
        interrupted = exc.args[0] if exc.args and isinstance(exc.args[0], int) else \
            signal.SIGINT
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the report of what was read first
        if jobs == 1:
            analyzer.finish()
        result = None
    finally:
        bar.stop()
        if not interrupted:
            signal.signal(signal.SIGTERM, previous)
        else:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the report of what was read first

    stats = analyzer.stats
    associations = analyzer.associations
    capture_findings = [f for f in analyzer.findings if f.association is None]
    reader_error = result.reader_error if result else reader_error_j
    tls_sessions = analyzer.tls_sessions
    rows = summary.table()
    if store is not None:
        if facts is not None:
            from ..conformance.views import ae_records, pair_records

            for rec in ae_records(facts) + pair_records(facts):
                store.record(rec, stats.first_ts)
        store.close({"frames": stats.frames, "bytes": stats.bytes,
                     "associations": summary.associations, "outcomes": summary.outcomes,
                     "findings": stats.findings, "by_severity": stats.by_severity,
                     "capture_error": reader_error, "services": rows},
                    stats.first_ts, stats.last_ts, stats.frames, stats.bytes)
    if writer is not None:
        writer.summary({"frames": stats.frames, "bytes": stats.bytes,
                        "associations": summary.associations, "outcomes": summary.outcomes,
                        "http_connections": summary.http_connections,
                        "findings": stats.findings, "by_severity": stats.by_severity,
                        "findings_dropped": stats.findings_dropped,
                        "ignored_connections": stats.ignored_connections,
                        "evicted_connections": stats.evicted,
                        "capture_error": reader_error,
                        "interrupted": bool(interrupted),
                        "services": rows, "tls": tls_counts.record()})
    elif args.csv:
        pass  # the rows went out as each association ended
    else:
        from rich.console import Console

        from ..report.dicomweb import WebPart
        from ..report.text import print_report

        console = Console(file=out, highlight=False, soft_wrap=False,
                          width=None if out.isatty() else _file_width())
        console.on_broken_pipe = quiet_broken_pipe  # type: ignore[method-assign]
        sel.first_time(stats.first_ts)
        print_report(console, associations, capture_findings, rows, stats,
                     summary.outcomes, findings_only=args.findings_only,
                     all_contexts=args.all_contexts, local=args.localtime, selection=sel,
                     others=WebPart(web) if sel.empty else None, where=where,
                     tls_sessions=tls_sessions)
    if out is not sys.stdout:
        out.close()
    else:
        out.flush()
    if interrupted:
        name = "SIGTERM" if interrupted == signal.SIGTERM else "interrupted"
        if jobs > 1 and read_by is None:  # stopped before the workers' logs were merged
            sys.stderr.write(f"dicomsniff: {name}; -j {jobs} reports nothing: the run was "
                             "stopped before the workers' records could be merged\n")
        elif jobs > 1:
            lo, hi = read_by
            sys.stderr.write(f"dicomsniff: {name}; the report covers what the {jobs} workers "
                             f"read: the first {lo} frames" + (
                                 f" by every worker, up to {hi} by some" if hi > lo else "")
                             + "\n")
        else:
            sys.stderr.write(f"dicomsniff: {name}; the report covers the {stats.frames} "
                             "frames read\n")
        return EXIT_INTERRUPTED if interrupted != signal.SIGTERM else 128 + signal.SIGTERM
    if capture.single and reader_error:
        sys.stderr.write(f"dicomsniff: {capture_name(args)}: capture damaged: {reader_error}"
                         f" (the {stats.frames} frames before it were analysed)\n")
        return EXIT_DAMAGED
    if finish_input(capture):
        return EXIT_DAMAGED
    if args.fail_on:
        order = ("error", "warning", "info")
        worst = order[: order.index(args.fail_on) + 1]
        if any(stats.by_severity.get(s, 0) for s in worst):
            return EXIT_FINDINGS
    return EXIT_OK


def _dask_interrupted(exc: KeyboardInterrupt) -> int:
    """``--dask`` interrupted: a Dask task cannot be asked to stop and send what it read, so
    the shards' records are lost; say so (the exit status of an interrupted run)."""
    signum = exc.args[0] if exc.args and isinstance(exc.args[0], int) else signal.SIGINT
    name = "SIGTERM" if signum == signal.SIGTERM else "interrupted"
    sys.stderr.write(f"dicomsniff: {name}; --dask reports nothing of an interrupted run: the "
                     "shards' records are merged once every shard has finished (-j N or one "
                     "process report what was read)\n")
    return EXIT_INTERRUPTED if signum != signal.SIGTERM else 128 + signal.SIGTERM


def _terminated(signum: int, _frame: object) -> None:
    """SIGTERM (a service manager stopping us, ``timeout``): stop reading as Ctrl-C does, so
    the report, or the JSON summary record, still covers what was read."""
    raise KeyboardInterrupt(signum)


def _on_dask(args: argparse.Namespace, capture: Any, analyzer: Any, limits: Any, rules: Any,
             writer: Any, store: Any) -> tuple[str | None, Any]:
    """``--dask``: the shards analysed on the cluster as the ``-j`` workers analyse theirs
    (dicomsniff/parallel/local.py), their logs told to ``analyzer``'s subscribers (summary,
    JSON, report, store) in capture order, as one process tells them. Returns the capture's
    damage and the frame references."""
    from ..parallel.cluster import logs_on_dask
    from ..parallel.local import replay

    config = {"ports": list(args.port), "limits": limits, "rules": rules,
              "tls_keylog": analyzer.tls_keylog}  # every shard decrypts with the key log
    if args.dedup_window is not None:
        config["dedup_window"] = args.dedup_window
    if args.time_shift:
        config["time_shift"] = list(args.time_shift)
    capture.close()
    with _ShardBar(args) as bar:
        logs = logs_on_dask(args.dask, capture.paths, config, workers=args.workers,
                            progress=bar.update)
    first = logs[0]
    fmap = first.extra["frame_map"]
    if writer is not None:
        writer.locate = None if capture.single else fmap.locate
    if store is not None:
        store.locate = fmap.locate
    said = set(capture.problems)
    capture.problems.extend(p for p in first.extra["problems"] if p not in said)
    replay(logs, analyzer)
    return first.extra["reader_error"], fmap


def _parts_on_dask(args: argparse.Namespace, capture: Any, limits: Any, rules: Any,
                   store: Any, out: Any) -> int:
    """``--dask`` with ``--parquet`` alone: the shards write their parts of the dataset
    (dicomsniff/parallel/parts.py); the client writes the capture-level findings and the run,
    and prints the summary: the headline, findings by code, the service table."""
    from rich.console import Console

    from ..analysis.engine import Stats
    from ..parallel.parts import parquet_on_dask
    from ..report.digest import digest_table
    from ..report.text import findings_list, headline, summary_table

    config = {"ports": list(args.port), "limits": limits, "rules": rules,
              "tls_keylog": keylog_from(args)}  # the shards decrypt with the key log
    if args.dedup_window is not None:
        config["dedup_window"] = args.dedup_window
    if args.time_shift:
        config["time_shift"] = list(args.time_shift)
    capture.close()
    with _ShardBar(args) as bar:
        got = parquet_on_dask(args.dask, capture.paths, config,
                              {"parquet": args.parquet, "run_id": store.run_id,
                               "capture": store.capture, "files": store.files,
                               "sensor": store.sensor}, files=capture.paths,
                              workers=args.workers, progress=bar.update)
    said = set(capture.problems)
    capture.problems.extend(p for p in got.problems if p not in said)
    stats = Stats(frames=got.frames, bytes=got.bytes, first_ts=got.first_ts,
                  last_ts=got.last_ts, ignored_connections=got.ignored, evicted=got.evicted,
                  findings_dropped=got.findings_dropped)
    stats.by_severity.update(got.by_severity)  # counted by the replay, as one process does
    stats.findings = got.findings
    for f in got.capture_findings:
        store.finding(f)
    store.locate = got.frame_map.locate  # the frame references of the rows written here
    for s in got.tls_sessions or ():  # the TLS connections' table, from the replay
        store.tls(s)
    summary = got.summary
    rows = summary.table()
    for rec in got.studies + got.conformance:  # the studies and conformance tables
        store.record(rec, stats.first_ts)
    store.close({"frames": stats.frames, "bytes": stats.bytes,
                 "associations": summary.associations, "outcomes": summary.outcomes,
                 "findings": stats.findings, "by_severity": stats.by_severity,
                 "capture_error": got.reader_error, "services": rows},
                stats.first_ts, stats.last_ts, stats.frames, stats.bytes)
    console = Console(file=out, highlight=False, soft_wrap=False,
                      width=None if out.isatty() else _file_width())
    console.on_broken_pipe = quiet_broken_pipe  # type: ignore[method-assign]
    console.print(headline(stats, summary.associations, summary.outcomes))
    console.print(f"associations, transactions and findings: written by the shards to "
                  f"{args.parquet} (run {store.run_id}); docs/many-captures.md has queries")
    if got.capture_findings:
        console.print(digest_table(got.capture_findings) or "")
        console.print(findings_list(got.capture_findings,
                                    where=None if capture.single else got.frame_map.describe))
    if rows:
        console.print(summary_table(rows))
    if out is not sys.stdout:
        out.close()
    else:
        out.flush()
    if capture.single and got.reader_error:
        sys.stderr.write(f"dicomsniff: {capture_name(args)}: capture damaged: "
                         f"{got.reader_error} (the {stats.frames} frames before it were "
                         "analysed)\n")
        return EXIT_DAMAGED
    if finish_input(capture):
        return EXIT_DAMAGED
    if args.fail_on:
        order = ("error", "warning", "info")
        worst = order[: order.index(args.fail_on) + 1]
        if any(stats.by_severity.get(s, 0) for s in worst):
            return EXIT_FINDINGS
    return EXIT_OK


def _on_cores(args: argparse.Namespace, capture: Any, analyzer: Any, jobs: int, limits: Any,
              rules: Any, progress: Any, writer: Any, store: Any
              ) -> tuple[str | None, int, tuple[int, int] | None, Any]:
    """``-j N``: N processes, each analysing its share of the connections
    (dicomsniff/parallel/local.py); their findings told to ``analyzer``'s subscribers in
    capture order. Returns the capture's damage, if any, and, if the run was interrupted,
    the signal, the fewest and most frames a worker read (what the report covers) and the
    frame references of the worker that read most (``writer`` and ``store`` take them)."""
    from ..parallel.local import note_peak_rss, replay, run_jobs
    from .args import reopener

    config = {"ports": list(args.port), "limits": limits, "rules": rules,
              "tls_keylog": analyzer.tls_keylog}  # every worker decrypts with the key log
    # each worker opens the capture as open_input opened it
    logs = run_jobs(reopener(args).open, capture, jobs, config, progress)
    note_peak_rss(logs)
    stopped = [log.extra["interrupted"] for log in logs if log.extra.get("interrupted")]
    if not stopped:
        replay(logs, analyzer)
        return logs[0].extra["reader_error"], 0, None, None
    # interrupted: the workers stopped at different frames; the one that read furthest
    # knows where every frame reported is
    most = max(logs, key=lambda log: log.stats["frames"])
    fmap = most.extra.get("frame_map")
    if fmap is not None and not capture.single:
        if writer is not None:
            writer.locate = fmap.locate
        if store is not None:
            store.locate = fmap.locate
    replay(logs, analyzer)
    read = [log.stats["frames"] for log in logs]
    return None, stopped[0], (min(read), max(read)), fmap


def _reopen(args: argparse.Namespace, capture: Any) -> Any:
    """The capture opened again, as :func:`open_input` opened it (its problems said once)."""
    from .args import reopener

    again = reopener(args).open()
    again.problems_said = getattr(capture, "problems_said", 0)
    return again


class _ShardBar:
    """``--dask``: shards done on a progress bar (stderr, a terminal, no --no-progress)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.bar: Any = None
        self.task: Any = None
        self.enabled = not args.no_progress and sys.stderr.isatty()

    def __enter__(self) -> _ShardBar:
        return self

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self.bar = Progress("[progress.description]{task.description}", BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(),
                                console=Console(stderr=True), transient=True)
            self.task = self.bar.add_task("shards on the cluster", total=total)
            self.bar.start()
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _file_width() -> int:
    """Width of the report written to a file or pipe: $COLUMNS when set (as a terminal's
    would be), else 160. Nothing is cut at any width; this only decides where lines wrap."""
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return 160
