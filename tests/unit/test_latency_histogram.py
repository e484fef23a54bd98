"""`LatencyHistogram`: latencies in seconds, quantiles within 0.1 %, no sample cap."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from superticks.histogram import LatencyHistogram


def test_an_empty_histogram_reports_zeros() -> None:
    h = LatencyHistogram()
    assert (h.count, h.quantile(0.5), h.max_s, h.mean_s) == (0, 0.0, 0.0, 0.0)


def test_quantiles_match_the_sorted_samples_to_three_significant_digits() -> None:
    rng = random.Random(7)
    samples = [rng.lognormvariate(-6, 1.5) for _ in range(20_000)]  # ~2.5 ms median, long tail
    h = LatencyHistogram()
    for s in samples:
        h.record(s)
    ordered = sorted(samples)
    for q in (0.5, 0.9, 0.99, 0.999):
        exact = ordered[int(q * len(ordered)) - 1]
        assert h.quantile(q) == pytest.approx(exact, rel=2e-3, abs=2e-6)
    assert h.count == len(samples)
    assert h.max_s == pytest.approx(max(samples), rel=1e-3)


def test_values_keep_moving_the_quantiles_after_many_samples() -> None:
    """The old producer kept the first 100,000 samples only: p50 froze for the rest of a run."""
    h = LatencyHistogram()
    h.record(0.001, count=150_000)
    for _ in range(200_000):
        h.record(0.050)
    assert h.quantile(0.5) == pytest.approx(0.050, rel=1e-3)
    assert h.count == 350_000


def test_memory_does_not_grow_with_the_number_of_values() -> None:
    h = LatencyHistogram()
    for i in range(997):
        h.record(i / 1e4)  # every bucket these values fall into exists now
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(100_000):
        h.record((i % 997) / 1e4)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 10_000


def test_values_out_of_range_are_clamped_not_refused() -> None:
    h = LatencyHistogram(highest_s=10.0)
    h.record(-1.0)
    h.record(1e6)
    assert h.count == 2
    assert h.quantile(1.0) == pytest.approx(10.0, rel=1e-3)


def test_a_histogram_of_no_range_is_refused() -> None:
    with pytest.raises(ValueError, match="highest_s must be > 0"):
        LatencyHistogram(highest_s=0)


def test_merge_adds_the_counts() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    a.record(0.001, 3)
    b.record(0.003, 1)
    a.merge(b)
    assert a.count == 4
    assert a.quantile(1.0) == pytest.approx(0.003, rel=1e-3)
