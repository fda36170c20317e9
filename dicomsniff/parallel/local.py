"""``-j N``: the cores of this machine, each analysing the connections of its shard.

Each worker (forked, so nothing is imported twice) opens the capture itself and reads every
frame; a :class:`~.shard.ConnectionFilter` gives its engine the TCP segments of its
connections (dealt out in the order they appear, so an association and its TCP stream stay in
one worker and the shares are even) and the frames every worker needs (not TCP, IP
fragments); the other frames cost a look at their headers. Nothing is pickled per packet: a worker
sends back, once, what its engine reported, as a log of events in the order they happened,
each tagged with the frame being analysed. Its engine runs the per-connection work only:
reassembly, the upper layer, DIMSE, the association tracker, DICOMweb. What links
connections together runs in the parent, on the merged log, in capture order, with the
parent's own :class:`~dicomsniff.analysis.engine.Analyzer` and its subscribers, as one
process runs them:

* the ids (associations and HTTP connections share one counter, transactions another) are
  renumbered in the order the workers allocated them, frame by frame;
* the rules (:mod:`dicomsniff.analysis.rules`): the capture-wide memory, the association
  checks (given the transport facts and the data sets the worker collected), the
  capture-wide checks;
* the C-MOVE <-> sub-association links (:mod:`dicomsniff.analysis.moves`), the study journey;
* then the subscribers of the command (summary, JSON Lines, report, store).

So the records are the ones ``-j 1`` writes, in the same order (``tests/test_jobs.py``).
What differs: the caps on open connections (``--max-streams``) apply per worker, and the
records of the capture are held until the merge (one process streams them).
"""

from __future__ import annotations

import copy
import os
import pickle
import signal
import struct
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, groupby
from typing import Any

from ..analysis.engine import Analyzer, Limits
from ..analysis.rules.base import AssocView
from ..model import Association, Finding
from .options import MIN_BYTES, default_jobs, jobs_for
from .shard import ConnectionFilter

__all__ = ["MAX_WORKER_RSS_KB", "MIN_BYTES", "TooBig", "WorkerFailed", "WorkerLog",
           "default_jobs", "jobs_for", "merge_logs", "note_peak_rss", "replay", "run_jobs",
           "run_worker"]

_AFTER = 1 << 62  # events after the last frame (the end of the capture) sort after all frames

# A worker holds what it found until the merge (one process streams it): once its resident
# size has grown this much since its task began, a worker gives up, and the capture is
# analysed by one process instead (memory stays bounded by a cap, whatever the capture).
# Checked every _CHECK_EVERY associations. The growth, not the size: a forked worker starts
# with its parent's pages, a Dask worker with Dask's and what its earlier tasks left.
MAX_WORKER_RSS_KB = 256 << 10
_CHECK_EVERY = 64
# The parent's own share (worker 0 of -j N) keeps its ended associations as they are, not
# pickled, while its resident size has grown less than this: the merge then has half the
# associations fewer to unpickle (on the query-heavy benchmark capture 150 pickle.loads,
# about 0.012 s of the 0.06 s merge, on the longest path), for at most this much memory more.
LIVE_KB = 16 << 10


class WorkerFailed(RuntimeError):
    """A worker process ended without its log (its error is the message)."""


class TooBig(Exception):
    """A worker's records passed :data:`MAX_WORKER_RSS_KB`: analyse in one process."""


class _WalkedRun:
    """A run of the frames this worker analyses, handed to its engine, through which the
    engine sends the compiled walker of bulk runs into the reader (``CaptureReader.walks``)
    as one process does. The walker takes only records of the connection it is given (and
    stops at the first other one), a connection of this worker, so what it walks the filter
    would have given this worker's engine: the filter only counts them (its frame number)."""

    __slots__ = ("run", "_send", "_filt")
    walks = True

    def __init__(self, reader_it: Any, filt: ConnectionFilter) -> None:
        self.run: Any = ()
        self._send = reader_it.send
        self._filt = filt

    def __iter__(self) -> Any:
        return iter(self.run)  # the run's own iterator: nothing of ours per frame

    def send_walker(self, walker: Any) -> tuple:
        got = self._send(walker)
        self._filt.frame += got[1]
        return got


