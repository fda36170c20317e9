"""Durations and sizes in words, the same everywhere (report, diagrams, findings, TUI)."""

from __future__ import annotations


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
