"""Latency histograms: every value counted, fixed memory, bounded relative error (HDR-style).

`Histogram` counts non-negative integers (e.g. microseconds) in log-linear buckets: below
``2**precision`` each value has its own bucket; above, every power-of-two range is split into
``2**(precision-1)`` equal buckets, so a bucket is never wider than ``2**-(precision-1)`` of its
values (0.1% at the default precision 11). Memory grows with the logarithm of the largest
value, never with the number of samples: there is no sample cap and no sampling. Quantiles are
the highest value of the bucket holding the rank (never below the true quantile, at most one
bucket width above it), like HdrHistogram's ``value_at_percentile``. Histograms merge exactly
(`merge`) and travel as JSON (`to_dict` / `from_dict`).

`LatencyHistogram` is the same in seconds (recorded as microseconds, clamped to `highest_s`):
the producer's confirm latency, the benches' end-to-end latency.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["Histogram", "LatencyHistogram"]


class Histogram:
    """Counts of non-negative integer values in log-linear buckets (see the module docstring)."""

    __slots__ = ("_counts", "_shift_base", "count", "max", "min", "precision", "total")

    def __init__(self, precision: int = 11) -> None:
        if not 2 <= precision <= 20:
            raise ValueError(f"precision={precision}: must be 2..20 bits")
        self.precision = precision
        self._shift_base = precision - 1
        self._counts: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0

    def _index(self, value: int) -> int:
        shift = value.bit_length() - self.precision
        if shift <= 0:
            return value
        # bucket (shift, value >> shift): the top `precision` bits of the value
        return (shift << self._shift_base) + (value >> shift)

    def _highest(self, index: int) -> int:
        """The highest value that falls into bucket `index`."""
        span = 1 << self.precision
        if index < span:
            return index
        shift = (index - (1 << self._shift_base)) >> self._shift_base
        top = index - (shift << self._shift_base)
        return ((top + 1) << shift) - 1

    def record(self, value: int, times: int = 1) -> None:
        """Count `value` (clamped at 0) `times` times."""
        if value < 0:
            value = 0
        index = self._index(value)
        counts = self._counts
        counts[index] = counts.get(index, 0) + times
        if not self.count or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.count += times
        self.total += value * times

    def record_many(self, values: Iterable[int]) -> None:
        for value in values:
            self.record(value)

    def merge(self, other: Histogram) -> None:
        """Add every count of `other` (same precision) to this histogram."""
        if other.precision != self.precision:
            raise ValueError("histograms of different precision do not merge")
        if not other.count:
            return
        for index, n in other._counts.items():
            self._counts[index] = self._counts.get(index, 0) + n
        self.min = other.min if not self.count else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    def quantile(self, q: float) -> int:
        """The value at quantile `q` (0..1): the highest value of the bucket holding the
        ``ceil(q * count)``-th smallest value (capped at `max`); 0 when empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q={q}: must be within 0..1")
        if not self.count:
            return 0
        rank = max(1, math.ceil(q * self.count - 1e-9))
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                return min(self._highest(index), self.max)
        return self.max

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    def summary(self, scale: float = 1.0, digits: int = 3) -> dict[str, float | int]:
        """count, min, p50, p90, p99, p99.9, max and mean, each multiplied by `scale`
        (e.g. 1e-3 for microseconds to milliseconds)."""

        def s(v: float) -> float:
            return round(v * scale, digits)

        return {
            "count": self.count,
            "min": s(self.min),
            "p50": s(self.quantile(0.5)),
            "p90": s(self.quantile(0.9)),
            "p99": s(self.quantile(0.99)),
            "p99.9": s(self.quantile(0.999)),
            "max": s(self.max),
            "mean": s(self.mean),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "count": self.count,
            "total": self.total,
            "min": self.min,
            "max": self.max,
            "counts": {str(k): v for k, v in sorted(self._counts.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        hist = cls(int(data["precision"]))
        hist._counts = {int(k): int(v) for k, v in data["counts"].items()}
        hist.count = int(data["count"])
        hist.total = int(data["total"])
        hist.min = int(data["min"])
        hist.max = int(data["max"])
        if sum(hist._counts.values()) != hist.count:
            raise ValueError("histogram counts do not add up to its count")
        return hist


_US = 1_000_000


class LatencyHistogram:
    """Durations in seconds in a `Histogram` of microseconds (0.1 % resolution), clamped to
    [0, `highest_s`]; no sample cap, memory bounded by the number of buckets."""

    __slots__ = ("_highest_us", "highest_s", "histogram")

    def __init__(self, highest_s: float = 3600.0, precision: int = 11) -> None:
        if not highest_s > 0:
            raise ValueError(f"highest_s must be > 0, not {highest_s}")
        self.highest_s = highest_s
        self._highest_us = int(highest_s * _US)
        self.histogram = Histogram(precision)

    def record(self, seconds: float, count: int = 1) -> None:
        """Record `count` durations of `seconds` (negative ones as 0, longer ones as
        `highest_s`)."""
        self.histogram.record(min(max(int(seconds * _US), 0), self._highest_us), count)

    @property
    def count(self) -> int:
        return self.histogram.count

    @property
    def max_s(self) -> float:
        return self.histogram.max / _US if self.histogram.count else 0.0

    @property
    def mean_s(self) -> float:
        return self.histogram.mean / _US

    def quantile(self, q: float) -> float:
        """The duration at quantile `q` (0..1) in seconds; 0.0 when nothing was recorded."""
        return self.histogram.quantile(q) / _US

    def merge(self, other: LatencyHistogram) -> None:
        """Add everything `other` recorded to this histogram."""
        self.histogram.merge(other.histogram)
