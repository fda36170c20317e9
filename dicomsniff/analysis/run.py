"""Drive an Analyzer over a capture source, with progress reporting and file-level errors."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dissectors._plain import Record

from ..sources.capture import CaptureError, linktype_name
from ..sources.merge import CaptureRef, CaptureSet, open_capture
from .engine import Analyzer

SUPPORTED_LINKTYPES = frozenset({0, 1, 12, 14, 101, 108, 113, 228, 229, 276})
PROGRESS_EVERY = 1 << 14  # frames between progress callbacks
# Sensors on one network with NTP agree to well under a millisecond; beyond this, say so.
CLOCKS_AGREE = 0.005


class RunResult(Record):
    analyzer: Analyzer
    reader_error: str | None
    packets: int
    bytes_read: int
    format: str
    capture: CaptureSet | None = None


def analyze_source(source, analyzer: Analyzer,
                   progress: Callable[[int, int], None] | None = None,
                   select: Callable[[Iterable], Iterable] | None = None) -> RunResult:
    """Feed every frame of ``source`` to ``analyzer``.

    ``source`` is a :class:`~dicomsniff.sources.merge.CaptureSet` (what
    :func:`~dicomsniff.sources.merge.open_capture` returns: one file, several merged, a
    compressed file, a stream), a path or binary stream, opened here the same way, or a
    CaptureRef (for commands that read the capture more than once).

    Raises CaptureError for input that cannot be read at all; damage part-way through, and with
    several files any file that could not be read, is returned as ``reader_error`` (and a
    finding per file) after everything else was analysed.

    ``select(frames)``, if given, wraps the frames on their way to the analyzer: a shard worker
    could pass one that keeps its connections.
    """
    if isinstance(source, CaptureSet):
        reader = source
    elif isinstance(source, CaptureRef):  # a command that reads the capture more than once
        reader = source.open()
    else:
        reader = open_capture(source)
    size = reader.size
    cb = None
    if progress is not None:
        def cb(_frame: int) -> None:
            progress(reader.position(), size)
    packets = reader if select is None else select(reader)
    try:
        frame = analyzer.consume(packets, progress=cb, every=PROGRESS_EVERY)
    finally:
        reader.close()
    for lt in sorted(analyzer.linktypes - SUPPORTED_LINKTYPES):
        analyzer.capture_finding("warning", "CAPTURE-LINKTYPE",
                                 f"frames with unsupported link type {lt} "
                                 f"({linktype_name(lt)}) were skipped", None)
    analyzer.stats.frames = frame
    analyzer.stats.bytes = reader.bytes_read
    if reader.single:
        if reader.error:
            analyzer.capture_finding("error", "CAPTURE-DAMAGED",
                                     f"capture damaged: {reader.error}; the analysis covers "
                                     f"the {frame} frames before it", frame or None)
    else:
        for problem in reader.problems:
            analyzer.capture_finding("error", "CAPTURE-DAMAGED" if any(
                problem.startswith(f"{p}:") for p in reader.damaged) else "CAPTURE-UNREADABLE",
                f"{problem}; the other files were analysed", None)
        if reader.duplicates:
            analyzer.capture_finding("info", "CAPTURE-SENSOR-COPIES",
                                     f"{reader.duplicates} TCP segments were seen by more than "
                                     f"one of {reader.sensors} sensors and analysed once", None)
        for a, b, late, n in reader.sensor_offsets():
            if abs(late) < CLOCKS_AGREE:
                continue
            analyzer.capture_finding(
                "warning", "CAPTURE-SENSOR-CLOCKS",
                f"sensor {b}'s timestamps are a median {late * 1000:+.1f} ms from sensor {a}'s "
                f"on the same TCP segments ({n} copies): their clocks disagree (or the path "
                f"between them is slow one way), so their frames interleave out of order; "
                f"if {b}'s clock is off, give --time-shift '{b.split(' ')[0]}={-late:.4f}' "
                f"(copies more than --dedup-window, {reader.dedup_window:g} s, apart are not "
                "recognised at all)", None)
    for w in reader.warnings:
        if analyzer.truncation.cut and w.endswith("longer packets were cut short when captured"):
            continue  # CAPTURE-TRUNCATED tells it, with the records it cut
        analyzer.capture_finding("warning", "CAPTURE-WARNING", w, None)
    analyzer.finish()
    if progress is not None:
        progress(reader.position(), size)
    return RunResult(analyzer, reader.error, frame, reader.bytes_read, reader.format, reader)


__all__ = ["CaptureError", "CaptureSet", "RunResult", "analyze_source", "open_capture"]
