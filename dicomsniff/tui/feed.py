"""Between the analysis thread and the app: associations arrive in batches, never one by one.

A :class:`Collector` is attached to an :class:`~dicomsniff.analysis.engine.Analyzer`'s hooks;
the analysis runs in a daemon thread (a file here, a live capture in ``live --tui``) and the
app drains the collector on a timer (every 100 ms), so a capture with a million transactions
costs the UI ten updates a second, whatever arrives. A source is anything with
``run(collector)``: :class:`FileSource` reads a capture file.

A live capture (``live --tui``) is :class:`dicomsniff.tui.live.LiveSource`: the same
``run(collector)``, driving the pipeline of ``dicomsniff live`` (capture helper, pipe, reader,
``-w`` files, analyzer) in the feed thread, with ``capture_path`` the ``-w`` file (or None).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..model import Association, Finding, Transaction


class Cancelled(Exception):
    """Raised inside the analysis thread when the app asked it to stop."""


@dataclass
class Batch:
    """What arrived since the previous drain."""

    started: list[Association] = field(default_factory=list)  # negotiation answered
    ended: list[Association] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # DICOMweb: (HTTP connection, transaction) as each exchange ends; connections at their end
    web: list[tuple[Any, Any]] = field(default_factory=list)
    web_ended: list[Any] = field(default_factory=list)
    studies: list[dict[str, Any]] = field(default_factory=list)  # journey records, released
    tls: list[Any] = field(default_factory=list)  # TLS connections ended (TLSSession)
    progress: tuple[int, int] | None = None  # bytes read, total (0: unknown)
    finished: bool = False
    error: str | None = None  # the capture is damaged part-way, or the source failed
    frames: int = 0

    def __bool__(self) -> bool:
        return bool(self.started or self.ended or self.transactions or self.findings
                    or self.web or self.web_ended or self.studies or self.tls or self.progress
                    or self.finished)


class Collector:
    """Thread-safe buffer of analyzer events; :meth:`drain` hands them over as one Batch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batch = Batch()
        self.cancelled = threading.Event()
        self.done = threading.Event()
        self.log: Any = None  # a WireLog when the source records one (diagram times)
        self.started_at = time.monotonic()
        self.finished_at: float | None = None

    def attach(self, analyzer: Any) -> None:
        """Hook into an Analyzer; its ``log`` (RecordingAnalyzer) is kept for the ladder."""
        analyzer.on_association_start.append(self.association_started)
        analyzer.on_association.append(self.association_ended)
        analyzer.on_transaction.append(self.transaction)
        analyzer.on_finding.append(self.finding)
        analyzer.on_tls.append(self.tls)
        journey = getattr(analyzer, "journey", None)
        if journey is not None:  # each study's record once it is released (its journey over)
            journey.on_study.append(self.study)
        self.log = getattr(analyzer, "log", None)
        if hasattr(analyzer, "next_transaction_id"):  # an engine with the dispatch table
            from ..analysis.http import session

            web = session(analyzer)  # DICOMweb: its own hooks (HTTP connections)
            web.on_transaction.append(self.web_transaction)
            web.on_connection.append(self.web_connection)

    def web_transaction(self, connection: Any, transaction: Any) -> None:
        with self._lock:
            self._batch.web.append((connection, transaction))

    def web_connection(self, connection: Any, transactions: Any, findings: Any) -> None:
        with self._lock:
            self._batch.web_ended.append(connection)

    def association_started(self, a: Association) -> None:
        with self._lock:
            self._batch.started.append(a)

    def association_ended(self, a: Association) -> None:
        with self._lock:
            self._batch.ended.append(a)

    def transaction(self, a: Association, t: Transaction) -> None:
        with self._lock:
            self._batch.transactions.append(t)

    def finding(self, f: Finding) -> None:
        with self._lock:
            self._batch.findings.append(f)

    def study(self, st: Any) -> None:
        rec = st.record()  # built here, in the analysis thread: a plain dict crosses over
        with self._lock:
            self._batch.studies.append(rec)

    def tls(self, s: Any) -> None:
        with self._lock:
            self._batch.tls.append(s)

    def progress(self, done: int, total: int, frames: int = 0) -> None:
        """Called from the analysis thread; raises :class:`Cancelled` once the app quits."""
        if self.cancelled.is_set():
            raise Cancelled
        with self._lock:
            self._batch.progress = (done, total)
            if frames:
                self._batch.frames = frames

    def finish(self, error: str | None = None, frames: int = 0) -> None:
        with self._lock:
            self._batch.finished = True
            self._batch.error = error
            if frames:
                self._batch.frames = frames
        self.finished_at = time.monotonic()
        self.done.set()

    def drain(self) -> Batch:
        with self._lock:
            b, self._batch = self._batch, Batch()
        return b


class Source(Protocol):
    """Where associations come from: runs in its own thread, feeding a Collector."""

    capture_path: str | None  # a file whose frame numbers match the model's (None: no bytes)
    label: str

    def run(self, collector: Collector) -> None: ...


class FileSource:
    """A pcap/pcapng file, analysed once from start to end."""

    def __init__(self, path: str, ports: Iterable[int] = (), *, limits: Any = None,
                 rules: Any = None, tls_keylog: Any = None) -> None:
        self.capture_path = path
        self.label = path
        self.ports = tuple(ports)
        # Analyzer options (None: default); tls_keylog decrypts DICOM over TLS
        self.options = {"limits": limits, "rules": rules, "tls_keylog": tls_keylog}

    def run(self, collector: Collector) -> None:
        from ..analysis.run import analyze_source
        from ..sources.capture import CaptureError
        from ..sources.merge import CaptureRef
        from . import framenames

        analyzer = _analyzer(self.ports, **self.options)
        collector.attach(analyzer)
        error = None
        frames = 0
        try:
            source: Any = self.capture_path
            if isinstance(source, CaptureRef):  # several files: frames named "file#n" too
                source = source.open()
                framenames.use(None if source.single else source.describe)
            result = analyze_source(source, analyzer,
                                    progress=lambda done, total: collector.progress(done, total))
            error, frames = result.reader_error, result.packets
        except Cancelled:
            error = "cancelled"
        except CaptureError as exc:  # checked before the app started; the file changed since
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - shown in the app, never a dead thread
            error = f"analysis failed: {type(exc).__name__}: {exc}"
        collector.finish(error, frames or analyzer.stats.frames)


def _analyzer(ports: Iterable[int], **options: Any) -> Any:
    """A RecordingAnalyzer (times of every PDU for the ladder) when the export package has one.
    ``options``: more Analyzer keywords (limits, rules, keep)."""
    try:
        from ..export.wirelog import RecordingAnalyzer

        return RecordingAnalyzer(ports=ports, **options)
    except ImportError:  # pragma: no cover - export package absent
        from ..analysis.engine import Analyzer

        return Analyzer(ports=ports, **options)


def start(source: Source, collector: Collector) -> threading.Thread:
    """Run ``source`` in a daemon thread (quitting the app never waits for a 1 GB read)."""
    th = threading.Thread(target=source.run, args=(collector,), name="dicomsniff-feed",
                          daemon=True)
    th.start()
    return th
