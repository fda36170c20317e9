"""Live capture, by job (this module only gathers their names for older imports):
:mod:`.interfaces` (interfaces, helpers, filters, errors), :mod:`.helper` (the capture helper
process), :mod:`.replay` (a file or stream replayed live), :mod:`.capwriter` (the ``-w``
files with rotation); sizes and durations in words are :mod:`dicomsniff.units`'.
"""

from __future__ import annotations

from ..units import parse_duration, parse_size
from .capwriter import CaptureWriter, WrittenFile, tee
from .helper import DEFAULT_BUFFER_MIB, SNAPLEN, CaptureStats, HelperCapture, Ticker, parse_stats
from .interfaces import (
    BadFilter,
    LiveError,
    NoPermission,
    NoSuchInterface,
    build_filter,
    find_helper,
    interface_exists,
    is_ethernet,
    list_interfaces,
    permission_hint,
)
from .replay import ReplayCapture

__all__ = [
    "DEFAULT_BUFFER_MIB",
    "SNAPLEN",
    "BadFilter",
    "CaptureStats",
    "CaptureWriter",
    "HelperCapture",
    "LiveError",
    "NoPermission",
    "NoSuchInterface",
    "ReplayCapture",
    "Ticker",
    "WrittenFile",
    "build_filter",
    "find_helper",
    "interface_exists",
    "is_ethernet",
    "list_interfaces",
    "parse_duration",
    "parse_size",
    "parse_stats",
    "permission_hint",
    "tee",
]
