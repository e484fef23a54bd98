"""Contenders measured in rounds: each round rotates the order, ratios pair the rounds."""

from __future__ import annotations

import pytest

from bench.rounds import paired_ratio, rotated


def test_each_round_starts_at_the_next_contender() -> None:
    contenders = ["ceiling", "superticks", "rbfly"]
    assert [rotated(contenders, r) for r in range(4)] == [
        ["ceiling", "superticks", "rbfly"],
        ["superticks", "rbfly", "ceiling"],
        ["rbfly", "ceiling", "superticks"],
        ["ceiling", "superticks", "rbfly"],
    ]


def test_no_contender_is_first_twice_in_as_many_rounds_as_contenders() -> None:
    contenders = list(range(5))
    assert sorted(rotated(contenders, r)[0] for r in range(5)) == contenders


def test_a_ratio_is_the_median_of_the_rounds_ratios_not_the_ratio_of_medians() -> None:
    # rounds: 100/50 = 2.0, 200/400 = 0.5, 300/250 = 1.2; the medians' ratio is 200/250 = 0.8
    assert paired_ratio([100, 200, 300], [50, 400, 250]) == 1.2


def test_a_ratio_refuses_unpaired_rounds() -> None:
    with pytest.raises(ValueError, match="2 rounds against 3"):
        paired_ratio([1.0, 2.0], [1.0, 2.0, 3.0])


def test_a_ratio_refuses_a_contender_that_did_nothing() -> None:
    with pytest.raises(ValueError, match="not positive"):
        paired_ratio([100.0, 120.0], [90.0, 0.0])
    with pytest.raises(ValueError, match="no rounds"):
        paired_ratio([], [])
