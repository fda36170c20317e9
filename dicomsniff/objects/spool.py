"""A DatasetSink that keeps a data set in memory, or in a temporary file once it is large.

``show`` needs a message's data set whole to decode it, but one C-STORE can carry hundreds of
megabytes: past ``limit`` bytes the data go to an anonymous temporary file instead.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from typing import BinaryIO

MEMORY_LIMIT = 8 << 20


class Spool:
    """DatasetSink: ``write`` bytes, ``close(partial)``; then ``open()`` to read them back."""

    __slots__ = ("_mem", "_file", "size", "partial", "closed", "limit", "on_close")

    def __init__(self, limit: int = MEMORY_LIMIT,
                 on_close: Callable[[Spool], None] | None = None) -> None:
        self._mem: bytearray | None = bytearray()
        self._file: BinaryIO | None = None
        self.size = 0
        self.partial = False
        self.closed = False
        self.limit = limit
        self.on_close = on_close

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._mem is not None:
            self._mem += data
            if len(self._mem) <= self.limit:
                return
            self._file = tempfile.TemporaryFile(prefix="dicomsniff-")  # noqa: SIM115
            self._file.write(self._mem)
            self._mem = None
            return
        assert self._file is not None
        self._file.write(data)

    def close(self, partial: bool) -> None:
        self.partial = partial
        self.closed = True
        if self.on_close is not None:
            self.on_close(self)

    def open(self, prefix: bytes = b"") -> BinaryIO:
        """A readable stream of ``prefix`` then the data set (for pydicom)."""
        if self._mem is not None:
            return io.BytesIO(prefix + bytes(self._mem))
        assert self._file is not None
        self._file.seek(0)
        return _Chain(prefix, self._file)  # type: ignore[return-value]

    def head(self, n: int) -> bytes:
        if self._mem is not None:
            return bytes(self._mem[:n])
        assert self._file is not None
        self._file.seek(0)
        return self._file.read(n)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
        self._mem = bytearray()
        self._file = None


class _Chain(io.RawIOBase):
    """prefix + file, seekable, without copying the file into memory."""

    def __init__(self, prefix: bytes, f: BinaryIO) -> None:
        self._p, self._f, self._pos = prefix, f, 0
        f.seek(0, io.SEEK_END)
        self._len = len(prefix) + f.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._len}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = len(b)
        out = bytearray()
        if self._pos < len(self._p):
            out += self._p[self._pos:self._pos + n]
        if len(out) < n:
            self._f.seek(max(0, self._pos + len(out) - len(self._p)))
            out += self._f.read(n - len(out))
        b[:len(out)] = out
        self._pos += len(out)
        return len(out)
