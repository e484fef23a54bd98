"""MarketData and StreamConfig: one test per rule, the wire round trip, derived values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest

from partitioning.model import SCHEMA_VERSION, MarketData, StreamConfig
from superticks.errors import DecodeError, TickError

WHEN = datetime(2026, 11, 25, 14, 3, 7, 123456, tzinfo=UTC)


def fields(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "symbol": "AAPL",
        "exchange": "NASDAQ",
        "bid_price": Decimal("187.2500"),
        "bid_size": Decimal("300"),
        "ask_price": Decimal("187.2700"),
        "ask_size": Decimal("500"),
        "last_price": Decimal("187.2600"),
        "last_size": Decimal("100"),
        "volume": Decimal("1234500"),
        "timestamp": WHEN,
        "sequence_number": 42,
        "version": SCHEMA_VERSION,
    }
    base.update(changes)
    return base


def wire(**changes: Any) -> bytes:
    data = MarketData.build(**fields()).to_wire_dict()
    data.update(changes)
    return orjson.dumps(data)


# -- valid ticks ---------------------------------------------------------------------------------


def test_a_valid_tick_keeps_its_values() -> None:
    tick = MarketData.build(**fields())
    assert tick.symbol == "AAPL"
    assert tick.bid_price == Decimal("187.2500")
    assert tick.timestamp == WHEN
    assert tick.version == 1


def test_version_defaults_to_the_schema_version() -> None:
    data = fields()
    del data["version"]
    assert MarketData.build(**data).version == SCHEMA_VERSION == 1


def test_decimals_may_be_given_as_strings_and_ints() -> None:
    tick = MarketData.build(**fields(bid_price="187.25", bid_size=300, volume="1.5E+3"))
    assert tick.bid_price == Decimal("187.25")
    assert tick.bid_size == Decimal(300)
    assert tick.volume == Decimal(1500)


def test_the_model_is_frozen() -> None:
    tick = MarketData.build(**fields())
    with pytest.raises(ValueError, match="frozen"):
        tick.symbol = "MSFT"


@pytest.mark.parametrize("symbol", ["BRK.B", "ES=F", "^GSPC", "EUR/USD", "RDS_A", "BTC-USD"])
def test_symbols_may_hold_dot_dash_slash_underscore_caret_equals(symbol: str) -> None:
    assert MarketData.build(**fields(symbol=symbol)).symbol == symbol


@pytest.mark.parametrize("symbol", ["トヨタ", "Nestlé", "ÅBB", "7203.T"])
def test_symbols_may_hold_non_ascii_letters(symbol: str) -> None:
    assert MarketData.build(**fields(symbol=symbol)).symbol == symbol


def test_zero_sizes_and_volume_are_allowed() -> None:
    tick = MarketData.build(**fields(bid_size="0", ask_size="0", last_size="0", volume="0"))
    assert tick.volume == 0


def test_a_locked_market_bid_equal_to_ask_is_allowed() -> None:
    tick = MarketData.build(**fields(bid_price="187.26", ask_price="187.2600"))
    assert tick.spread == 0


def test_an_aware_timestamp_is_normalised_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    tick = MarketData.build(**fields(timestamp=datetime(2026, 11, 25, 15, 3, 7, tzinfo=paris)))
    assert tick.timestamp == datetime(2026, 11, 25, 14, 3, 7, tzinfo=UTC)
    assert tick.timestamp.tzinfo is UTC


# -- invalid ticks: one rule each ----------------------------------------------------------------


def test_empty_symbol_is_refused() -> None:
    with pytest.raises(TickError, match=r"symbol='': must not be empty"):
        MarketData.build(**fields(symbol=""))


@pytest.mark.parametrize("symbol", ["AA PL", "AAPL\n", "AA;PL", "A\tB", '"AAPL"', "🚀"])
def test_malformed_symbol_is_refused(symbol: str) -> None:
    with pytest.raises(TickError, match=r"symbol=.*may only hold letters, digits"):
        MarketData.build(**fields(symbol=symbol))


def test_symbol_longer_than_32_characters_is_refused() -> None:
    with pytest.raises(TickError, match="at most 32 characters"):
        MarketData.build(**fields(symbol="A" * 33))


def test_empty_exchange_is_refused() -> None:
    with pytest.raises(TickError, match=r"exchange='': must not be empty"):
        MarketData.build(**fields(exchange=""))


@pytest.mark.parametrize("field", ["bid_size", "ask_size", "last_size", "volume"])
def test_negative_size_or_volume_is_refused(field: str) -> None:
    with pytest.raises(TickError, match=rf"{field}=Decimal\('-1'\): a size or volume must be >= 0"):
        MarketData.build(**fields(**{field: Decimal(-1)}))


@pytest.mark.parametrize("field", ["bid_price", "ask_price", "last_price"])
@pytest.mark.parametrize("value", ["0", "-0.01"])
def test_price_not_above_zero_is_refused(field: str, value: str) -> None:
    with pytest.raises(TickError, match=rf"{field}='{value}': a price must be > 0"):
        MarketData.build(**fields(**{field: value}))


def test_bid_above_ask_is_refused() -> None:
    with pytest.raises(TickError, match=r"bid_price='187.28' is above ask_price='187.27'"):
        MarketData.build(**fields(bid_price="187.28", ask_price="187.27"))


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("sNaN"), "NaN", "nan"])
def test_nan_is_refused(value: object) -> None:
    with pytest.raises(TickError, match=r"bid_price=.*finite"):
        MarketData.build(**fields(bid_price=value))


@pytest.mark.parametrize("value", [Decimal("Infinity"), Decimal("-Infinity"), "Infinity", "inf"])
def test_infinity_is_refused(value: object) -> None:
    with pytest.raises(TickError, match=r"ask_price=.*finite"):
        MarketData.build(**fields(ask_price=value))


def test_float_decimals_are_refused_as_lossy() -> None:
    with pytest.raises(TickError, match=r"bid_price=187.25: must be a Decimal, an int or a"):
        MarketData.build(**fields(bid_price=187.25))


@pytest.mark.parametrize("value", [" 1.5", "1_000", "1,5", "0x10", "١٢", ""])
def test_decimal_strings_outside_decimal_notation_are_refused(value: str) -> None:
    with pytest.raises(TickError, match=r"volume=.*is not a finite decimal"):
        MarketData.build(**fields(volume=value))


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(TickError, match=r"timestamp=.*must be timezone-aware"):
        MarketData.build(**fields(timestamp=datetime(2026, 11, 25, 14, 3, 7)))


def test_timestamp_string_with_a_non_utc_offset_is_refused() -> None:
    with pytest.raises(TickError, match=r"timestamp=.*ISO-8601 UTC"):
        MarketData.build(**fields(timestamp="2026-11-25T15:03:07.123456+01:00"))


def test_unknown_version_is_refused() -> None:
    with pytest.raises(TickError, match=r"version=2: unknown schema version: only 1 is known"):
        MarketData.build(**fields(version=2))


def test_negative_sequence_number_is_refused() -> None:
    with pytest.raises(TickError, match=r"sequence_number=-1: must be in 0 .. 2\*\*63-1"):
        MarketData.build(**fields(sequence_number=-1))


def test_sequence_number_beyond_a_java_long_is_refused() -> None:
    with pytest.raises(TickError, match="sequence_number="):
        MarketData.build(**fields(sequence_number=2**63))


def test_boolean_sequence_number_is_refused() -> None:
    with pytest.raises(TickError, match="sequence_number=True: must be an integer, not bool"):
        MarketData.build(**fields(sequence_number=True))


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(TickError, match="venue='X': unknown field"):
        MarketData.build(**fields(venue="X"))


def test_every_bad_field_is_named_in_one_error() -> None:
    with pytest.raises(TickError) as caught:
        MarketData.build(**fields(symbol="", bid_size=Decimal(-1)))
    assert "symbol=''" in str(caught.value)
    assert "bid_size=Decimal('-1')" in str(caught.value)


def test_tick_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="symbol"):
        MarketData.build(**fields(symbol=""))


# -- derived values ------------------------------------------------------------------------------


def test_spread_is_ask_minus_bid() -> None:
    assert MarketData.build(**fields()).spread == Decimal("0.02")


def test_mid_price_is_the_mean_of_bid_and_ask() -> None:
    assert MarketData.build(**fields()).mid_price == Decimal("187.26")


def test_spread_and_mid_price_are_not_on_the_wire() -> None:
    data = orjson.loads(MarketData.build(**fields()).to_bytes())
    assert "spread" not in data
    assert "mid_price" not in data


# -- the wire body -------------------------------------------------------------------------------


def test_to_bytes_writes_the_documented_body() -> None:
    assert MarketData.build(**fields()).to_bytes() == (
        b'{"symbol":"AAPL","exchange":"NASDAQ","bid_price":"187.2500","bid_size":"300",'
        b'"ask_price":"187.2700","ask_size":"500","last_price":"187.2600","last_size":"100",'
        b'"volume":"1234500","timestamp":"2026-11-25T14:03:07.123456Z",'
        b'"sequence_number":42,"version":1}'
    )


def test_to_bytes_and_from_bytes_round_trip() -> None:
    tick = MarketData.build(**fields(symbol="トヨタ", volume="1E+3"))
    assert MarketData.from_bytes(tick.to_bytes()) == tick


def test_to_bytes_keeps_decimal_trailing_zeros() -> None:
    body = MarketData.build(**fields(bid_price="187.2500")).to_bytes()
    assert b'"bid_price":"187.2500"' in body


def test_to_bytes_writes_six_fraction_digits_even_for_whole_seconds() -> None:
    tick = MarketData.build(**fields(timestamp=datetime(2026, 11, 25, 14, 3, 7, tzinfo=UTC)))
    assert b'"timestamp":"2026-11-25T14:03:07.000000Z"' in tick.to_bytes()


def test_from_bytes_accepts_a_plus_zero_offset() -> None:
    tick = MarketData.from_bytes(wire(timestamp="2026-11-25T14:03:07.123456+00:00"))
    assert tick.timestamp == WHEN


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("2026-11-25T14:03:07Z", 0),
        ("2026-11-25T14:03:07.1Z", 100000),
        ("2026-11-25T14:03:07.123Z", 123000),
        ("2026-11-25T14:03:07.123456789Z", 123456),
    ],
)
def test_from_bytes_accepts_0_to_9_fraction_digits(text: str, micros: int) -> None:
    assert MarketData.from_bytes(wire(timestamp=text)).timestamp.microsecond == micros


def test_from_bytes_accepts_any_decimal_notation() -> None:
    tick = MarketData.from_bytes(wire(volume="1.2345E+6", last_size="1e2"))
    assert tick.volume == Decimal(1234500)
    assert tick.last_size == Decimal(100)


def test_from_bytes_refuses_json_numbers_for_decimals() -> None:
    with pytest.raises(DecodeError, match=r"bid_price=187.25: must be a JSON string"):
        MarketData.from_bytes(wire(bid_price=187.25))


def test_from_bytes_refuses_a_missing_field() -> None:
    data = orjson.loads(wire())
    del data["volume"]
    with pytest.raises(DecodeError, match="volume: missing"):
        MarketData.from_bytes(orjson.dumps(data))


def test_from_bytes_refuses_bytes_that_are_not_json() -> None:
    with pytest.raises(DecodeError, match="not UTF-8 JSON"):
        MarketData.from_bytes(b"\xff\xfe not json")


def test_from_bytes_refuses_json_that_is_not_an_object() -> None:
    with pytest.raises(DecodeError, match="must be a JSON object, not list"):
        MarketData.from_bytes(b"[1, 2]")


# -- StreamConfig --------------------------------------------------------------------------------


def test_stream_config_defaults() -> None:
    config = StreamConfig.defaults()
    assert config.super_stream == "ticks"
    assert config.partitions == 3
    assert config.max_age == timedelta(hours=24)
    assert config.max_length_bytes == 20_000_000_000
    assert config.max_segment_size_bytes == 500_000_000


def test_partition_names_follow_rabbitmq_super_stream_naming() -> None:
    assert StreamConfig.defaults().partition_names() == ["ticks-0", "ticks-1", "ticks-2"]


def test_binding_keys_are_the_partition_indexes() -> None:
    assert StreamConfig(partitions=4).binding_keys() == ["0", "1", "2", "3"]


def test_stream_arguments_are_named_and_formatted_for_rabbitmq() -> None:
    assert StreamConfig.defaults().stream_arguments() == {
        "max-age": "86400s",
        "max-length-bytes": 20_000_000_000,
        "stream-max-segment-size-bytes": 500_000_000,
        "queue-leader-locator": "balanced",
    }


@pytest.mark.parametrize("partitions", [0, 65])
def test_partitions_must_be_1_to_64(partitions: int) -> None:
    with pytest.raises(ValueError, match="partitions"):
        StreamConfig(partitions=partitions)


def test_segment_larger_than_max_length_is_refused() -> None:
    with pytest.raises(ValueError, match="max_segment_size_bytes=2000 exceeds max_length_bytes"):
        StreamConfig(max_length_bytes=1000, max_segment_size_bytes=2000)


def test_max_age_must_be_whole_seconds() -> None:
    with pytest.raises(ValueError, match="whole number of seconds"):
        StreamConfig(max_age=timedelta(milliseconds=1500))


def test_stream_config_is_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        StreamConfig.defaults().partitions = 5
