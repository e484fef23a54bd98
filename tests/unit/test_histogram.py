"""The latency histogram: every value counted, quantiles within one bucket of the truth."""

from __future__ import annotations

import json
import math
import random

import pytest

from superticks.histogram import Histogram


def test_small_values_are_exact() -> None:
    hist = Histogram()
    hist.record_many(range(1, 1001))
    assert hist.count == 1000
    assert (hist.min, hist.max) == (1, 1000)
    assert hist.quantile(0.5) == 500
    assert hist.quantile(0.99) == 990
    assert hist.quantile(0.999) == 999
    assert hist.quantile(1.0) == 1000
    assert hist.mean == 500.5


def test_large_values_stay_within_the_relative_error_and_never_below_the_truth() -> None:
    rng = random.Random(3)
    values = sorted(rng.randrange(0, 10**9) for _ in range(20_000))
    hist = Histogram(precision=11)
    hist.record_many(values)
    for q in (0.1, 0.5, 0.9, 0.99, 0.999):
        true = values[math.ceil(q * len(values)) - 1]
        got = hist.quantile(q)
        assert true <= got <= true * (1 + 2**-10) + 1


def test_memory_does_not_grow_with_the_number_of_samples() -> None:
    hist = Histogram()
    for _ in range(50):
        hist.record_many(range(5_000, 6_000))
    assert hist.count == 50_000
    assert len(hist.to_dict()["counts"]) <= 1_000


def test_merge_equals_recording_everything_in_one() -> None:
    a, b, both = Histogram(), Histogram(), Histogram()
    for v in range(0, 100_000, 7):
        (a if v % 2 else b).record(v)
        both.record(v)
    a.merge(b)
    assert a.to_dict() == both.to_dict()


def test_json_round_trip_keeps_every_count() -> None:
    hist = Histogram()
    hist.record_many([0, 3, 3, 70_000, 12_345_678])
    again = Histogram.from_dict(json.loads(json.dumps(hist.to_dict())))
    assert again.to_dict() == hist.to_dict()
    assert again.quantile(0.5) == hist.quantile(0.5)


def test_a_corrupted_dict_is_refused() -> None:
    data = Histogram().to_dict()
    data["count"] = 3
    with pytest.raises(ValueError, match="add up"):
        Histogram.from_dict(data)


def test_an_empty_histogram_summarises_to_zeros() -> None:
    assert Histogram().summary()["p99"] == 0
