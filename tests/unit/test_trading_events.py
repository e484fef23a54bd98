"""The trading event's wire format: pinned bodies and messages, exact decimals, per-type rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bench.trading import synthetic_log
from partitioning.codec import split_message
from superticks.errors import DecodeError, TickError
from trading.events import EventType, Side, TradingEvent, decode_event_message

FILL = TradingEvent(
    event_id="strategy-demo:0:1234:1",
    timestamp=datetime(2026, 11, 25, 20, 47, 0, 123456, tzinfo=UTC),
    type=EventType.ORDER_PARTIALLY_FILLED,
    order_id="strategy-demo-0-1234",
    symbol="AAPL",
    side=Side.BUY,
    quantity=Decimal("100"),
    price=Decimal("187.25"),
    source="p0@1234",
)

FILL_BODY = (
    b'{"version":1,"event_id":"strategy-demo:0:1234:1","timestamp":"2026-11-25T20:47:00.123456Z",'
    b'"type":"order_partially_filled","order_id":"strategy-demo-0-1234","symbol":"AAPL",'
    b'"side":"buy","quantity":"100","price":"187.25","reason":null,"source":"p0@1234"}'
)

# properties (content-type), application-properties {symbol: AAPL, schema_version: "1"}, then
# the data section's vbin8 header (0x00 0x53 0x75 0xa0, size)
FILL_HEAD = bytes.fromhex(
    "005373c01907404040404040a3106170706c69636174696f6e2f6a736f6e"
    "005374c12204a10673796d626f6ca104414150"
    "4ca10e736368656d615f76657273696f6ea10131"
    "005375a0"
)


def test_an_event_body_is_pinned_byte_for_byte() -> None:
    assert FILL.to_bytes() == FILL_BODY


def test_an_event_message_is_laid_out_like_a_tick() -> None:
    message = FILL.to_message()
    assert message.startswith(FILL_HEAD)
    assert message == FILL_HEAD + bytes([len(FILL_BODY)]) + FILL_BODY
    properties, body = split_message(message)
    assert properties == {"symbol": "AAPL", "schema_version": "1"}
    assert body == FILL_BODY


def test_an_event_round_trips_through_its_message() -> None:
    assert decode_event_message(FILL.to_message()) == FILL


def test_decimals_stay_exact_on_the_wire() -> None:
    event = FILL.model_copy(update={"price": Decimal("0.1000000000000000055511151231")})
    assert TradingEvent.from_bytes(event.to_bytes()).price == Decimal(
        "0.1000000000000000055511151231"
    )


def test_a_wire_decimal_must_be_a_string() -> None:
    with pytest.raises(DecodeError, match="quantity"):
        TradingEvent.from_bytes(FILL_BODY.replace(b'"quantity":"100"', b'"quantity":100'))


def test_an_unknown_schema_version_is_refused() -> None:
    with pytest.raises(DecodeError, match="version"):
        TradingEvent.from_bytes(FILL_BODY.replace(b'"version":1', b'"version":2'))


def test_an_event_without_a_symbol_is_published_under_a_dash() -> None:
    error = TradingEvent.build(
        event_id="e1", timestamp="2026-11-25T20:47:00Z", type="error", reason="feed gap"
    )
    assert split_message(error.to_message())[0]["symbol"] == "-"


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"type": "order_filled", "order_id": "o", "symbol": "A", "side": "buy"}, "quantity"),
        ({"type": "order_created", "symbol": "A", "side": "buy", "quantity": 1}, "order_id"),
        (
            {"type": "order_created", "order_id": "o", "symbol": "A", "side": "buy", "quantity": 0},
            "quantity > 0",
        ),
        ({"type": "error"}, "reason"),
        ({"type": "order_cancelled", "order_id": "o", "symbol": "not a symbol"}, "symbol"),
        ({"type": "order_cancelled", "order_id": "o", "price": "NaN"}, "price"),
    ],
)
def test_each_type_needs_its_fields(fields: dict[str, object], needle: str) -> None:
    with pytest.raises(TickError, match=needle):
        TradingEvent.build(event_id="e", timestamp="2026-11-25T20:47:00Z", **fields)


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(TickError, match="timezone"):
        TradingEvent.build(event_id="e", timestamp=datetime(2026, 11, 25), type="error", reason="x")


def test_the_audit_bench_writes_events_as_the_audit_log_does() -> None:
    log = synthetic_log(20, symbols=3)
    assert len(log) == 20
    for symbol, message in log:
        event = decode_event_message(message)
        assert event.symbol == symbol
        assert event.to_message() == message
