"""Specification of workers.vwap: exact per-symbol VWAP, high, low and volume.

The vectors below are computed by hand; the VWAP is the one rounded value (28 significant digits,
round half even, not quantized), every sum is exact.
"""

from __future__ import annotations

import dataclasses
import decimal
import random
from decimal import Decimal

import pytest

from partitioning.codec import Tick
from superticks.errors import TickError
from workers.vwap import RunningVwap, SymbolAggregate, aggregate_by_symbol

BASE_US = 1_700_000_000_000_000


def tick(
    price: str,
    size: str,
    *,
    symbol: str = "AAPL",
    timestamp_us: int = BASE_US,
    seq: int = 0,
) -> Tick:
    """A tick whose only interesting fields are the last trade's price and size."""
    return Tick(
        symbol=symbol,
        exchange="XNAS",
        bid_price=price,
        bid_size="100",
        ask_price=price,
        ask_size="100",
        last_price=price,
        last_size=size,
        volume="0",
        timestamp_us=timestamp_us,
        sequence_number=seq,
        version=1,
    )


def trades(*pairs: tuple[str, str], symbol: str = "AAPL") -> list[Tick]:
    """Ticks of one symbol from (price, size) pairs, with increasing timestamps and sequence."""
    return [
        tick(price, size, symbol=symbol, timestamp_us=BASE_US + i, seq=i)
        for i, (price, size) in enumerate(pairs)
    ]


def random_ticks(n: int, seed: int) -> list[Tick]:
    """A reproducible mix of symbols, prices with 0-4 decimals, sizes including zero, and
    timestamps that are not monotonic."""
    rnd = random.Random(seed)
    symbols = ["AAPL", "MSFT", "7203.T", "BRK.A", "EURUSD"]
    prices = ["187.42", "187.420", "187.4", "0.0001", "65000", "99.99", "100.00", "100"]
    sizes = ["0", "1", "100", "0.5", "250.125", "1000000"]
    return [
        tick(
            rnd.choice(prices),
            rnd.choice(sizes),
            symbol=rnd.choice(symbols),
            timestamp_us=BASE_US + rnd.randrange(10_000),
            seq=i,
        )
        for i in range(n)
    ]


def fed_one_by_one(ticks: list[Tick]) -> dict[str, SymbolAggregate]:
    running = RunningVwap()
    for t in ticks:
        running.update(t)
    return running.snapshot()


# --- hand-computed vectors -------------------------------------------------------------------

VECTORS = [
    pytest.param(
        [("100", "1"), ("100", "1"), ("101", "1")],
        "100.3333333333333333333333333",
        "3",
        id="301/3 rounds to 28 significant digits",
    ),
    pytest.param(
        [("10.50", "200"), ("10.25", "100"), ("10.75", "300")],
        "10.58333333333333333333333333",
        "600",
        id="6350.00/600",
    ),
    pytest.param(
        [("0", "1"), ("1", "2")],
        "0.6666666666666666666666666667",
        "3",
        id="2/3 rounds the last digit half-even (up)",
    ),
    pytest.param(
        [("2.5", "2"), ("3.5", "2")],
        "3.0",
        "4",
        id="exact quotient keeps the ideal exponent, unquantized",
    ),
    pytest.param(
        [("187.42", "0.5")],
        "187.42",
        "0.5",
        id="one trade: vwap is its price",
    ),
]


@pytest.mark.parametrize(("pairs", "vwap", "volume"), VECTORS)
def test_vwap_and_volume_match_the_hand_computed_vectors(
    pairs: list[tuple[str, str]], vwap: str, volume: str
) -> None:
    agg = aggregate_by_symbol(trades(*pairs))["AAPL"]

    assert str(agg.vwap) == vwap
    assert str(agg.volume) == volume


