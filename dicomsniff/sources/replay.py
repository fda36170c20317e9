"""``dicomsniff live -r FILE``: a capture file or a pcap stream on standard input, replayed
through the live pipeline (the same stop, summary and files as a capture)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .capture import CaptureError, CaptureReader, Packet
from .helper import CaptureStats
from .interfaces import LiveError


class ReplayCapture:
    """``-r FILE`` (or ``-r -``, a pcap stream such as ``ssh host tcpdump -U -w -``) through
    the live pipeline: the same outputs, files and summary as a capture, for remote captures
    and for trying the live view on a recording."""

    name = "file"

    def __init__(self, source: str, *, count: int | None = None) -> None:
        self.source = source
        self.count = count
        self.stats = CaptureStats()
        self.reader_error: str | None = None
        self.bytes_read = 0
        self.linktype: int | None = None
        self._reader: CaptureReader | None = None
        self._stopping = False

    def start(self, timeout: float = 0.0) -> None:
        import sys

        try:
            self._reader = CaptureReader(sys.stdin.buffer if self.source == "-" else self.source)
        except CaptureError as exc:
            raise LiveError(str(exc)) from None

    def packets(self) -> Iterator[Packet]:
        assert self._reader is not None
        reader = self._reader
        left = self.count or -1
        try:
            for p in reader:
                if self._stopping:
                    break
                yield p
                left -= 1
                if not left:
                    break
        finally:
            self.bytes_read = reader.bytes_read
            self.stats.captured = reader.packets
            self.reader_error = reader.error
            reader.close()

    @property
    def packets_read(self) -> int:
        return self._reader.packets if self._reader is not None else 0

    def stop(self, now: bool = False) -> None:
        self._stopping = True

    def kill(self) -> None:
        self._stopping = True

    def request_stats(self) -> None:
        """A file has no kernel counters."""

    def when_idle(self, callback: Callable[[], None]) -> None:
        """Reading a file is never idle for long: the writer flushes by size and at the end."""

    def close(self, timeout: float = 0.0) -> CaptureStats:
        return self.stats

    def failure(self) -> str | None:
        return None
