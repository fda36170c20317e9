"""Compressed captures (gzip, xz, zstd) read as streams, without temporary files.

tshark reads ``.gz``, ``.xz`` and ``.zst`` captures directly; so do we. The format is told by
the magic bytes, not the name (a rotated ``ct.pcapng.gz`` renamed ``ct.pcapng`` still works).
Decompression is the standard library's gzip and lzma and the ``zstandard`` package: each reads a
bounded window at a time, so memory does not grow with the file.

The decompressed stream hides ``fileno()`` so :class:`~.capture.CaptureReader` treats it as a
stream, not as the regular file underneath; :meth:`Decompressed.raw_position` says how far into
the file on disk decompression has gone, which is what a progress bar wants.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

__all__ = ["COMPRESSIONS", "Decompressed", "compression_of", "open_decompressed"]

#: magic bytes -> compression name
COMPRESSIONS: dict[bytes, str] = {
    b"\x1f\x8b": "gzip",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}

# zstd frames may declare a window up to 2 GiB; a hostile file must not make us allocate that.
# 128 MiB covers zstd --long=27, the largest window the zstd CLI uses without --long=N > 27.
_ZSTD_MAX_WINDOW = 1 << 27


def compression_of(head: bytes) -> str | None:
    """The compression a file's first bytes announce, or None."""
    for magic, name in COMPRESSIONS.items():
        if head.startswith(magic):
            return name
    return None


class Decompressed(io.RawIOBase):
    """A read-only decompressing stream over a binary file (closed with it)."""

    def __init__(self, raw: BinaryIO, kind: str, name: str) -> None:
        super().__init__()
        self._raw = raw
        self.kind = kind
        self.name = name
        if kind == "gzip":
            import gzip

            self._inner: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        elif kind == "xz":
            import lzma

            self._inner = lzma.LZMAFile(raw, mode="rb")  # type: ignore[assignment]
        elif kind == "zstd":
            import zstandard

            dctx = zstandard.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW)
            self._inner = dctx.stream_reader(raw, read_size=1 << 17,  # type: ignore[assignment]
                                             read_across_frames=True)
        else:
            raise ValueError(f"unknown compression {kind!r}")
        self._pending: OSError | None = None
        # one decompression step per call, so data before damage is not lost with it
        self._readinto1 = getattr(self._inner, "readinto1", None) or self._inner.readinto

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        """Fill ``b`` as far as the decompressor gets in steps of its own size; an error (a
        truncated or corrupt file) is raised only once the data before it has been returned."""
        if self._pending is not None:
            exc, self._pending = self._pending, None
            raise exc
        view = memoryview(b).cast("B")
        want = len(view)
        got = 0
        read1 = self._readinto1
        while got < want:
            try:
                n = read1(view[got:])
            except EOFError as exc:  # gzip/xz: "Compressed file ended before the end-of-stream"
                err: OSError = OSError(f"{self.kind} stream truncated ({exc})")
            except OSError as exc:
                err = exc
            except Exception as exc:  # lzma.LZMAError, zstandard.ZstdError: corrupt data
                err = OSError(f"corrupt {self.kind} data: {exc}")
            else:
                if not n:
                    break
                got += n
                continue
            if got:
                self._pending = err
                break
            raise err
        return got

    def raw_position(self) -> int:
        """Bytes of the compressed file consumed so far."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            finally:
                self._raw.close()
        super().close()


def open_decompressed(path: str) -> tuple[BinaryIO, str | None]:
    """Open ``path`` for reading: the file itself, or a decompressing stream over it.

    Returns (stream, compression name or None). OSErrors propagate to the caller, which words
    them.
    """
    raw = open(path, "rb")  # noqa: SIM115 - returned to the caller
    try:
        head = raw.read(6)
        raw.seek(0)
    except OSError:
        raw.close()
        raise
    kind = compression_of(head)
    if kind is None:
        return raw, None
    return Decompressed(raw, kind, os.fsdecode(path)), kind  # type: ignore[return-value]
