"""Trading events: what the audit log stores, one immutable event per order decision.

`TradingEvent` is the thorough definition (pydantic, like `MarketData` for ticks): a versioned
record with an event id, a timestamp, a type (`EventType`), and, as the type needs them, an
order id, a symbol, a side, a quantity and a price. Quantities and prices are `Decimal`s, exact
on the wire as JSON strings. The rules per type:

* ``order_created``: order id, symbol, side, quantity > 0; price (the limit) optional;
* ``order_partially_filled`` / ``order_filled``: order id, symbol, side, quantity > 0 (this
  fill's), price > 0 (this fill's); ``order_filled`` is the fill that completes the order;
* ``trade_executed``: the execution report of a fill: order id, symbol, side, quantity, price;
* ``order_cancelled`` / ``order_rejected``: order id (and the symbol for a rejection);
* ``position_updated``: symbol, quantity = the signed position after the fill, price = its
  average cost (absent when flat);
* ``error``: a reason.

On the wire (docs/wire-format.md) an event is one AMQP 1.0 message laid out like a tick
(`partitioning.codec.frame_message`: content type, application properties ``symbol`` -- the
event's symbol, or ``-`` -- and ``schema_version``, one data section) whose body is compact
JSON with exactly the keys of `EVENT_FIELDS`, absent values as ``null``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from partitioning.codec import frame_message, message_body
from partitioning.model import (
    check_decimal_text,
    check_symbol,
    describe_validation_error,
    format_timestamp_us,
    parse_timestamp_us,
    timestamp_to_us,
    us_to_timestamp,
)
from superticks.errors import DecodeError, TickError

__all__ = [
    "EVENT_FIELDS",
    "EVENT_SCHEMA_VERSION",
    "NO_SYMBOL",
    "EventType",
    "Side",
    "TradingEvent",
    "decode_event_message",
    "event_body",
]

EVENT_SCHEMA_VERSION = 1
"""The only trading-event schema version this code knows."""

NO_SYMBOL = "-"
"""The ``symbol`` application property (and filter value) of an event without a symbol."""

EVENT_FIELDS = (
    "version",
    "event_id",
    "timestamp",
    "type",
    "order_id",
    "symbol",
    "side",
    "quantity",
    "price",
    "reason",
    "source",
)
"""The keys of an event's wire body, in the order producers write them."""


class EventType(StrEnum):
    ORDER_CREATED = "order_created"
    ORDER_PARTIALLY_FILLED = "order_partially_filled"
    ORDER_FILLED = "order_filled"
    ORDER_CANCELLED = "order_cancelled"
    ORDER_REJECTED = "order_rejected"
    TRADE_EXECUTED = "trade_executed"
    POSITION_UPDATED = "position_updated"
    ERROR = "error"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


_NEEDS: dict[EventType, tuple[str, ...]] = {
    EventType.ORDER_CREATED: ("order_id", "symbol", "side", "quantity"),
    EventType.ORDER_PARTIALLY_FILLED: ("order_id", "symbol", "side", "quantity", "price"),
    EventType.ORDER_FILLED: ("order_id", "symbol", "side", "quantity", "price"),
    EventType.TRADE_EXECUTED: ("order_id", "symbol", "side", "quantity", "price"),
    EventType.ORDER_CANCELLED: ("order_id",),
    EventType.ORDER_REJECTED: ("order_id", "symbol"),
    EventType.POSITION_UPDATED: ("symbol", "quantity"),
    EventType.ERROR: ("reason",),
}
_POSITIVE_QUANTITY = {
    EventType.ORDER_CREATED,
    EventType.ORDER_PARTIALLY_FILLED,
    EventType.ORDER_FILLED,
    EventType.TRADE_EXECUTED,
}


def _decimal(value: object, *, wire: bool) -> Decimal | None:
    if value is None:
        return None
    if type(value) is str:
        return check_decimal_text(value)
    if wire:
        raise ValueError(f"must be a JSON string holding a decimal, not {type(value).__name__}")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite decimal (no NaN or infinity)")
        return value
    if type(value) is int:
        return Decimal(value)
    raise ValueError(f"must be a Decimal, an int or a decimal string, not {type(value).__name__}")


def _text(value: object) -> str | None:
    if value is None:
        return None
    if type(value) is not str or not value:
        raise ValueError("must be a non-empty string")
    if len(value) > 200:
        raise ValueError(f"must be at most 200 characters, has {len(value)}")
    return value


