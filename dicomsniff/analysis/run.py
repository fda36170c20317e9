"""Drive an Analyzer over a capture source, with progress reporting and file-level errors."""

from __future__ import annotations

from collections.abc import Callable

from dissectors._plain import Record

from ..sources.capture import CaptureError, CaptureReader, linktype_name
from .engine import Analyzer

SUPPORTED_LINKTYPES = frozenset({0, 1, 12, 14, 101, 108, 113, 228, 229, 276})
PROGRESS_EVERY = 1 << 14  # frames between progress callbacks


class RunResult(Record):
    _fields = ("analyzer", "reader_error", "packets", "bytes_read", "format")
    analyzer: Analyzer
    reader_error: str | None
    packets: int
    bytes_read: int
    format: str

    def __init__(
        self,
        analyzer: Analyzer,
        reader_error: str | None,
        packets: int,
        bytes_read: int,
        format: str,
    ) -> None:
        self.analyzer = analyzer
        self.reader_error = reader_error
        self.packets = packets
        self.bytes_read = bytes_read
        self.format = format


def analyze_source(source, analyzer: Analyzer,
                   progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Feed every frame of ``source`` (path or binary stream) to ``analyzer``.

    Raises CaptureError for a file that cannot be read at all; damage part-way through is
    returned as ``reader_error`` (and a finding) after everything before it was analysed.
    """
    reader = CaptureReader(source)
    size = reader.size
    cb = None
    if progress is not None:
        def cb(_frame: int) -> None:
            progress(reader.bytes_read, size)
    try:
        frame = analyzer.consume(reader, progress=cb, every=PROGRESS_EVERY)
    finally:
        reader.close()
    for lt in sorted(analyzer.linktypes - SUPPORTED_LINKTYPES):
        analyzer.capture_finding("warning", "CAPTURE-LINKTYPE",
                                 f"frames with unsupported link type {lt} "
                                 f"({linktype_name(lt)}) were skipped", None)
    analyzer.stats.frames = frame
    analyzer.stats.bytes = reader.bytes_read
    if reader.error:
        analyzer.capture_finding("error", "CAPTURE-DAMAGED",
                                 f"capture damaged: {reader.error}; the analysis covers the "
                                 f"{frame} frames before it", frame or None)
    for w in reader.warnings:
        analyzer.capture_finding("warning", "CAPTURE-WARNING", w, None)
    analyzer.finish()
    if progress is not None:
        progress(reader.bytes_read, size)
    return RunResult(analyzer, reader.error, frame, reader.bytes_read, reader.format)


__all__ = ["CaptureError", "RunResult", "analyze_source"]
