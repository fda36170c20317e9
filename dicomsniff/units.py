"""Times, durations and sizes in words, the same everywhere (report, live lines, diagrams,
findings, TUI): the one set of formatters. Capture times are shown in UTC (a capture has no
time zone; the report marks it with Z)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as _dt


def duration(seconds: float | None, *, precise: bool = True, missing: str = "-") -> str:
    """'43.6 ms' / '1.222 s' (precise), or '44 ms' / '1.2 s' for sentences."""
    if seconds is None:
        return missing
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms" if precise else f"{seconds * 1000:.0f} ms"
    return f"{seconds:.3f} s" if precise else f"{seconds:.1f} s"


def size(n: float, *, precise: bool = True) -> str:
    """'4649 B', '33.1 kB', '131.1 MB' (kB without a decimal when not precise)."""
    if n < 10_000:
        return f"{n:.0f} B"
    if n < 10_000_000:
        return f"{n / 1e3:.1f} kB" if precise else f"{n / 1e3:.0f} kB"
    return f"{n / 1e6:.1f} MB"


def duration_short(seconds: float | None, *, missing: str = "-") -> str:
    """For columns and live lines: '43.6 ms', '1.22 s', '12.5 min' (at most 8 characters)."""
    if seconds is None:
        return missing
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 600:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def size_short(n: int) -> str:
    """For columns: at most 8 characters ('999.9 kB'), so a Bytes column never cuts the unit."""
    if n < 10_000:
        return f"{n} B"
    for unit, scale in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if round(n / scale, 1) < 1000:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e12:.1f} TB"


def _utc(ts: float) -> _dt.datetime | None:
    import datetime as _dt  # only when a time is shown: --json never needs it

    try:
        return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
    except (ValueError, OverflowError, OSError):  # a capture's clock can say anything
        return None


def timestamp(ts: float | None, local: bool = False) -> str:
    """'2026-11-25 07:50:03.207Z': a capture time in full; with ``local`` this machine's
    local time and its offset, '2026-11-25 13:20:03.207+0530' (``--localtime``)."""
    if ts is None:
        return "-"
    when = _utc(ts)
    if when is None:
        return f"{ts:.3f} s"
    if local:
        here = when.astimezone()
        return here.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + here.strftime("%z")
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def clock(ts: float | None, local: bool = False) -> str:
    """'07:50:11.866': a capture time of day (UTC; the date is shown elsewhere), or this
    machine's local time of day with ``local`` (``--localtime``)."""
    if ts is None:
        return "-"
    when = _utc(ts)
    if when is not None and local:
        when = when.astimezone()
    return when.strftime("%H:%M:%S.%f")[:-3] if when is not None else f"{ts:.3f} s"


def date(ts: float | None) -> str:
    """'2026-11-25' (UTC)."""
    if ts is None:
        return "-"
    when = _utc(ts)
    return when.strftime("%Y-%m-%d") if when is not None else "-"


# -- words to numbers (command line options) ---------------------------------------------------

_SIZE_RE = r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*$"  # compiled when used (start-up)


_TIME_RE = r"(\d+(?:\.\d+)?)\s*([smhd]?)"


def parse_size(text: str) -> int:
    """'100MB' -> 100_000_000, '64MiB' -> 67108864, '4096' -> 4096 bytes."""
    m = re.match(_SIZE_RE, text, re.I)
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 100MB, 512kB, 1GiB)")
    num, unit, binary = float(m.group(1)), m.group(2).lower(), m.group(3)
    power = " kmgt".index(unit) if unit else 0
    value = int(num * ((1024 if binary else 1000) ** power))
    if value <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return value


def parse_duration(text: str) -> float:
    """'1h' -> 3600, '1h30m' -> 5400, '90' -> 90 seconds."""
    t = text.strip()
    pos = 0
    total = 0.0
    for m in re.finditer(_TIME_RE, t, re.I):
        if m.start() != pos or not m.group(0):
            break
        total += float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[
            m.group(2).lower()]
        pos = m.end()
    if not t or pos != len(t):
        raise ValueError(f"not a duration: {text!r} (examples: 30s, 15m, 1h, 1h30m)")
    if total <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return total