def test_an_aggregate_carries_high_low_count_and_timestamps() -> None:
    agg = aggregate_by_symbol(trades(("100", "1"), ("100", "1"), ("101", "1")))["AAPL"]

    assert agg == SymbolAggregate(
        symbol="AAPL",
        vwap=Decimal("100.3333333333333333333333333"),
        high=Decimal("101"),
        low=Decimal("100"),
        volume=Decimal("3"),
        count=3,
        first_timestamp_us=BASE_US,
        last_timestamp_us=BASE_US + 2,
    )


def test_sums_are_exact_beyond_28_digits() -> None:
    ticks = trades(("1", "1000000000"), ("1", "0.000000000000000000000000001"))

    agg = aggregate_by_symbol(ticks)["AAPL"]

    assert agg.volume == Decimal("1000000000.000000000000000000000000001")
    assert agg.vwap == Decimal("1")


def test_exact_sums_make_the_vwap_independent_of_trade_order() -> None:
    pairs = [("1.1", "1000000000000000000000"), ("3.3", "0.0000000001"), ("2.2", "7")]

    forward = aggregate_by_symbol(trades(*pairs))["AAPL"]
    backward = aggregate_by_symbol(trades(*reversed(pairs)))["AAPL"]

    assert repr(forward.vwap) == repr(backward.vwap)


def test_the_callers_decimal_context_does_not_change_results() -> None:
    ticks = trades(("100", "1"), ("100", "1"), ("101", "1"))
    expected = aggregate_by_symbol(ticks)

    with decimal.localcontext(decimal.Context(prec=3, rounding=decimal.ROUND_DOWN, traps=[])):
        assert aggregate_by_symbol(ticks) == expected
        running = RunningVwap()
        running.update(ticks[0])
        running.update_batch(ticks[1:])
        assert running.snapshot() == expected


# --- zero sizes, high/low, timestamps --------------------------------------------------------


def test_vwap_is_none_when_the_total_size_is_zero() -> None:
    agg = aggregate_by_symbol(trades(("100", "0"), ("101", "0.000")))["AAPL"]

    assert agg.vwap is None
    assert agg.volume == 0
    assert agg.count == 2


def test_zero_size_ticks_set_high_and_low_but_do_not_weigh_the_vwap() -> None:
    agg = aggregate_by_symbol(trades(("100", "2"), ("150", "0"), ("50", "0")))["AAPL"]

    assert agg.vwap == Decimal("100")
    assert (agg.high, agg.low) == (Decimal("150"), Decimal("50"))
    assert agg.count == 3


def test_timestamps_are_the_earliest_and_latest_whatever_the_arrival_order() -> None:
    ticks = [
        tick("1", "1", timestamp_us=BASE_US + 5),
        tick("1", "1", timestamp_us=BASE_US + 1),
        tick("1", "1", timestamp_us=BASE_US + 9),
        tick("1", "1", timestamp_us=BASE_US + 3),
    ]

    agg = aggregate_by_symbol(ticks)["AAPL"]

    assert (agg.first_timestamp_us, agg.last_timestamp_us) == (BASE_US + 1, BASE_US + 9)


def test_equal_prices_written_differently_resolve_to_one_representation_in_any_order() -> None:
    pairs = [("100.00", "1"), ("100.0", "1"), ("100", "1")]

    forward = aggregate_by_symbol(trades(*pairs))["AAPL"]
    backward = aggregate_by_symbol(trades(*reversed(pairs)))["AAPL"]

    assert repr(forward.high) == repr(backward.high) == "Decimal('100')"
    assert repr(forward.low) == repr(backward.low) == "Decimal('100')"


def test_symbols_are_aggregated_separately_in_first_seen_order() -> None:
    ticks = [
        tick("10", "1", symbol="MSFT"),
        tick("20", "1", symbol="AAPL"),
        tick("30", "3", symbol="MSFT"),
    ]

    result = aggregate_by_symbol(ticks)

    assert list(result) == ["MSFT", "AAPL"]
    assert result["MSFT"].vwap == Decimal("25")
    assert result["AAPL"].vwap == Decimal("20")


def test_an_empty_batch_aggregates_to_nothing() -> None:
    assert aggregate_by_symbol([]) == {}


