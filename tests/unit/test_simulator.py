"""The market simulator: deterministic, per-symbol contiguous sequences, skewed, always valid."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from decimal import Decimal

import msgspec
import orjson
import pytest

from partitioning.codec import decode_body
from partitioning.model import MarketData, format_timestamp_us
from partitioning.simulator import DEFAULT_EXCHANGES, LARGE_CAPS, MarketSimulator


def test_same_seed_gives_the_same_ticks() -> None:
    assert MarketSimulator(200, seed=7).batch(2000) == MarketSimulator(200, seed=7).batch(2000)


def test_another_seed_gives_other_ticks() -> None:
    assert MarketSimulator(200, seed=7).batch(100) != MarketSimulator(200, seed=8).batch(100)


def test_generated_symbols_start_with_real_large_caps() -> None:
    assert MarketSimulator(5).symbols == list(LARGE_CAPS[:5])


def test_generated_symbols_are_unique_valid_tickers() -> None:
    symbols = MarketSimulator(2000, seed=3).symbols
    assert len(symbols) == len(set(symbols)) == 2000
    synthetic = symbols[len(LARGE_CAPS) :]
    assert all(s.isalpha() and s.isupper() and 3 <= len(s) <= 5 for s in synthetic)


def test_generated_symbols_are_deterministic_under_seed() -> None:
    assert MarketSimulator(500, seed=1).symbols == MarketSimulator(500, seed=1).symbols


def test_given_symbols_are_used_as_is() -> None:
    simulator = MarketSimulator(["AAPL", "トヨタ"], seed=1)
    assert {symbol for symbol, _ in simulator.batch(200)} == {"AAPL", "トヨタ"}


def test_every_body_decodes_and_names_its_symbol() -> None:
    for symbol, body in MarketSimulator(300, seed=11).batch(20_000):
        assert decode_body(body).symbol == symbol


def test_every_body_is_a_valid_model() -> None:
    for _, body in MarketSimulator(50, seed=12).batch(2000):
        MarketData.from_bytes(body)


def test_bid_never_exceeds_ask_and_sizes_are_positive_round_lots() -> None:
    for _, body in MarketSimulator(100, seed=13).batch(20_000):
        tick = decode_body(body)
        assert Decimal(tick.bid_price) <= Decimal(tick.ask_price)
        for size in (tick.bid_size, tick.ask_size, tick.last_size):
            assert int(size) > 0
            assert int(size) % 100 == 0


def test_last_price_is_the_bid_or_the_ask() -> None:
    for _, body in MarketSimulator(100, seed=14).batch(5000):
        tick = decode_body(body)
        assert tick.last_price in (tick.bid_price, tick.ask_price)


def test_prices_have_two_decimals() -> None:
    for _, body in MarketSimulator(100, seed=15).batch(2000):
        tick = decode_body(body)
        assert len(tick.bid_price.split(".")[1]) == 2


def test_sequence_numbers_are_contiguous_per_symbol_from_zero() -> None:
    seen: defaultdict[str, list[int]] = defaultdict(list)
    for _, body in MarketSimulator(100, seed=16).batch(20_000):
        tick = decode_body(body)
        seen[tick.symbol].append(tick.sequence_number)
    for numbers in seen.values():
        assert numbers == list(range(len(numbers)))


def test_volume_accumulates_last_sizes_per_symbol() -> None:
    totals: Counter[str] = Counter()
    for _, body in MarketSimulator(50, seed=17).batch(5000):
        tick = decode_body(body)
        totals[tick.symbol] += int(tick.last_size)
        assert int(tick.volume) == totals[tick.symbol]


def test_activity_is_zipf_skewed() -> None:
    counts = Counter(symbol for symbol, _ in MarketSimulator(1000, seed=18).batch(100_000))
    frequencies = sorted(counts.values(), reverse=True)
    median = statistics.median(frequencies + [0] * (1000 - len(frequencies)))
    assert frequencies[0] > 50 * max(median, 1)


def test_a_zero_zipf_exponent_spreads_activity_evenly() -> None:
    counts = Counter(symbol for symbol, _ in MarketSimulator(10, seed=19, zipf_s=0).batch(20_000))
    assert max(counts.values()) < 1.2 * min(counts.values())


def test_exchanges_are_drawn_per_tick_from_the_given_list() -> None:
    exchanges = Counter(
        orjson.loads(body)["exchange"] for _, body in MarketSimulator(10, seed=20).batch(5000)
    )
    assert set(exchanges) == set(DEFAULT_EXCHANGES)


def test_custom_exchanges_are_used() -> None:
    simulator = MarketSimulator(10, exchanges=["XNAS"], seed=1)
    assert {orjson.loads(body)["exchange"] for _, body in simulator.batch(100)} == {"XNAS"}


def test_the_clock_starts_at_the_given_timestamp_and_never_goes_back() -> None:
    simulator = MarketSimulator(10, seed=21, start_timestamp_us=1_000_000)
    stamps = [decode_body(body).timestamp_us for _, body in simulator.batch(5000)]
    assert stamps[0] >= 1_000_000
    assert stamps == sorted(stamps)
    assert simulator.timestamp_us == stamps[-1]


def test_the_clock_advances_about_ten_microseconds_per_tick() -> None:
    simulator = MarketSimulator(10, seed=22, start_timestamp_us=0)
    simulator.batch(100_000)
    assert 5 < simulator.timestamp_us / 100_000 < 20


def test_realtime_clock_follows_the_wall_clock() -> None:
    import time

    before = time.time_ns() // 1000
    _, body = MarketSimulator(10, seed=23, realtime=True).next_body()
    assert before <= decode_body(body).timestamp_us <= time.time_ns() // 1000


def test_next_tick_continues_the_same_stream() -> None:
    simulator = MarketSimulator(10, seed=24)
    simulator.next_body()
    tick = simulator.next_tick()
    assert isinstance(tick, MarketData)
    assert (
        tick.model_dump()
        == MarketData.from_bytes(MarketSimulator(10, seed=24).batch(2)[1][1]).model_dump()
    )


def test_batch_returns_n_pairs() -> None:
    assert len(MarketSimulator(10).batch(123)) == 123


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbols": 0}, "symbols=0: must be >= 1"),
        ({"symbols": []}, "needs at least one symbol"),
        ({"symbols": ["AAPL", "AAPL"]}, "must be unique"),
        ({"symbols": ["AA PL"]}, "symbol='AA PL'"),
        ({"symbols": 5, "exchanges": []}, "exchanges="),
        ({"symbols": 5, "zipf_s": -1.0}, "zipf_s=-1.0"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MarketSimulator(**kwargs)  # type: ignore[arg-type]


def test_an_unstamped_tick_stamped_when_sent_is_the_same_tick_with_that_timestamp() -> None:
    at_us = 1_796_173_038_245_531
    stamp = format_timestamp_us(at_us).encode()
    unstamped = MarketSimulator(10, seed=3).unstamped(500)
    made = MarketSimulator(10, seed=3).batch(500)

    for (symbol, head, tail), (made_symbol, body) in zip(unstamped, made, strict=True):
        tick = decode_body(head + stamp + tail)
        assert symbol == made_symbol == tick.symbol
        assert tick == msgspec.structs.replace(decode_body(body), timestamp_us=at_us)
