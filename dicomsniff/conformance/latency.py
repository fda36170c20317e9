"""Response times of one service: exact while few, a log-scale histogram beyond.

Percentiles need the samples; keeping every latency of a night's C-STOREs would grow with the
capture. Up to ``EXACT`` samples are kept as they are (small captures get exact p50/p95);
beyond, they fold into buckets 2 % wide (so a percentile is within 1 % of the true value),
which is bounded (about 1,000 buckets between 1 us and 1 hour) and merges across files.
"""

from __future__ import annotations

import math

EXACT = 4096
_BASE = 1.02
_LOG_BASE = math.log(_BASE)
_FLOOR = 1e-6  # seconds; anything faster lands in the first bucket


def _bucket(value: float) -> int:
    return int(math.log(max(value, _FLOOR) / _FLOOR) / _LOG_BASE)


def _centre(bucket: int) -> float:
    return _FLOOR * _BASE ** (bucket + 0.5)


class Latencies:
    """Latencies in seconds: ``add``, ``merge``, ``quantile``, ``count``, ``max``."""

    __slots__ = ("exact", "buckets", "count", "max", "min")

    def __init__(self) -> None:
        self.exact: list[float] | None = []
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.max = 0.0
        self.min = math.inf

    def add(self, value: float) -> None:
        if value < 0 or value != value:  # clock steps in a capture: ignore, never crash
            return
        self.count += 1
        self.max = max(self.max, value)
        self.min = min(self.min, value)
        if self.exact is not None:
            self.exact.append(value)
            if len(self.exact) > EXACT:
                self._fold()
        else:
            b = _bucket(value)
            self.buckets[b] = self.buckets.get(b, 0) + 1

    def _fold(self) -> None:
        for v in self.exact or ():
            b = _bucket(v)
            self.buckets[b] = self.buckets.get(b, 0) + 1
        self.exact = None

    def merge(self, other: Latencies) -> None:
        if other.exact is not None and self.exact is not None:
            self.exact.extend(other.exact)
            if len(self.exact) > EXACT:
                self._fold()
        else:
            if self.exact is not None:
                self._fold()
            for v in other.exact or ():
                b = _bucket(v)
                self.buckets[b] = self.buckets.get(b, 0) + 1
            for b, n in other.buckets.items():
                self.buckets[b] = self.buckets.get(b, 0) + n
        self.count += other.count
        self.max = max(self.max, other.max)
        self.min = min(self.min, other.min)

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0..1), nearest rank; None without samples."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        if self.exact is not None:
            return sorted(self.exact)[rank - 1]
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return min(max(_centre(b), self.min), self.max)
        return self.max