# --- RunningVwap: batching and merging do not change anything --------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_splits_give_results_identical_to_one_by_one_feeding(seed: int) -> None:
    ticks = random_ticks(2_000, seed)
    rnd = random.Random(seed)
    cuts = sorted(rnd.sample(range(1, len(ticks)), 40))
    running = RunningVwap()

    for start, end in zip([0, *cuts], [*cuts, len(ticks)], strict=True):
        running.update_batch(ticks[start:end])

    assert repr(running.snapshot()) == repr(fed_one_by_one(ticks))


def test_aggregate_by_symbol_equals_a_running_vwap_fed_the_same_ticks() -> None:
    ticks = random_ticks(500, seed=4)

    assert repr(aggregate_by_symbol(ticks)) == repr(fed_one_by_one(ticks))


def test_merging_accumulators_equals_feeding_one_with_all_ticks() -> None:
    ticks = random_ticks(1_500, seed=5)
    parts = [RunningVwap(), RunningVwap(), RunningVwap()]
    for i, t in enumerate(ticks):
        parts[i % 3].update(t)

    merged = RunningVwap()
    for part in reversed(parts):
        merged.merge(part)

    assert repr(dict(sorted(merged.snapshot().items()))) == repr(
        dict(sorted(fed_one_by_one(ticks).items()))
    )


def test_merge_leaves_the_other_accumulator_unchanged() -> None:
    other = RunningVwap()
    other.update_batch(trades(("100", "1"), ("101", "1")))
    before = other.snapshot()
    mine = RunningVwap()
    mine.merge(other)

    mine.update_batch(trades(("500", "9")))

    assert other.snapshot() == before


def test_get_returns_a_symbols_aggregate_or_none() -> None:
    running = RunningVwap()
    running.update(tick("42", "1", symbol="MSFT"))

    assert running.get("MSFT") == running.snapshot()["MSFT"]
    assert running.get("AAPL") is None


def test_len_counts_symbols_not_ticks() -> None:
    running = RunningVwap()
    running.update_batch(random_ticks(300, seed=6))

    assert len(running) == 5
    assert len(RunningVwap()) == 0


def test_a_snapshot_does_not_move_when_more_ticks_arrive() -> None:
    running = RunningVwap()
    running.update(tick("100", "1"))
    snapshot = running.snapshot()

    running.update(tick("200", "1"))

    assert snapshot["AAPL"].vwap == Decimal("100")


def test_aggregates_are_immutable() -> None:
    agg = aggregate_by_symbol(trades(("1", "1")))["AAPL"]

    with pytest.raises(dataclasses.FrozenInstanceError):
        agg.count = 2  # type: ignore[misc]


# --- bad numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "size"),
    [
        pytest.param("abc", "1", id="price not a number"),
        pytest.param("100", "", id="empty size"),
        pytest.param("NaN", "1", id="NaN price"),
        pytest.param("100", "Infinity", id="infinite size"),
        pytest.param("100", "-1", id="negative size"),
    ],
)
def test_a_tick_with_unusable_last_price_or_size_is_a_tick_error(price: str, size: str) -> None:
    with pytest.raises(TickError, match="AAPL"):
        RunningVwap().update(tick(price, size))


def test_a_rejected_tick_leaves_the_accumulator_unchanged() -> None:
    running = RunningVwap()
    running.update(tick("100", "1"))
    before = running.snapshot()

    with pytest.raises(TickError):
        running.update(tick("100", "-5"))

    assert running.snapshot() == before


# --- the integer fast path agrees with plain Decimal arithmetic ------------------------------