class _OwnRun:
    """A run of this worker's frames, handed to its engine: the record the filter looked at,
    then the ``left`` records the reader counted in C as this worker's too
    (``ConnectionFilter.counter``), read without a look (each still counted by the filter:
    its frame number is the one the engine analyses). The engine sends the compiled walker
    into the reader through it, as through :class:`_WalkedRun`; what the walker takes are
    records of this worker's connection among those counted."""

    __slots__ = ("left", "_first", "_it", "_send", "_filt")
    walks = True

    def __init__(self, reader_it: Any, filt: ConnectionFilter) -> None:
        self.left = 0
        self._first: Any = None
        self._it = reader_it
        self._send = reader_it.send
        self._filt = filt

    def start(self, first: Any, left: int) -> None:
        self._first, self.left = first, left

    def __iter__(self) -> Iterator[Any]:
        yield self._first
        it, filt = self._it, self._filt
        while self.left > 0:
            self.left -= 1
            filt.frame += 1
            pkt = next(it, None)
            if pkt is None:
                return
            yield pkt

    def send_walker(self, walker: Any) -> tuple:
        got = self._send(walker)
        self._filt.frame += got[1]
        self.left = max(0, self.left - got[1])
        return got


class _Tcp:
    """What the association checks read of a connection's two reassemblers."""

    __slots__ = ("retransmissions", "retransmission_frames")

    def __init__(self, d: Any) -> None:
        self.retransmissions = d.retransmissions
        self.retransmission_frames = list(getattr(d, "retransmission_frames", ()))


class _Msg:
    """The part of a DIMSE message the study journey reads (its command set, its frame)."""

    __slots__ = ("command", "frame")

    def __init__(self, m: Any) -> None:
        self.command, self.frame = dict(m.command), getattr(m, "frame", None)


class _Small:
    """A small data set the study journey collected (its bytes, as the sink held them)."""

    __slots__ = ("buf", "partial", "size")

    def __init__(self, sink: Any) -> None:
        self.buf = None if sink.buf is None else bytes(sink.buf)
        self.partial, self.size = sink.partial, sink.size


class _Header:
    """The attributes a C-STORE's header reader found, as the study journey reads them."""

    __slots__ = ("values", "error", "partial")

    def __init__(self, reader: Any) -> None:
        self.values, self.error = reader.values, reader.error
        self.partial = getattr(reader, "partial", False)


class _Values:
    """A STOW-RS part's header as the study journey reads it (``values``)."""

    __slots__ = ("values",)

    def __init__(self, head: Any) -> None:
        self.values = dict(head.values)


class _Closed:
    """An HTTP connection as the report reads it (``web.closed``)."""

    __slots__ = ("info", "txns", "found")

    def __init__(self, info: Any, txns: list, found: list) -> None:
        self.info, self.txns, self.found = info, txns, found


