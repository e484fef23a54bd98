"""The tick model and the super stream's shape: `MarketData` and `StreamConfig`.

`MarketData` is the slow, thorough definition of a valid tick; `partitioning.codec` holds the
wire format and the fast paths, which enforce exactly the rules written here (the field checks
below are shared with the codec, so the two cannot drift apart):

* ``symbol``: 1-32 characters, letters and digits (any script) and ``. - / _ ^ =``;
* ``exchange``: a non-empty string;
* prices (``bid_price``, ``ask_price``, ``last_price``): finite decimals > 0;
* sizes (``bid_size``, ``ask_size``, ``last_size``) and ``volume``: finite decimals >= 0;
* ``bid_price`` <= ``ask_price``;
* ``timestamp``: timezone-aware, normalised to UTC (naive datetimes are refused);
* ``sequence_number``: an int in 0 .. 2**63-1 (a Java long), counted per symbol;
* ``version``: the wire schema version, only ``SCHEMA_VERSION`` (1) is known.

Decimals are accepted as `Decimal`, `int` or strings in decimal notation (``"187.25"``,
``"1.5E+3"``), never as `float` (lossy). On the wire (`MarketData.from_bytes`) they must be JSON
strings and the timestamp an ISO-8601 UTC string (``...Z`` or ``...+00:00``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from superticks.errors import DecodeError, TickError

__all__ = [
    "MAX_SEQUENCE_NUMBER",
    "SCHEMA_VERSION",
    "MarketData",
    "StreamConfig",
    "format_timestamp_us",
    "parse_timestamp_us",
]

SCHEMA_VERSION = 1
"""The only wire schema version this code knows; a body with another version is refused."""

MAX_SEQUENCE_NUMBER = 2**63 - 1
"""Largest sequence number (it must fit a Java long)."""

MAX_DECIMAL_CHARS = 64
"""Longest decimal string accepted (guards the parsers against absurd inputs)."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_ONE_S = timedelta(seconds=1)

SYMBOL_RE = re.compile(r"[\w.\-/^=]{1,32}")
DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
TIMESTAMP_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:Z|\+00:00)"
)

PRICE_FIELDS = ("bid_price", "ask_price", "last_price")
SIZE_FIELDS = ("bid_size", "ask_size", "last_size", "volume")
WIRE_FIELDS = (
    "symbol",
    "exchange",
    "bid_price",
    "bid_size",
    "ask_price",
    "ask_size",
    "last_price",
    "last_size",
    "volume",
    "timestamp",
    "sequence_number",
    "version",
)
"""The keys of the wire body, in the order producers write them."""

_WIRE_CONTEXT = {"wire": True}


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- field rules, shared with partitioning.codec ---------------------------------------------