def reference(ticks: list[Tick]) -> dict[str, SymbolAggregate]:
    """The aggregates by the definition: exact Decimal sums, compare_total ties, one division."""
    exact = decimal.Context(
        prec=decimal.MAX_PREC,
        Emin=decimal.MIN_EMIN,
        Emax=decimal.MAX_EMAX,
        traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow],
    )
    sums: dict[str, list[Decimal]] = {}
    extremes: dict[str, list[Decimal]] = {}
    counts: dict[str, int] = {}
    times: dict[str, list[int]] = {}
    for t in ticks:
        price, size = Decimal(t.last_price), Decimal(t.last_size)
        if t.symbol not in sums:
            sums[t.symbol] = [exact.multiply(price, size), size]
            extremes[t.symbol] = [price, price]
            counts[t.symbol] = 1
            times[t.symbol] = [t.timestamp_us, t.timestamp_us]
            continue
        s, (high, low), ts = sums[t.symbol], extremes[t.symbol], times[t.symbol]
        s[0] = exact.add(s[0], exact.multiply(price, size))
        s[1] = exact.add(s[1], size)
        if price > high or (price == high and price.compare_total(high) > 0):
            extremes[t.symbol][0] = price
        if price < low or (price == low and price.compare_total(low) > 0):
            extremes[t.symbol][1] = price
        counts[t.symbol] += 1
        ts[:] = [min(ts[0], t.timestamp_us), max(ts[1], t.timestamp_us)]
    vwap_context = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)
    return {
        symbol: SymbolAggregate(
            symbol=symbol,
            vwap=vwap_context.divide(notional, volume) if volume else None,
            high=extremes[symbol][0],
            low=extremes[symbol][1],
            volume=volume,
            count=counts[symbol],
            first_timestamp_us=times[symbol][0],
            last_timestamp_us=times[symbol][1],
        )
        for symbol, (notional, volume) in sums.items()
    }


# Plain-looking numbers with every exponent mix, numbers equal as floats but not as decimals,
# equal numbers written differently, and unusual ones that take the Decimal path: negative
# prices, negative zeros, huge exponents, very long digit strings.
WIDE_PRICES = [
    "187.42", "187.420", "187.4", "187", "0", "0.00", "0E+3", "1E+2", "100", "100.0",
    "100.0000000000000000001", "99.9999999999999999999", "1E-100", "1E+100", "2.5E-7",
    "0.1", "0.10000000000000000001", "-5", "-0", "-0.00", "-187.42",
    "1" + "0" * 120 + ".5", "1E+5000",
]  # fmt: skip
WIDE_SIZES = [
    "0", "0.000", "1", "100", "0.5", "250.125", "1E+3", "1E-100", "1E+100", "7E-30",
    "-0", "-0.0", "1" + "0" * 120, "3E+4000",
]  # fmt: skip


def wide_ticks(n: int, seed: int, exotic: float) -> list[Tick]:
    rnd = random.Random(seed)
    common_prices, common_sizes = WIDE_PRICES[:17], WIDE_SIZES[:10]
    ticks = []
    for i in range(n):
        unusual = rnd.random() < exotic
        ticks.append(
            tick(
                rnd.choice(WIDE_PRICES if unusual else common_prices),
                rnd.choice(WIDE_SIZES if unusual else common_sizes),
                symbol=rnd.choice(["A", "B", "C", "D"]),
                timestamp_us=BASE_US + rnd.randrange(1_000),
                seq=i,
            )
        )
    return ticks


@pytest.mark.parametrize("exotic", [0.0, 0.002, 0.05])
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_any_numbers_give_the_same_aggregates_as_plain_decimal_arithmetic(
    seed: int, exotic: float
) -> None:
    ticks = wide_ticks(1_500, seed, exotic)
    expected = repr(reference(ticks))
    rnd = random.Random(seed)
    cuts = sorted(rnd.sample(range(1, len(ticks)), 30))
    running = RunningVwap()

    for start, end in zip([0, *cuts], [*cuts, len(ticks)], strict=True):
        running.update_batch(ticks[start:end])

    assert repr(running.snapshot()) == expected
    assert repr(fed_one_by_one(ticks)) == expected
    assert repr({s: running.get(s) for s in running.snapshot()}) == expected


