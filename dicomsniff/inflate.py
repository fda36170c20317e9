"""Bounded inflation of Deflated Explicit VR Little Endian data sets (PS3.5 A.5).

A deflated data set is the one place where a few bytes on the wire can become gigabytes in
memory: a 4 MB C-FIND identifier can inflate to 4 GB. pydicom inflates a whole deflated file
with one ``zlib.decompress`` call, so nothing that decodes a wire data set (``show``,
``show --check-queries``, ``export-objects --anonymize``, the TUI's detail pane) hands pydicom
deflated bytes: they come here first and are inflated through ``zlib.decompressobj`` with
``max_length``, which never produces more than the cap, however the stream was built. Past
the cap the data set is reported undecodable (:class:`InflateLimitExceeded`), never allocated.

The cap is ``--max-inflate`` (default :data:`DEFAULT_LIMIT`); the commands that decode data
sets call :func:`set_limit` with it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import BinaryIO

from .uids import is_deflated as _is_deflated

DEFAULT_LIMIT = 64 << 20  # inflated bytes per data set: far above any identifier or header
_STEP = 1 << 16  # compressed bytes handed to zlib at a time

_limit = DEFAULT_LIMIT


class InflateError(ValueError):
    """The deflated data set cannot be inflated (corrupt stream, or past the cap)."""


class InflateLimitExceeded(InflateError):
    """The data set inflates to more than the cap."""


def set_limit(limit: int) -> None:
    """The cap for this run (``--max-inflate``)."""
    global _limit
    if limit <= 0:
        raise ValueError("the inflation cap must be positive")
    _limit = limit


def limit() -> int:
    return _limit


def is_deflated(transfer_syntax: str | None) -> bool:
    """The data set is deflated (:func:`dicomsniff.uids.is_deflated`: Deflated Explicit VR
    Little Endian and the JPIP Referenced Deflate syntaxes; not Deflated Image Frame
    Compression, whose frames are deflated, not its data set)."""
    return _is_deflated(transfer_syntax)


def _chunks(source: bytes | bytearray | memoryview | BinaryIO) -> Iterable[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        for i in range(0, len(view), _STEP):
            yield bytes(view[i:i + _STEP])
        return
    while True:
        block = source.read(_STEP)
        if not block:
            return
        yield block


def inflate(source: bytes | bytearray | memoryview | BinaryIO, cap: int | None = None,
            *, allow_truncated: bool = True) -> bytearray:
    """The inflated bytes of a raw deflate stream (RFC 1951, no zlib header, as PS3.5 A.5).

    At most ``cap`` bytes (default: the run's ``--max-inflate``) are ever produced; one more
    means :class:`InflateLimitExceeded`. A stream cut short (a capture that lost the end of
    the data set) gives what could be inflated when ``allow_truncated``; a corrupt stream is
    :class:`InflateError`. Time is bounded too: zlib's work is linear in what it produces and
    consumes, and production stops at the cap.
    """
    cap = _limit if cap is None else cap
    d = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    try:
        for chunk in _chunks(source):
            data = chunk
            while data:
                room = cap + 1 - len(out)
                out += d.decompress(data, room)
                if len(out) > cap:
                    raise InflateLimitExceeded(
                        f"it inflates to more than {cap} bytes (the --max-inflate cap); "
                        "not decoded")
                data = d.unconsumed_tail
            if d.eof:
                break
        if not d.eof and not allow_truncated:
            raise InflateError("the deflated stream ends early")
        out += d.flush(cap + 1 - len(out))
        if len(out) > cap:
            raise InflateLimitExceeded(
                f"it inflates to more than {cap} bytes (the --max-inflate cap); not decoded")
    except zlib.error as exc:
        raise InflateError(f"the deflated stream is corrupt ({exc})") from None
    return out  # not copied: it may be tens of megabytes


def _size(text: str) -> int:
    import argparse

    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    mult = units.get(t[-1:], 1)
    try:
        v = int(t[:-1] if t[-1:] in units else t, 0) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (bytes, or 64M, 1G)") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return v


def add_option(parser) -> None:  # type: ignore[no-untyped-def]
    """``--max-inflate`` for a command that decodes data sets; read back with
    :func:`apply_option`."""
    parser.add_argument("--max-inflate", type=_size, default=DEFAULT_LIMIT, metavar="BYTES",
                        help="largest size a Deflated Explicit VR Little Endian data set may "
                             "inflate to before it is reported undecodable instead "
                             f"(default {DEFAULT_LIMIT >> 20}M; accepts K, M, G)")


def apply_option(args: object) -> None:
    set_limit(getattr(args, "max_inflate", DEFAULT_LIMIT))