class TradingEvent(BaseModel):
    """One validated trading event (see the module docstring for the rules per type).

    Build it with `TradingEvent.build(...)` (raises `TickError` naming each bad field) or from
    a wire body with `TradingEvent.from_bytes(...)` (raises `DecodeError`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = EVENT_SCHEMA_VERSION
    event_id: str = Field(min_length=1, max_length=200)
    timestamp: datetime
    type: EventType
    order_id: str | None = None
    symbol: str | None = None
    side: Side | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    reason: str | None = None
    source: str | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> int:
        if type(value) is not int or value != EVENT_SCHEMA_VERSION:
            raise ValueError(f"unknown event schema version: only {EVENT_SCHEMA_VERSION} is known")
        return value

    @field_validator("order_id", "reason", "source", mode="before")
    @classmethod
    def _texts(cls, value: object) -> str | None:
        return _text(value)

    @field_validator("symbol", mode="before")
    @classmethod
    def _symbol(cls, value: object) -> str | None:
        return None if value is None else check_symbol(value)

    @field_validator("quantity", "price", mode="before")
    @classmethod
    def _decimals(cls, value: object, info: Any) -> Decimal | None:
        return _decimal(value, wire=bool(info.context and info.context.get("wire")))

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: object) -> datetime:
        if type(value) is str:
            return us_to_timestamp(parse_timestamp_us(value))
        if not isinstance(value, datetime):
            raise ValueError(  # noqa: TRY004 - pydantic reports ValueError
                f"must be a timezone-aware datetime or an ISO-8601 UTC string, "
                f"not {type(value).__name__}"
            )
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware (a naive datetime has no defined instant)")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _fields_of_type(self) -> Self:
        missing = [name for name in _NEEDS[self.type] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.type} event needs {', '.join(missing)}")
        if self.type in _POSITIVE_QUANTITY and not (
            self.quantity is not None and self.quantity > 0
        ):
            raise ValueError(f"a {self.type} event needs a quantity > 0")
        if self.price is not None and self.type is not EventType.POSITION_UPDATED:
            if not self.price > 0:
                raise ValueError("a price must be > 0")
        elif self.price is not None and self.price < 0:
            raise ValueError("an average cost must be >= 0")
        return self

    @property
    def timestamp_us(self) -> int:
        return timestamp_to_us(self.timestamp)

    @classmethod
    def build(cls, **fields: Any) -> TradingEvent:
        """Validate `fields` into an event; raises `TickError` naming each bad field."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise TickError(_describe(exc)) from None

    @classmethod
    def from_wire_dict(cls, data: object) -> TradingEvent:
        """Validate a parsed wire body; raises `DecodeError`."""
        if type(data) is not dict:
            raise DecodeError(f"event body must be a JSON object, not {type(data).__name__}")
        try:
            return cls.model_validate(data, context={"wire": True})
        except ValidationError as exc:
            raise DecodeError(_describe(exc)) from None

    @classmethod
    def from_bytes(cls, body: bytes | str) -> TradingEvent:
        """Decode and validate one wire body (UTF-8 JSON); raises `DecodeError`."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"event body is not UTF-8 JSON: {exc}") from None
        return cls.from_wire_dict(data)

    def to_wire_dict(self) -> dict[str, Any]:
        """The wire body as a dict: decimals as strings, the timestamp as ``...Z``."""
        return {
            "version": self.version,
            "event_id": self.event_id,
            "timestamp": format_timestamp_us(self.timestamp_us),
            "type": str(self.type),
            "order_id": self.order_id,
            "symbol": self.symbol,
            "side": None if self.side is None else str(self.side),
            "quantity": None if self.quantity is None else str(self.quantity),
            "price": None if self.price is None else str(self.price),
            "reason": self.reason,
            "source": self.source,
        }

    def to_bytes(self) -> bytes:
        """The wire body: compact UTF-8 JSON, keys in `EVENT_FIELDS` order."""
        return orjson.dumps(self.to_wire_dict())

    def to_message(self) -> bytes:
        """The AMQP 1.0 message of the event (see the module docstring)."""
        return frame_message(self.symbol or NO_SYMBOL, self.to_bytes())


def _describe(error: ValidationError) -> str:
    return "invalid trading event" + describe_validation_error(error).removeprefix("invalid tick")


def event_body(message: bytes) -> bytes:
    """The JSON body of an event's AMQP 1.0 message (any layout a client may send)."""
    return message_body(message)


def decode_event_message(message: bytes) -> TradingEvent:
    """The validated event in an AMQP 1.0 message; raises `DecodeError`."""
    return TradingEvent.from_bytes(event_body(message))