@pytest.mark.parametrize("exotic", [0.0, 0.01])
def test_merging_any_mix_of_states_gives_the_same_aggregates(exotic: float) -> None:
    ticks = wide_ticks(1_200, seed=21, exotic=exotic)
    parts = [RunningVwap(), RunningVwap(), RunningVwap()]
    for i, t in enumerate(ticks):
        parts[(i // 7) % 3].update_batch([t])
    before = [repr(part.snapshot()) for part in parts]

    merged = RunningVwap()
    for part in parts:
        merged.merge(part)
    merged_twice = RunningVwap()
    merged_twice.merge(parts[2])
    merged_twice.merge(merged)

    assert repr(dict(sorted(merged.snapshot().items()))) == repr(
        dict(sorted(reference(ticks).items()))
    )
    assert [repr(part.snapshot()) for part in parts] == before
    part_2 = [t for i, t in enumerate(ticks) if (i // 7) % 3 == 2]
    assert repr(dict(sorted(merged_twice.snapshot().items()))) == repr(
        dict(sorted(reference(part_2 + ticks).items()))
    )


def test_a_symbol_keeps_exact_results_after_an_unusual_number() -> None:
    pairs = [("10.25", "100"), ("10.5", "200"), ("-0", "5"), ("10.75", "0.5"), ("11", "1")]
    ticks = trades(*pairs)

    result = aggregate_by_symbol(ticks)

    assert repr(result) == repr(reference(ticks))
    assert result["AAPL"].low == Decimal("-0")


def test_negative_zeros_keep_their_sign_as_in_decimal() -> None:
    only_negative_zero = aggregate_by_symbol(trades(("-0", "5"), ("-0.0", "2")))["AAPL"]
    zero_sizes = aggregate_by_symbol(trades(("5", "-0"), ("6", "-0.00")))["AAPL"]

    assert repr(only_negative_zero.vwap) == "Decimal('-0.0')"
    assert repr(zero_sizes.volume) == "Decimal('-0.00')"
    assert zero_sizes.vwap is None


def test_prices_equal_as_floats_but_not_as_decimals_are_ordered_exactly() -> None:
    pairs = [("100", "1"), ("100.0000000000000000001", "1"), ("99.9999999999999999999", "1")]

    agg = aggregate_by_symbol(trades(*pairs))["AAPL"]

    assert agg.high == Decimal("100.0000000000000000001")
    assert agg.low == Decimal("99.9999999999999999999")


def test_mixed_exponents_give_the_exponents_of_the_exact_sums() -> None:
    agg = aggregate_by_symbol(trades(("2", "1"), ("1.5", "1E+3"), ("3.25", "0.5")))["AAPL"]

    assert repr(agg.volume) == repr(Decimal("1001.5"))
    assert repr(agg.vwap) == repr(Decimal("1503.625") / Decimal("1001.5"))


def test_a_bad_tick_in_a_batch_keeps_the_ticks_before_it_and_nothing_after() -> None:
    good = trades(("100", "1"), ("101", "2"), ("102", "3"))
    bad = tick("100", "-5", timestamp_us=BASE_US + 10)
    running = RunningVwap()

    with pytest.raises(TickError, match="AAPL"):
        running.update_batch([*good[:2], bad, good[2]])

    assert running.snapshot() == aggregate_by_symbol(good[:2])


@pytest.mark.parametrize("size", ["abc", "NaN", "-Infinity", "-1E-100"])
def test_bad_numbers_are_rejected_whatever_the_callers_context(size: str) -> None:
    running = RunningVwap()
    running.update_batch(trades(("100", "1")))
    before = running.snapshot()

    with decimal.localcontext(decimal.Context(traps=[])), pytest.raises(TickError):
        running.update_batch([tick("100", size)])

    assert running.snapshot() == before


def test_results_do_not_depend_on_the_number_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    import workers.vwap as vwap

    ticks = wide_ticks(600, seed=31, exotic=0.01)
    expected = repr(reference(ticks))
    monkeypatch.setattr(vwap, "_CACHE_LIMIT", 3)

    assert repr(aggregate_by_symbol(ticks)) == expected