class _Table:
    """The engine's flow table, noting the frame each open connection was registered at: at
    the end of the capture one engine closes its open connections oldest first, and the merge
    interleaves the workers' closes by that frame."""

    def __init__(self, inner: Any, log: WorkerLog) -> None:
        self._inner, self._log = inner, log

    def register(self, conn: Any) -> Any:
        self._log.registered[id(conn)] = self._log.filt.frame
        return self._inner.register(conn)

    def remove(self, conn: Any) -> bool:
        self._log.registered.pop(id(conn), None)
        return self._inner.remove(conn)

    def ignore(self, conn: Any, key: bytes) -> None:
        if conn is not None:
            self._log.registered.pop(id(conn), None)
        self._inner.ignore(conn, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _CountOnce:
    """The engine's count of records the capture cut (analysis/loss.py Truncation): a frame
    every worker is given is counted by worker 0 only, the others by their owner, so the
    workers' counts add up to one process's."""

    def __init__(self, inner: Any, index: int, filt: ConnectionFilter) -> None:
        self.inner = inner
        self._index = index
        self._filt = filt

    def record(self, frame: int, caplen: int, wire_len: int) -> None:
        if self._index == 0 or frame != self._filt.shared_frame:
            self.inner.record(frame, caplen, wire_len)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _Fragments:
    """The engine's IP reassembly, keeping only the datagrams of this worker's connections
    (every worker is given every fragment)."""

    def __init__(self, inner: Any, owns: Callable[[bytes], bool]) -> None:
        self._inner = inner
        self._owns = owns

    def add(self, buf: Any, etype: int, off: int, frame: int, ts: float) -> Any:
        from dissectors.net import tcp_segment

        whole = self._inner.add(buf, etype, off, frame, ts)
        if whole is None:
            return None
        seg = tcp_segment(whole, etype, 0)
        if seg is not None and not self._owns(seg[0]):
            return None
        return whole

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Ref:
    """In a worker's log, an ended association (``index`` None) or one of its transactions,
    kept as the pickled association: a tenth of the memory of the objects."""

    __slots__ = ("aid", "index")

    def __init__(self, aid: int, index: int | None = None) -> None:
        self.aid, self.index = aid, index


_OF_ASSOCIATION = frozenset({"start", "txn", "data", "cut", "close", "assoc"})


class WorkerLog:
    """What one worker's engine reported, in order: ``(stage, key, seq, kind, payload)``.

    ``stage`` 0: while frames are read (``key``: the frame); 1: after the last frame, before
    the engine's end (capture-level findings about the file); 2: the engine's end (``key``: the
    first frame of the connection being closed; then the capture-level findings about IP
    fragments)."""

    def __init__(self, index: int, filt: ConnectionFilter, live: bool = False) -> None:
        self.index = index
        self.filt = filt
        self.live = live  # ended associations kept as objects (the parent's own share)
        self.stage = 0
        self.events: list[tuple] = []
        self.stats: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self.ended = 0
        self.max_rss_kb = MAX_WORKER_RSS_KB
        self.rss_at_start = _rss_kb()
        self.blobs: dict[int, bytes] = {}  # ended association (worker's id) -> pickled
        self.registered: dict[int, int] = {}  # open connection (id()) -> frame registered
        self.opened_at: dict[tuple[str, str], int] = {}  # at the end: (client, server) -> it
        self._of: dict[int, list[int]] = {}  # open association -> its events

    def add(self, kind: str, *payload: Any) -> None:
        stage = 1 if self.stage == 0 and self.filt.done else self.stage
        n = len(self.events)
        self.events.append((stage, self.filt.frame if stage == 0 else 0, n, kind, payload))
        if kind in _OF_ASSOCIATION:
            self._of.setdefault(payload[0].id, []).append(n)
            if kind == "assoc":
                if self.live:  # its events keep pointing at it: nothing to resolve
                    self._of.pop(payload[0].id, None)
                else:
                    self._compact(payload[0])
                self.ended += 1
                if not self.ended % _CHECK_EVERY:
                    grown = _rss_kb() - self.rss_at_start
                    if grown > self.max_rss_kb:
                        raise TooBig(f"a worker's records passed {self.max_rss_kb >> 10} MiB")
                    if grown > LIVE_KB:
                        self.live = False

    def _compact(self, a: Association) -> None:
        """``a`` ended: nothing will change it now. Keep it pickled (with its transactions
        and findings), its events pointing into it."""
        self.blobs[a.id] = pickle.dumps(a, pickle.HIGHEST_PROTOCOL)
        where = {id(t): i for i, t in enumerate(a.transactions)}
        ref = _Ref(a.id)
        events = self.events
        for n in self._of.pop(a.id, ()):
            stage, key, seq, kind, payload = events[n]
            if kind == "txn":
                i = where.get(id(payload[1]))
                payload = (ref, payload[1] if i is None else _Ref(a.id, i))
            else:
                payload = (ref, *payload[1:])
            events[n] = (stage, key, seq, kind, payload)

    def resolve(self) -> None:
        """Back to objects (in the parent): every reference to an ended association is to one
        object again, as the worker's engine had it."""
        if not self.blobs:
            return
        objs = {aid: pickle.loads(b) for aid, b in self.blobs.items()}
        self.blobs = {}

        def obj(x: Any) -> Any:
            if type(x) is not _Ref:
                return x
            a = objs[x.aid]
            return a if x.index is None else a.transactions[x.index]

        self.events = [ev if ev[3] not in _OF_ASSOCIATION else
                       (*ev[:4], tuple(obj(x) for x in ev[4])) for ev in self.events]

    def keyed(self) -> list[tuple]:
        """The events with their merge keys; at the end of the capture each connection's events
        take the frame its connection was registered at, so the workers' closes interleave as
        one engine closes its open connections (oldest first)."""
        out: list[tuple] = []
        group: list[tuple] = []
        for ev in self.events:
            stage, key, seq, kind, payload = ev
            if stage < 2:
                out.append(ev)
                continue
            group.append(ev)
            if kind in ("assoc", "web") or (kind == "tls" and payload[0].association is None):
                p = payload[0]
                first = self.opened_at.get((p.client, p.server), p.first_frame or 0)
                out.extend((2, first, s, k, p) for _st, _k, s, k, p in group)
                group = []
        out.extend((2, _AFTER, s, k, p) for _st, _k, s, k, p in group)
        return out


def _install(an: Analyzer, log: WorkerLog) -> Any:
    """Turn ``an`` (built with ``RuleConfig.scope="local"``: no C-MOVE links, no journey)
    into a worker: no rule runs here (the parent runs them all, in capture order), and what
    the consumers across connections would have been fed goes to ``log``."""
    from dissectors.net import format_endpoint

    from ..analysis.http import session
    from ..analysis.journey.collect import JourneyPolicy
    from ..analysis.journey.web import WebStores
    from ..analysis.tlsport import PlainToTLSPort

    rules = an.rules
    rules.checks = []
    for hooks in (an.on_association_start, an.on_transaction):
        hooks[:] = [cb for cb in hooks if getattr(cb, "__self__", None) is not rules]
    # a plain A-ASSOCIATE-RQ to a TLS port is judged in the parent, which sees every
    # connection's TLS servers in capture order
    an.on_association[:] = [cb for cb in an.on_association
                            if not isinstance(getattr(cb, "__self__", None), PlainToTLSPort)]
    rules.on_view.append(lambda v: log.add(
        "close", v.assoc, v.ended_by, v.transport, v.datasets,
        None if v.tcp is None else (_Tcp(v.tcp[0]), _Tcp(v.tcp[1]))))
    rules.state.refused_attempt = lambda client, server, frame, ts: log.add(
        "refused", client, server, frame, ts)
    an.collect(JourneyPolicy(
        lambda a, side, m, got: log.add(
            "data", a, side, _Msg(m),
            (_Small(got[0]), got[1]) if isinstance(got, tuple) else _Header(got)),
        lambda a, m: log.add("cut", a, _Msg(m))))
    an.fragments = _Fragments(an.fragments, log.filt.owns)  # type: ignore[assignment]
    an.truncation = _CountOnce(an.truncation, log.index, log.filt)  # type: ignore[assignment]
    an.table = _Table(an.table, log)  # type: ignore[assignment]

    next_aid, next_tid = an.next_association_id, an.next_transaction_id

    def aid() -> int:
        n = next_aid()
        log.add("aid", n)
        return n

    def tid() -> int:
        n = next_tid()
        log.add("tid", n)
        return n

    next_tls = an.next_tls_id

    def tlsid() -> int:
        n = next_tls()
        log.add("tlsid", n)
        return n

    an.next_association_id = aid  # type: ignore[method-assign]
    an.next_transaction_id = tid  # type: ignore[method-assign]
    an.next_tls_id = tlsid  # type: ignore[method-assign]
    an.on_tls.append(lambda s: log.add("tls", s))
    an.on_association_start.append(lambda a: log.add("start", a))
    an.on_transaction.append(lambda a, t: log.add("txn", a, t))
    an.on_association.append(lambda a: log.add("assoc", a))
    an.on_finding.append(lambda f: log.add("finding", f))
    web = session(an)  # after the id counters: it takes them now
    # STOW-RS parts as the study journey reads them (analysis/journey/web.py): read here,
    # handed to the parent's journey with their transaction
    stow = WebStores(None)
    web.instance_policies.append(stow)

    def web_transaction(info: Any, t: Any) -> None:
        heads = {k[1]: _Values(stow.heads.pop(k)) for k in [k for k in stow.heads
                                                           if k[0] == t.id]}
        log.add("wtxn", info, t, heads)

    web.on_transaction.append(web_transaction)
    web.on_connection.append(lambda info, txns, found: log.add(
        "web", info, list(txns), list(found)))
    finish = an.finish

    def end() -> None:
        log.stage = 2
        log.opened_at = {(format_endpoint(c.keys[0], 0), format_endpoint(c.keys[0], 1)):
                         log.registered.get(id(c), 0) for c in an.open}
        finish()

    an.finish = end  # type: ignore[method-assign]
    return web


def run_worker(capture: Any, index: int, count: int, config: dict[str, Any],
               progress: Callable[[int, int], None] | None = None,
               live: bool = False) -> WorkerLog:
    """Analyse shard ``index`` of ``count`` of ``capture`` (a CaptureSet, read here and
    closed); ``config``: ``ports``, ``limits``, ``rules`` as the command's Analyzer has them,
    and ``setup``: callables given the worker's Analyzer before it reads, to equip it as the
    command equips its own (what a protocol analyzer needs beyond these options; under
    ``--dask`` they must pickle). ``live``: the log stays in this process (the parent's own
    share), so its ended associations need not be pickled (:data:`LIVE_KB`)."""
    from ..analysis.rules import RuleConfig
    from ..analysis.run import analyze_source

    rules = (config.get("rules") or RuleConfig())._replace(scope="local")
    # A worker ships its associations whole at the merge (its memory is bounded by
    # MAX_WORKER_RSS_KB instead): it retires none of their transactions (engine Limits).
    limits = copy.copy(config.get("limits") or Limits())
    limits.max_transactions = 1 << 62
    an = Analyzer(ports=config.get("ports", ()), limits=limits, keep=False, rules=rules,
                  tls_keylog=config.get("tls_keylog"))
    for setup in config.get("setup", ()):
        setup(an)
    filt = ConnectionFilter(index, count)
    log = WorkerLog(index, filt, live)
    _install(an, log)
    consume = an.consume

    def by_runs(packets: Any, frame: int = 0, progress: Any = None, every: int = 1 << 14
                ) -> int:
        """The engine is given the runs of frames this worker analyses, each numbered where
        it is in the capture; the other frames cost a look at their headers, nothing more."""
        wanted = filt.wanted
        it = iter(packets)
        walks = getattr(packets, "walks", False)
        # with the compiled walker, the reader skips the other workers' records in C and
        # counts this worker's (shard.py): Python looks at the first record of each run only
        skipper = filt.skipper() if walks else None
        counter = filt.counter() if skipper is not None else None
        head = next(it, None)
        first_ts = last_ts = None if head is None else head[0]
        try:
            if counter is not None:
                send = it.send
                own = _OwnRun(it, filt)
                pkt = head
                while pkt is not None:
                    if wanted(pkt):
                        start = frame
                        got = send(counter)  # (after a block read the slow way: no count)
                        own.start(pkt, got[3] if len(got) > 3 else 0)
                        frame = consume(own, frame, progress, every)
                        filt.kept += frame - start
                        last_ts = an.stats.last_ts
                    else:
                        frame += 1
                        last_ts = pkt[0]
                        got = send(skipper)
                        if got[1]:
                            frame += got[1]
                            filt.skipped(got[1])
                            last_ts = got[2]
                    pkt = next(it, None)
                return frame
            walked = _WalkedRun(it, filt) if walks else None
            for mine, run in groupby(chain((head,), it) if head is not None else (), wanted):
                if mine:
                    start = frame
                    if walked is not None:
                        walked.run = run
                        run = walked
                    frame = consume(run, frame, progress, every)
                    filt.kept += frame - start
                    last_ts = an.stats.last_ts
                else:  # counted in C: the last (number, frame) of the run
                    last = deque(enumerate(run, 1), maxlen=1)
                    if last:
                        frame += last[0][0]
                        last_ts = last[0][1][0]
        except KeyboardInterrupt:  # in the middle of a run: the frame being read
            frame = max(frame, filt.frame)
            raise
        finally:
            filt.done = True
            an.stats.first_ts, an.stats.last_ts = first_ts, last_ts
            an.stats.frames = frame
        return frame

    an.consume = by_runs  # type: ignore[method-assign]
    try:
        res = analyze_source(capture, an, progress)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM: what was read is told, as -j 1 does
        log.extra["interrupted"] = _signum(exc)
        with _ignoring_signals():  # a second signal must not cut the ending short
            an.finish()
            if hasattr(capture, "frame_map"):  # the workers read different lengths
                log.extra["frame_map"] = capture.frame_map()
        res = None
    st = an.stats
    log.stats = {"frames": st.frames, "bytes": st.bytes, "first_ts": st.first_ts,
                 "last_ts": st.last_ts, "connections": st.connections,
                 "ignored_connections": st.ignored_connections, "evicted": st.evicted,
                 "truncation": an.truncation.inner}  # summed by replay (_CountOnce)
    log.extra.update(reader_error=res and res.reader_error, format=res and res.format,
                     maxrss_kb=_maxrss_kb())
    return log


def _signum(exc: KeyboardInterrupt) -> int:
    """The signal a KeyboardInterrupt stands for (the CLI raises it with SIGTERM's number)."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else signal.SIGINT


@contextmanager
def _ignoring_signals() -> Iterator[None]:
    """SIGINT and SIGTERM ignored for a while (in the main thread only: elsewhere they are
    not delivered to Python code anyway)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def _stop_once(signum: int, _frame: Any) -> None:
    """A forked worker's SIGINT and SIGTERM: stop reading (once; further signals are
    ignored, the worker is ending and sending what it read)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(signum)


def _maxrss_kb() -> int:
    """This process's peak resident size in its lifetime (KiB): for the benchmark."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _rss_kb() -> int:
    """This process's resident size now (KiB), from ``/proc/self/statm``; where there is no
    such file, the peak (the best ``getrusage`` tells)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") >> 10)
    except (OSError, ValueError, IndexError):
        return _maxrss_kb()


def note_peak_rss(logs: Sequence[WorkerLog]) -> None:
    """``$DICOMSNIFF_JOBS_RSS`` names a file: at exit, write each process's peak RSS in KiB
    (this one, then the workers), for the benchmark (bench/README.md): ``wait4`` tells the
    largest of them only, and ``-j`` memory is their sum."""
    path = os.environ.get("DICOMSNIFF_JOBS_RSS")
    if not path:
        return
    import atexit

    workers = [log.extra.get("maxrss_kb", 0) for log in logs[1:]]

    def write() -> None:
        with open(path, "w") as f:
            f.write(" ".join(str(k) for k in [_maxrss_kb(), *workers]) + "\n")

    atexit.register(write)


def run_jobs(open_capture: Callable[[], Any], capture: Any, count: int,
             config: dict[str, Any],
             progress: Callable[[int, int], None] | None = None) -> list[WorkerLog]:
    """Fork ``count - 1`` workers (each opens the capture with ``open_capture``), analyse
    shard 0 here on ``capture``, and gather every worker's log (index order).

    Interrupted (Ctrl-C reaches every worker; SIGTERM, or Ctrl-C while this process waits,
    is passed on to them), each worker stops reading, ends its connections as at the end of
    a capture and sends its log, marked ``extra["interrupted"]``, so the merge reports what
    was read. A KeyboardInterrupt out of here means a worker had nothing to send."""
    import gc

    gc.freeze()  # what is loaded now is never garbage: the workers' collector never walks it
    kids: list[tuple[int, int]] = []
    try:
        for index in range(1, count):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker
                os.close(r)
                signal.signal(signal.SIGINT, _stop_once)
                signal.signal(signal.SIGTERM, _stop_once)
                code = 0
                try:
                    log = run_worker(open_capture(), index, count, config)
                    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the log goes whole
                    signal.signal(signal.SIGTERM, signal.SIG_IGN)
                    del log.filt
                    data = pickle.dumps(("ok", log), pickle.HIGHEST_PROTOCOL)
                except TooBig as exc:
                    data = pickle.dumps(("toobig", str(exc)))
                except KeyboardInterrupt:  # before it began reading: nothing to tell
                    data = pickle.dumps(("interrupted", ""))
                except BaseException as exc:  # noqa: BLE001 - reported by the parent
                    data = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
                    code = 1
                try:
                    with os.fdopen(w, "wb") as out:
                        out.write(struct.pack("!Q", len(data)))
                        out.write(data)
                finally:
                    os._exit(code)
            os.close(w)
            kids.append((pid, r))
        first = run_worker(capture, 0, count, config, progress, live=True)  # not pickled
        logs = [first]
        stopped = False
        while kids:
            if not stopped and first.extra.get("interrupted"):
                stopped = True
                for pid, _r in kids:  # the others stop reading too, and send what they read
                    _signal(pid, signal.SIGINT)
            pid, r = kids[0]
            if not stopped:
                try:
                    _readable(r)  # interrupted here, nothing of the log is lost
                except KeyboardInterrupt as exc:
                    first.extra["interrupted"] = _signum(exc)
                    continue
            kids.pop(0)  # _receive closes its pipe and waits for it, whatever it finds
            with _ignoring_signals():
                logs.append(_receive(pid, r))
        return logs
    finally:
        for pid, r in kids:  # interrupted, or a worker failed: stop the others
            try:
                os.kill(pid, 15)
            except OSError:
                pass
            os.close(r)
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError:
        pass


def _readable(fd: int) -> None:
    """Wait until a worker's pipe has its result (or is closed)."""
    import select

    select.select([fd], [], [])


def _receive(pid: int, fd: int) -> WorkerLog:
    with os.fdopen(fd, "rb", closefd=True) as inp:
        head = inp.read(8)
        data = inp.read(struct.unpack("!Q", head)[0]) if len(head) == 8 else b""
    _pid, status = os.waitpid(pid, 0)
    if not data:
        raise WorkerFailed(f"a worker ended without a result (wait status {status})")
    what, value = pickle.loads(data)
    if what == "interrupted":
        raise KeyboardInterrupt(signal.SIGINT)
    if what == "toobig":
        raise TooBig(value)
    if what != "ok":
        raise WorkerFailed(f"a worker failed: {value}")
    return value


def _renumber(logs: Sequence[WorkerLog], events: list[tuple]) -> None:
    """Give the workers' associations, HTTP connections and transactions the ids one process
    gives them: in the order they were allocated."""
    amap: dict[tuple[int, int], int] = {}
    tmap: dict[tuple[int, int], int] = {}
    smap: dict[tuple[int, int], int] = {}  # TLS connections
    for w, ev in events:
        kind = ev[3]
        if kind == "aid":
            amap[(w, ev[4][0])] = len(amap) + 1
        elif kind == "tid":
            tmap[(w, ev[4][0])] = len(tmap) + 1
        elif kind == "tlsid":
            smap[(w, ev[4][0])] = len(smap) + 1
    done: set[int] = set()

    def finding(w: int, f: Finding) -> None:
        if id(f) not in done:
            done.add(id(f))
            if f.association is not None:
                f.association = amap.get((w, f.association), f.association)
            if f.tls is not None:
                f.tls = smap.get((w, f.tls), f.tls)

    for w, ev in events:
        kind, payload = ev[3], ev[4]
        if kind in ("start", "assoc", "close", "txn", "data", "cut"):
            a = payload[0]
            if id(a) in done:
                continue
            done.add(id(a))
            a.id = amap[(w, a.id)]
            if a.tls is not None:
                a.tls["id"] = smap.get((w, a.tls.get("id")), a.tls.get("id"))
            for t in a.transactions:
                t.id = tmap.get((w, t.id), t.id)
                t.association = a.id
            for f in a.findings:
                finding(w, f)
        elif kind in ("web", "wtxn"):
            info = payload[0]
            if id(info) not in done:
                done.add(id(info))
                info.id = amap[(w, info.id)]
            txns = payload[1] if kind == "web" else [payload[1]]
            for t in txns:
                if id(t) not in done:
                    done.add(id(t))
                    t.id = tmap.get((w, t.id), t.id)
                    t.connection = info.id
            if kind == "web":
                for f in payload[2]:
                    finding(w, f)
        elif kind == "finding":
            finding(w, payload[0])
        elif kind == "tls":
            s = payload[0]
            if id(s) not in done:
                done.add(id(s))
                s.id = smap.get((w, s.id), s.id)
                if s.association is not None:
                    s.association = amap.get((w, s.association), s.association)
                if s.http_connection is not None:
                    s.http_connection = amap.get((w, s.http_connection), s.http_connection)
                for f in s.findings or ():
                    finding(w, f)


def merge_logs(logs: Sequence[WorkerLog]) -> list[tuple[int, tuple]]:
    """Every worker's events, in the order one engine would have made them: ``(worker,
    event)``. Capture-level findings about frames every worker read are kept once."""
    merged = sorted(((ev[0], ev[1], log.index, ev[2]), log.index, ev)
                    for log in logs for ev in log.keyed())
    out: list[tuple[int, tuple]] = []
    seen: set[tuple] = set()
    for _key, w, ev in merged:
        if ev[3] == "finding" and ev[4][0].association is None and ev[4][0].tls is None:
            f = ev[4][0]
            if f.code == "CAPTURE-TRUNCATED":
                continue  # the workers' counts, summed by replay
            if ev[0] > 0 and w != 0:
                continue  # about the file or the fragments: every worker says the same
            sig = (f.frame, f.code, f.message)
            if sig in seen:
                continue
            seen.add(sig)
        out.append((w, ev))
    return out


def replay(logs: Sequence[WorkerLog], an: Analyzer) -> None:
    """Tell ``an`` (the command's engine, which read no frame) what the workers found, in
    capture order: its rules, links, journey and subscribers run as they run in one process."""
    from ..analysis.http import session
    from ..analysis.journey.lazy import StandInStores
    from ..analysis.journey.web import WebStores
    from ..analysis.moves import MoveLinker

    for log in logs:
        log.resolve()
    events = merge_logs(logs)
    _renumber(logs, events)
    first = logs[0]
    st = an.stats
    for k in ("frames", "bytes", "first_ts", "last_ts"):  # as one engine has them at the end
        setattr(st, k, first.stats[k])
    web = session(an)
    now = [0]  # the frame being replayed
    ended: set[int] = set()  # transactions whose end was replayed (id())

    def known(a: Association) -> list:
        txns = a.transactions
        n = len(txns)
        while n and (txns[n - 1].request_frame or 0) > now[0]:
            n -= 1
        return txns if n == len(txns) else txns[:n]

    # The links are made as one process makes them, but on finished associations: the
    # linker is told which transactions existed and which had ended at each moment.
    linker = MoveLinker(known=known, done=lambda t: id(t) in ended)
    for hooks in (an.on_association_start, an.on_association):
        for i, cb in enumerate(hooks):
            owner = getattr(cb, "__self__", None)
            if isinstance(owner, MoveLinker):
                hooks[i] = getattr(linker, cb.__name__)
    # the journey's (its stand-in's ``heads`` wake it: only a STOW-RS has heads to give)
    stows = [p for p in web.instance_policies if isinstance(p, (WebStores, StandInStores))]
    rules = an.rules
    for _w, ev in events:
        stage, frame, _seq, kind, payload = ev
        now[0] = frame if stage == 0 else _AFTER
        if kind == "start":
            for cb in an.on_association_start:
                cb(payload[0])
        elif kind == "txn":
            ended.add(id(payload[1]))
            for cb in an.on_transaction:
                cb(payload[0], payload[1])
        elif kind == "finding":
            an.emit(payload[0])
        elif kind == "close":
            a, how, facts, datasets, tcp = payload
            counts: dict[str, int] = {}
            for f in a.findings:
                counts[f.code] = counts.get(f.code, 0) + 1
            rules.datasets.forget(a.id)
            rules.run_association(AssocView(a, rules.config, rules.state, how, facts,
                                            datasets or {}, tcp), counts)
        elif kind == "assoc":
            a = payload[0]
            if an.keep:
                an.associations.append(a)
            for cb in an.on_association:
                cb(a)
        elif kind == "data":
            an.journey.on_data(*payload)
        elif kind == "cut":
            an.journey.on_cut(*payload)
        elif kind == "refused":
            rules.state.refused_attempt(*payload)
        elif kind == "tls":
            from ..analysis.tls import tell  # loaded at the first TLS connection only

            tell(an, payload[0])
        elif kind == "wtxn":
            info, t, heads = payload
            for ws in stows:
                for part, head in heads.items():
                    ws.heads[(t.id, part)] = head
            web.emit_transaction(info, t)
        elif kind == "web":
            info, txns, found = payload
            if web.keep:
                web.connections.append(info)
                web.closed.append(_Closed(info, txns, found))  # type: ignore[arg-type]
            for cb in web.on_connection:
                cb(info, txns, found)
    st.connections = sum(log.stats["connections"] for log in logs)
    st.ignored_connections = sum(log.stats["ignored_connections"] for log in logs)
    st.evicted = sum(log.stats["evicted"] for log in logs)
    an.associations.sort(key=lambda a: (a.first_frame or 0))
    for log in logs:  # records cut by the snapshot length: each worker counted its own
        an.truncation.merge(log.stats["truncation"])
    an.truncation_finding(an.truncation)
    an.journey.finish()
    rules.finish()


