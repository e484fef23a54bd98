"""Specification of bench.verdict: the lossless verdict shared by tests and benchmarks.

Each symbol's ticks are published with sequence numbers 0..count-1; a consumer's sightings are
(symbol, sequence_number) pairs in the order seen. Every sighting is exactly one of: in order,
duplicated, reordered (first sighting after a higher one of its symbol) or unexpected.
"""

from __future__ import annotations

import json
import random

import pytest

from bench.verdict import Verdict, VerdictBuilder, verdict


def in_order(symbol: str, count: int) -> list[tuple[str, int]]:
    return [(symbol, seq) for seq in range(count)]


def naive_gaps(count: int, seen: set[int]) -> list[tuple[int, int]]:
    """Missing ranges computed the obvious way, to check the bitmap scan against."""
    ranges: list[tuple[int, int]] = []
    for seq in range(count):
        if seq in seen:
            continue
        if ranges and ranges[-1][1] == seq - 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


# --- the happy path --------------------------------------------------------------------------


def test_every_tick_once_and_in_order_is_ok() -> None:
    observed = in_order("AAPL", 5) + in_order("MSFT", 3)

    result = verdict({"AAPL": 5, "MSFT": 3}, observed)

    assert result == Verdict(
        expected=8, received=8, lost=0, duplicated=0, reordered=0, unexpected=0
    )
    assert result.ok


def test_interleaving_symbols_does_not_break_per_symbol_order() -> None:
    observed = [("AAPL", 0), ("MSFT", 0), ("MSFT", 1), ("AAPL", 1), ("MSFT", 2), ("AAPL", 2)]

    assert verdict({"AAPL": 3, "MSFT": 3}, observed).ok


def test_an_empty_run_is_not_ok() -> None:
    assert not verdict({}, []).ok
    assert not verdict({"AAPL": 0}, []).ok


def test_a_symbol_expected_with_zero_ticks_and_never_seen_is_ok() -> None:
    assert verdict({"AAPL": 0, "MSFT": 1}, [("MSFT", 0)]).ok


# --- lost ------------------------------------------------------------------------------------


def test_a_missing_sequence_number_is_lost_and_reported_as_a_gap() -> None:
    observed = [("AAPL", 0), ("AAPL", 1), ("AAPL", 4), ("AAPL", 5)]

    result = verdict({"AAPL": 6}, observed)

    assert (result.lost, result.received, result.reordered) == (2, 4, 0)
    assert result.per_symbol_gaps == {"AAPL": [(2, 3)]}
    assert not result.ok


def test_a_lost_tail_is_a_gap_up_to_the_last_expected_sequence_number() -> None:
    result = verdict({"AAPL": 10}, in_order("AAPL", 7))

    assert result.lost == 3
    assert result.per_symbol_gaps == {"AAPL": [(7, 9)]}


def test_a_symbol_never_seen_is_lost_entirely() -> None:
    result = verdict({"AAPL": 2, "MSFT": 4}, in_order("AAPL", 2))

    assert result.lost == 4
    assert result.per_symbol_gaps == {"MSFT": [(0, 3)]}


def test_only_symbols_with_missing_ticks_appear_in_the_gaps() -> None:
    result = verdict({"AAPL": 3, "MSFT": 3}, [*in_order("AAPL", 3), ("MSFT", 0), ("MSFT", 2)])

    assert result.per_symbol_gaps == {"MSFT": [(1, 1)]}


@pytest.mark.parametrize("seed", range(5))
def test_gap_ranges_match_a_naive_computation(seed: int) -> None:
    rnd = random.Random(seed)
    count = rnd.randrange(1, 300)
    seen = {seq for seq in range(count) if rnd.random() < 0.6}

    result = verdict({"X": count}, [("X", seq) for seq in sorted(seen)])

    assert result.per_symbol_gaps.get("X", []) == naive_gaps(count, seen)
    assert result.lost == count - len(seen)


def test_a_million_tick_gap_is_one_range() -> None:
    result = verdict({"AAPL": 1_000_000}, [("AAPL", 0), ("AAPL", 999_999)])

    assert result.per_symbol_gaps == {"AAPL": [(1, 999_998)]}
    assert result.lost == 999_998


# --- duplicated ------------------------------------------------------------------------------


def test_seeing_a_tick_again_is_a_duplicate_not_a_reorder() -> None:
    observed = [("AAPL", 0), ("AAPL", 1), ("AAPL", 1), ("AAPL", 0), ("AAPL", 2)]

    result = verdict({"AAPL": 3}, observed)

    assert (result.duplicated, result.reordered, result.lost) == (2, 0, 0)
    assert result.received == 5
    assert not result.ok


def test_every_extra_sighting_of_a_tick_is_one_more_duplicate() -> None:
    result = verdict({"AAPL": 1}, [("AAPL", 0)] * 4)

    assert result.duplicated == 3


def test_a_redelivered_stream_is_all_duplicates() -> None:
    result = verdict({"AAPL": 4}, in_order("AAPL", 4) * 2)

    assert (result.duplicated, result.reordered) == (4, 0)


