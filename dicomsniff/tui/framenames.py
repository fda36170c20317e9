"""Frames as the user finds them when the capture is several files.

The TUI numbers frames over the merged capture (one file: Wireshark's numbers). With several
files, a frame is also named by its file and its own number there (``ct_00003.pcap#56``, as
Wireshark shows it in that file), here and in the ladder, as the report and the JSON do
(:mod:`dicomsniff.report.framerefs`). The source that reads the capture says how, once
(:func:`use`); one capture is browsed per process.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["describe", "frame", "use"]

_describe: Callable[[int], str | None] | None = None


def use(describe: Callable[[int], str | None] | None) -> None:
    """``describe(frame)`` -> ``"file#n"`` (a CaptureSet's), or None for one file."""
    global _describe
    _describe = describe


def describe(n: int) -> str | None:
    """``"file#n"`` of merged frame ``n``, or None (one file, or not known)."""
    return _describe(n) if _describe is not None else None


def frame(n: int | None) -> str:
    """``"frame 123"``, or ``"frame 123 (ct_00003.pcap#56)"`` with several files."""
    name = describe(n) if n is not None else None
    return f"frame {n}" + (f" ({name})" if name else "")