def check_symbol(value: object) -> str:
    """Return `value` if it is a valid symbol, else raise ValueError saying why."""
    if type(value) is not str:
        raise ValueError(f"must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError("must not be empty")
    if len(value) > 32:
        raise ValueError(f"must be at most 32 characters, has {len(value)}")
    if SYMBOL_RE.fullmatch(value) is None:
        raise ValueError(
            "may only hold letters, digits and . - / _ ^ = (no whitespace or other characters)"
        )
    return value


def check_decimal_text(text: str) -> Decimal:
    """Parse a decimal string of the wire grammar (no NaN, no infinity, ASCII digits only)."""
    if len(text) > MAX_DECIMAL_CHARS:
        raise ValueError(f"must be at most {MAX_DECIMAL_CHARS} characters, has {len(text)}")
    if DECIMAL_RE.fullmatch(text) is None:
        raise ValueError("is not a finite decimal number such as '187.25' or '1.5E+3'")
    return Decimal(text)


def check_decimal(value: object, *, wire: bool, positive: bool) -> Decimal:
    """Validate one price (`positive`) or size/volume; return it as a Decimal."""
    if type(value) is str:
        number = check_decimal_text(value)
    elif wire:
        raise ValueError(f"must be a JSON string holding a decimal, not {type(value).__name__}")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite decimal (no NaN or infinity)")
        check_decimal_text(str(value))
        number = value
    elif type(value) is int:
        number = Decimal(value)
        check_decimal_text(str(number))
    else:
        raise ValueError(
            f"must be a Decimal, an int or a decimal string, not {type(value).__name__}"
        )
    if positive and not number > 0:
        raise ValueError("a price must be > 0")
    if not positive and number < 0:
        raise ValueError("a size or volume must be >= 0")
    return number


def parse_timestamp_us(text: str) -> int:
    """Microseconds since the epoch of an ISO-8601 UTC string (``Z`` or ``+00:00`` suffix).

    0 to 9 fraction digits are accepted; digits beyond the sixth (nanoseconds) are dropped.
    """
    match = TIMESTAMP_RE.fullmatch(text)
    if match is None:
        raise ValueError(
            "is not an ISO-8601 UTC timestamp such as '2026-11-25T14:03:07.123456Z' "
            "(suffix 'Z' or '+00:00')"
        )
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    except ValueError as exc:
        raise ValueError(f"is not a valid date and time ({exc})") from None
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    return (moment - EPOCH) // _ONE_S * 1_000_000 + micros


MILLIS_PREFIXES: dict[int, str] = {}
"""Cache: millisecond since the epoch -> ``YYYY-MM-DDTHH:MM:SS.mmm`` (the codec reads it)."""
MICROS_DIGITS: tuple[str, ...] = tuple(f"{n:03d}" for n in range(1000))
"""The last three fraction digits of a timestamp, by value."""


def format_timestamp_us(timestamp_us: int) -> str:
    """The wire form of a timestamp: ``2026-11-25T14:03:07.123456Z`` (always 6 digits)."""
    millis = timestamp_us // 1000
    prefix = MILLIS_PREFIXES.get(millis)
    if prefix is None:
        prefix = millis_prefix(millis)
    return f"{prefix}{MICROS_DIGITS[timestamp_us - millis * 1000]}Z"


def millis_prefix(millis: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmm`` of a millisecond since the epoch (cached).

    Raises TickError outside the years 1..9999.
    """
    second = millis // 1000
    try:
        text = (EPOCH + timedelta(seconds=second)).isoformat()[:19]
    except OverflowError:
        raise TickError(
            f"timestamp={millis * 1000}us since the epoch: outside the years 1..9999"
        ) from None
    prefix = f"{text}.{millis - second * 1000:03d}"
    if len(MILLIS_PREFIXES) >= 4096:
        MILLIS_PREFIXES.clear()
    MILLIS_PREFIXES[millis] = prefix
    return prefix


def timestamp_to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (moment - EPOCH) // _ONE_US


def us_to_timestamp(timestamp_us: int) -> datetime:
    """The UTC datetime of microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=timestamp_us)


def describe_validation_error(error: ValidationError) -> str:
    """One line naming every failing field, its value and what is wrong."""
    parts = []
    for detail in error.errors():
        parts.append(_describe_detail(detail))
    return "invalid tick: " + "; ".join(parts)


def _describe_detail(detail: ErrorDetails) -> str:
    loc = ".".join(str(p) for p in detail["loc"])
    msg = detail["msg"].removeprefix("Value error, ")
    kind = detail["type"]
    if kind == "missing":
        return f"{loc}: missing (required)"
    if kind == "extra_forbidden":
        return f"{loc}={_show(detail['input'])}: unknown field"
    if not loc:
        return msg
    return f"{loc}={_show(detail['input'])}: {msg}"


# -- the models ------------------------------------------------------------------------------


class MarketData(BaseModel):
    """One validated market-data tick (top of book, last trade, cumulative volume).

    Build it with `MarketData.build(...)` (raises `TickError`) or from wire bytes with
    `MarketData.from_bytes(...)` (raises `DecodeError`); calling the class directly raises
    pydantic's `ValidationError` (also a ValueError).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: str
    exchange: str
    bid_price: Decimal
    bid_size: Decimal
    ask_price: Decimal
    ask_size: Decimal
    last_price: Decimal
    last_size: Decimal
    volume: Decimal
    timestamp: datetime
    sequence_number: int
    version: int = SCHEMA_VERSION

    @field_validator("symbol", mode="before")
    @classmethod
    def _symbol(cls, value: object) -> str:
        return check_symbol(value)

    @field_validator("exchange", mode="before")
    @classmethod
    def _exchange(cls, value: object) -> str:
        if type(value) is not str:
            raise ValueError(f"must be a string, not {type(value).__name__}")
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator(*PRICE_FIELDS, mode="before")
    @classmethod
    def _price(cls, value: object, info: Any) -> Decimal:
        return check_decimal(value, wire=_is_wire(info), positive=True)

    @field_validator(*SIZE_FIELDS, mode="before")
    @classmethod
    def _size(cls, value: object, info: Any) -> Decimal:
        return check_decimal(value, wire=_is_wire(info), positive=False)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: object, info: Any) -> datetime:
        if type(value) is str:
            return us_to_timestamp(parse_timestamp_us(value))
        if _is_wire(info):
            raise ValueError(f"must be a JSON string, not {type(value).__name__}")
        if not isinstance(value, datetime):
            # pydantic reports ValueError (not TypeError) as a validation error
            raise ValueError(  # noqa: TRY004
                f"must be a timezone-aware datetime or an ISO-8601 UTC string, "
                f"not {type(value).__name__}"
            )
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware (a naive datetime has no defined instant)")
        return value.astimezone(UTC)

    @field_validator("sequence_number", mode="before")
    @classmethod
    def _sequence_number(cls, value: object) -> int:
        if type(value) is not int:
            raise ValueError(f"must be an integer, not {type(value).__name__}")
        if not 0 <= value <= MAX_SEQUENCE_NUMBER:
            raise ValueError("must be in 0 .. 2**63-1")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> int:
        if type(value) is not int:
            raise ValueError(f"must be an integer, not {type(value).__name__}")
        if value != SCHEMA_VERSION:
            raise ValueError(f"unknown schema version: only {SCHEMA_VERSION} is known")
        return value

    @model_validator(mode="after")
    def _bid_not_above_ask(self) -> Self:
        if self.bid_price > self.ask_price:
            raise ValueError(
                f"bid_price={str(self.bid_price)!r} is above ask_price={str(self.ask_price)!r}: "
                "a tick's bid must not exceed its ask"
            )
        return self

    # -- derived values (not on the wire) --

    @property
    def spread(self) -> Decimal:
        """``ask_price - bid_price`` (>= 0)."""
        return self.ask_price - self.bid_price

    @property
    def mid_price(self) -> Decimal:
        """``(bid_price + ask_price) / 2``."""
        return (self.bid_price + self.ask_price) / 2

    @property
    def timestamp_us(self) -> int:
        """The timestamp as microseconds since the epoch (UTC)."""
        return timestamp_to_us(self.timestamp)

    # -- construction and the wire --

    @classmethod
    def build(cls, **fields: Any) -> MarketData:
        """Validate `fields` into a tick; raises `TickError` naming each bad field."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise TickError(describe_validation_error(exc)) from None

    @classmethod
    def from_wire_dict(cls, data: object) -> MarketData:
        """Validate a parsed wire body (the JSON object); raises `DecodeError`."""
        if type(data) is not dict:
            raise DecodeError(f"body must be a JSON object, not {type(data).__name__}")
        try:
            return cls.model_validate(data, context=_WIRE_CONTEXT)
        except ValidationError as exc:
            raise DecodeError(describe_validation_error(exc)) from None

    @classmethod
    def from_bytes(cls, body: bytes | bytearray | memoryview | str) -> MarketData:
        """Decode and validate one wire body (UTF-8 JSON); raises `DecodeError`."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"body is not UTF-8 JSON: {exc}") from None
        return cls.from_wire_dict(data)

    def to_wire_dict(self) -> dict[str, str | int]:
        """The wire body as a dict (decimals as strings, timestamp as ISO-8601 ``...Z``)."""
        return {
            "symbol": self.symbol,
            "exchange": self.exchange,
            "bid_price": str(self.bid_price),
            "bid_size": str(self.bid_size),
            "ask_price": str(self.ask_price),
            "ask_size": str(self.ask_size),
            "last_price": str(self.last_price),
            "last_size": str(self.last_size),
            "volume": str(self.volume),
            "timestamp": format_timestamp_us(self.timestamp_us),
            "sequence_number": self.sequence_number,
            "version": self.version,
        }

    def to_bytes(self) -> bytes:
        """The wire body: compact UTF-8 JSON, keys in `WIRE_FIELDS` order."""
        return orjson.dumps(self.to_wire_dict())


def _is_wire(info: Any) -> bool:
    context = info.context
    return bool(context and context.get("wire"))


class StreamConfig(BaseModel):
    """The super stream's name, partition count and retention, as RabbitMQ is asked for them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    super_stream: str = Field(default="ticks", min_length=1, max_length=200)
    partitions: int = Field(default=3, ge=1, le=64)
    max_age: timedelta = timedelta(hours=24)
    max_length_bytes: int = Field(default=20_000_000_000, ge=1)
    max_segment_size_bytes: int = Field(default=500_000_000, ge=1)

    @field_validator("super_stream")
    @classmethod
    def _name(cls, value: str) -> str:
        if re.fullmatch(r"[A-Za-z0-9_.\-]+", value) is None:
            raise ValueError("may only hold ASCII letters, digits and _ . -")
        return value

    @field_validator("max_age")
    @classmethod
    def _max_age(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0) or value % _ONE_S:
            raise ValueError("must be a positive whole number of seconds")
        return value

    @model_validator(mode="after")
    def _segment_fits(self) -> Self:
        if self.max_segment_size_bytes > self.max_length_bytes:
            raise ValueError(
                f"max_segment_size_bytes={self.max_segment_size_bytes} exceeds "
                f"max_length_bytes={self.max_length_bytes}"
            )
        return self

    @classmethod
    def defaults(cls) -> StreamConfig:
        """``ticks`` with 3 partitions, 24 h / 20 GB retention, 500 MB segments."""
        return cls()

    def partition_names(self) -> list[str]:
        """The partition streams, as RabbitMQ names them: ``<super_stream>-<index>``."""
        return [f"{self.super_stream}-{i}" for i in range(self.partitions)]

    def dead_letter_stream(self) -> str:
        """The stream the workers dead-letter into by default: ``<super_stream>-dlq``."""
        return f"{self.super_stream}-dlq"

    def binding_keys(self) -> list[str]:
        """The binding keys of the partitions, in partition order: ``"0"`` .. ``"N-1"``."""
        return [str(i) for i in range(self.partitions)]

    def stream_arguments(self) -> dict[str, str | int]:
        """The per-partition stream arguments, named and formatted as RabbitMQ expects them.

        ``queue-leader-locator: balanced``: the broker places each partition's leader on the
        node leading the fewest streams. Its default, ``client-local``, puts every leader on
        the node the creating connection landed on: one node then takes every write."""
        return {
            "max-age": f"{self.max_age // _ONE_S}s",
            "max-length-bytes": self.max_length_bytes,
            "stream-max-segment-size-bytes": self.max_segment_size_bytes,
            "queue-leader-locator": "balanced",
        }