# --- reordered -------------------------------------------------------------------------------


def test_a_swapped_pair_is_one_reorder() -> None:
    result = verdict({"AAPL": 3}, [("AAPL", 0), ("AAPL", 2), ("AAPL", 1)])

    assert (result.reordered, result.lost, result.duplicated) == (1, 0, 0)
    assert result.per_symbol_gaps == {}
    assert not result.ok


def test_each_tick_arriving_after_a_higher_one_counts_as_a_reorder() -> None:
    result = verdict({"AAPL": 4}, [("AAPL", 3), ("AAPL", 0), ("AAPL", 1), ("AAPL", 2)])

    assert result.reordered == 3


def test_order_is_judged_per_symbol() -> None:
    observed = [("MSFT", 5), ("AAPL", 0), ("AAPL", 1), *in_order("MSFT", 5)]

    result = verdict({"AAPL": 2, "MSFT": 6}, observed)

    assert result.reordered == 5


# --- unexpected ------------------------------------------------------------------------------


def test_a_symbol_that_was_not_expected_is_unexpected() -> None:
    result = verdict({"AAPL": 1}, [("AAPL", 0), ("TSLA", 0), ("TSLA", 0)])

    assert (result.unexpected, result.duplicated) == (2, 0)
    assert not result.ok


@pytest.mark.parametrize("seq", [-1, 3, 1_000])
def test_a_sequence_number_outside_the_published_range_is_unexpected(seq: int) -> None:
    result = verdict({"AAPL": 3}, [*in_order("AAPL", 3), ("AAPL", seq)])

    assert result.unexpected == 1
    assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
    assert not result.ok


def test_an_unexpected_sequence_number_does_not_make_later_ones_reordered() -> None:
    result = verdict({"AAPL": 3}, [("AAPL", 0), ("AAPL", 99), ("AAPL", 1), ("AAPL", 2)])

    assert (result.unexpected, result.reordered) == (1, 0)


# --- accounting and reporting ----------------------------------------------------------------


def test_received_counts_every_sighting_and_balances_the_other_counts() -> None:
    observed = [("AAPL", 0), ("AAPL", 2), ("AAPL", 2), ("AAPL", 1), ("ZZZ", 0), ("AAPL", 7)]

    result = verdict({"AAPL": 5}, observed)

    assert result.received == 6
    assert result.received == (
        result.expected - result.lost + result.duplicated + result.unexpected
    )


def test_to_dict_is_json_serialisable_and_carries_ok() -> None:
    result = verdict({"AAPL": 5}, [("AAPL", 0), ("AAPL", 4)])

    assert json.loads(json.dumps(result.to_dict())) == {
        "ok": False,
        "expected": 5,
        "received": 2,
        "lost": 3,
        "duplicated": 0,
        "reordered": 0,
        "unexpected": 0,
        "per_symbol_gaps": {"AAPL": [[1, 3]]},
    }


def test_summary_of_a_clean_run_is_one_ok_line() -> None:
    summary = verdict({"AAPL": 2}, in_order("AAPL", 2)).summary()

    assert summary.startswith("OK expected=2 received=2 lost=0")
    assert "\n" not in summary


def test_summary_of_a_failed_run_says_fail_and_names_symbols_with_gaps() -> None:
    summary = verdict({"AAPL": 3, "MSFT": 1}, [("AAPL", 1)]).summary()

    assert summary.startswith("FAIL ")
    assert "AAPL:2 range(s)" in summary
    assert "MSFT:1 range(s)" in summary
    assert "\n" not in summary


# --- VerdictBuilder --------------------------------------------------------------------------


def test_the_builder_streams_to_the_same_verdict_as_the_function() -> None:
    rnd = random.Random(7)
    expected = {"AAPL": 50, "MSFT": 40, "EURUSD": 10}
    observed = [(symbol, rnd.randrange(-2, count + 2)) for symbol, count in expected.items()] * 30
    observed += [("ZZZ", 1)]
    rnd.shuffle(observed)
    builder = VerdictBuilder()
    for symbol, count in expected.items():
        builder.expect(symbol, count)

    for symbol, seq in observed:
        builder.observe(symbol, seq)

    assert builder.result() == verdict(expected, observed)


def test_the_builders_result_reflects_the_sightings_so_far() -> None:
    builder = VerdictBuilder()
    builder.expect("AAPL", 2)
    builder.observe("AAPL", 0)
    assert builder.result().lost == 1

    builder.observe("AAPL", 1)

    assert builder.result().ok


def test_a_symbol_cannot_be_expected_twice() -> None:
    builder = VerdictBuilder()
    builder.expect("AAPL", 2)

    with pytest.raises(ValueError, match="already expected"):
        builder.expect("AAPL", 3)


def test_a_symbol_cannot_be_expected_after_it_was_observed_as_unexpected() -> None:
    builder = VerdictBuilder()
    builder.observe("AAPL", 0)

    with pytest.raises(ValueError, match="before expect"):
        builder.expect("AAPL", 1)


def test_a_negative_expected_count_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        VerdictBuilder().expect("AAPL", -1)
