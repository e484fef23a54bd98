"""The wire format: bodies, AMQP 1.0 framing, and the fast decoder agreeing with the model."""

from __future__ import annotations

import contextlib
import random
import struct
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from partitioning import codec
from partitioning.codec import (
    SCHEMA_VERSION,
    Tick,
    data_header,
    decode_body,
    decode_message,
    decode_messages,
    encode_body,
    encode_message,
    format_body,
    frame_message,
    message_prefix,
    split_message,
)
from partitioning.model import MarketData
from superticks.errors import DecodeError, TickError

WHEN = datetime(2026, 11, 25, 14, 3, 7, 123456, tzinfo=UTC)
WHEN_US = 1_795_615_387_123_456

BODY = (
    b'{"symbol":"AAPL","exchange":"NASDAQ","bid_price":"187.25","bid_size":"300",'
    b'"ask_price":"187.27","ask_size":"500","last_price":"187.26","last_size":"100",'
    b'"volume":"1234500","timestamp":"2026-11-25T14:03:07.123456Z",'
    b'"sequence_number":42,"version":1}'
)


def model(**changes: Any) -> MarketData:
    base: dict[str, Any] = {
        "symbol": "AAPL",
        "exchange": "NASDAQ",
        "bid_price": "187.25",
        "bid_size": "300",
        "ask_price": "187.27",
        "ask_size": "500",
        "last_price": "187.26",
        "last_size": "100",
        "volume": "1234500",
        "timestamp": WHEN,
        "sequence_number": 42,
    }
    base.update(changes)
    return MarketData.build(**base)


def wire_dict(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(BODY)
    data.update(changes)
    return data


def wire(**changes: Any) -> bytes:
    return orjson.dumps(wire_dict(**changes))


def fast_body(symbol: str = "AAPL", exchange: str = "NASDAQ", ts: int = WHEN_US) -> bytes:
    return format_body(
        symbol, exchange, "187.25", "300", "187.27", "500", "187.26", "100", "1234500", ts, 42
    )


# -- hand-made AMQP 1.0, independent of the codec ------------------------------------------------


def described(code: int, value: bytes) -> bytes:
    return b"\x00\x53" + bytes([code]) + value


def str8(text: str) -> bytes:
    raw = text.encode()
    return b"\xa1" + bytes([len(raw)]) + raw


def str32(text: str) -> bytes:
    raw = text.encode()
    return b"\xb1" + struct.pack(">I", len(raw)) + raw


def sym8(text: str) -> bytes:
    raw = text.encode()
    return b"\xa3" + bytes([len(raw)]) + raw


def vbin32(data: bytes) -> bytes:
    return b"\xb0" + struct.pack(">I", len(data)) + data


def map32(*items: bytes) -> bytes:
    content = b"".join(items)
    return b"\xd1" + struct.pack(">II", len(content) + 4, len(items)) + content


def list8(*items: bytes) -> bytes:
    content = b"".join(items)
    return b"\xc0" + bytes([len(content) + 1, len(items)]) + content


# -- bodies --------------------------------------------------------------------------------------


def test_schema_version_is_1() -> None:
    assert SCHEMA_VERSION == 1


def test_format_body_writes_the_documented_body() -> None:
    assert fast_body() == BODY


def test_format_body_and_encode_body_write_the_same_bytes() -> None:
    assert encode_body(model()) == fast_body()


def test_format_body_escapes_symbol_and_exchange_like_the_model() -> None:
    tick = model(symbol="Nestlé", exchange='Six "Swiss" \\ Exchange')
    assert fast_body("Nestlé", 'Six "Swiss" \\ Exchange') == encode_body(tick)


@pytest.mark.parametrize(
    ("timestamp_us", "text"),
    [
        (0, b"1970-01-01T00:00:00.000000Z"),
        (-1, b"1969-12-31T23:59:59.999999Z"),
        (999, b"1970-01-01T00:00:00.000999Z"),
        (WHEN_US, b"2026-11-25T14:03:07.123456Z"),
    ],
)
def test_format_body_writes_timestamps_with_six_fraction_digits(
    timestamp_us: int, text: bytes
) -> None:
    assert b'"timestamp":"' + text + b'"' in fast_body(ts=timestamp_us)


def test_format_body_refuses_a_timestamp_beyond_year_9999() -> None:
    with pytest.raises(TickError, match="timestamp="):
        fast_body(ts=10**18)


def test_decode_body_reads_every_field() -> None:
    assert decode_body(BODY) == Tick(
        symbol="AAPL",
        exchange="NASDAQ",
        bid_price="187.25",
        bid_size="300",
        ask_price="187.27",
        ask_size="500",
        last_price="187.26",
        last_size="100",
        volume="1234500",
        timestamp_us=WHEN_US,
        sequence_number=42,
        version=1,
    )


def test_decode_body_checks_canonical_bodies_without_the_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(data: object) -> Tick:
        raise AssertionError("the slow path was taken")

    decode_body(BODY)  # warm the caches
    monkeypatch.setattr(codec, "_decode_slow", refuse)
    assert decode_body(BODY).symbol == "AAPL"
    assert decode_body(fast_body("MSFT", ts=WHEN_US + 1)).symbol == "MSFT"


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-11-25T14:03:07.123Z",
        "2026-11-25T14:03:07.123+00:00",
        "2026-11-25T14:03:07.123456+00:00",
    ],
)
def test_decode_body_checks_other_languages_timestamps_without_the_model(
    monkeypatch: pytest.MonkeyPatch, timestamp: str
) -> None:
    def refuse(data: object) -> Tick:
        raise AssertionError("the slow path was taken")

    monkeypatch.setattr(codec, "_decode_slow", refuse)
    assert decode_body(wire(timestamp=timestamp)).timestamp_us // 1000 == WHEN_US // 1000


def test_decode_body_keeps_decimal_strings_exactly() -> None:
    tick = decode_body(wire(bid_price="187.2500", volume="1.2345E+6"))
    assert tick.bid_price == "187.2500"
    assert tick.volume == "1.2345E+6"


def test_tick_decimal_properties() -> None:
    tick = decode_body(BODY)
    assert tick.last_price_decimal == Decimal("187.26")
    assert tick.last_size_decimal == Decimal(100)


def test_tick_to_model_is_the_models_decoding() -> None:
    assert decode_body(BODY).to_model() == MarketData.from_bytes(BODY) == model()


def test_encode_then_decode_round_trips() -> None:
    tick = model(symbol="トヨタ", bid_size="0", volume="0")
    assert decode_body(encode_body(tick)).to_model() == tick


def test_decode_body_accepts_keys_in_any_order() -> None:
    data = wire_dict()
    shuffled = dict(reversed(list(data.items())))
    assert decode_body(orjson.dumps(shuffled)) == decode_body(BODY)


def test_decode_body_accepts_a_plus_zero_offset() -> None:
    tick = decode_body(wire(timestamp="2026-11-25T14:03:07.123456+00:00"))
    assert tick.timestamp_us == WHEN_US


def test_decode_body_accepts_millisecond_timestamps_as_js_writes_them() -> None:
    assert decode_body(wire(timestamp="2026-11-25T14:03:07.123Z")).timestamp_us == WHEN_US - 456


def test_decode_body_accepts_nanosecond_timestamps_as_java_writes_them() -> None:
    tick = decode_body(wire(timestamp="2026-11-25T14:03:07.123456789Z"))
    assert tick.timestamp_us == WHEN_US


def test_decode_body_accepts_bid_equal_to_ask_in_another_notation() -> None:
    tick = decode_body(wire(bid_price="187.27", ask_price="1.8727E+2", last_price="187.27"))
    assert tick.ask_price == "1.8727E+2"


def test_decode_body_accepts_a_negative_zero_size() -> None:
    assert decode_body(wire(bid_size="-0")).bid_size == "-0"


def test_decode_body_compares_bid_and_ask_beyond_float_precision() -> None:
    with pytest.raises(DecodeError, match="is above ask_price"):
        decode_body(wire(bid_price="187.270000000000000001", ask_price="187.27"))


def test_decode_body_accepts_prices_too_small_for_a_float() -> None:
    tick = decode_body(wire(bid_price="1e-400", last_price="1e-400"))
    assert tick.bid_price == "1e-400"


def test_decode_body_accepts_volumes_too_large_for_a_float() -> None:
    assert decode_body(wire(volume="1e400")).volume == "1e400"


# -- decode_body rejections, one per rule --------------------------------------------------------


def test_decode_body_refuses_bytes_that_are_not_json() -> None:
    with pytest.raises(DecodeError, match="not UTF-8 JSON"):
        decode_body(b'{"symbol": ')


def test_decode_body_refuses_invalid_utf8() -> None:
    with pytest.raises(DecodeError, match="not UTF-8 JSON"):
        decode_body(BODY.replace(b"AAPL", b"AA\xffL"))


def test_decode_body_refuses_json_that_is_not_an_object() -> None:
    with pytest.raises(DecodeError, match="must be a JSON object"):
        decode_body(b'"AAPL"')


def test_decode_body_refuses_a_missing_field() -> None:
    data = wire_dict()
    del data["timestamp"]
    with pytest.raises(DecodeError, match="timestamp: missing"):
        decode_body(orjson.dumps(data))


def test_decode_body_refuses_an_unknown_field() -> None:
    with pytest.raises(DecodeError, match="venue='X': unknown field"):
        decode_body(wire(venue="X"))


def test_decode_body_refuses_an_empty_symbol() -> None:
    with pytest.raises(DecodeError, match="symbol='': must not be empty"):
        decode_body(wire(symbol=""))


def test_decode_body_refuses_a_malformed_symbol() -> None:
    with pytest.raises(DecodeError, match="symbol='AA PL': may only hold"):
        decode_body(wire(symbol="AA PL"))


def test_decode_body_refuses_a_symbol_that_is_not_a_string() -> None:
    with pytest.raises(DecodeError, match="symbol=42: must be a string"):
        decode_body(wire(symbol=42))


def test_decode_body_refuses_an_empty_exchange() -> None:
    with pytest.raises(DecodeError, match="exchange='': must not be empty"):
        decode_body(wire(exchange=""))


def test_decode_body_refuses_a_negative_size() -> None:
    with pytest.raises(DecodeError, match="ask_size='-100': a size or volume must be >= 0"):
        decode_body(wire(ask_size="-100"))


def test_decode_body_refuses_a_zero_price() -> None:
    with pytest.raises(DecodeError, match="last_price='0': a price must be > 0"):
        decode_body(wire(last_price="0"))


def test_decode_body_refuses_bid_above_ask() -> None:
    with pytest.raises(DecodeError, match=r"bid_price='187.28' is above ask_price='187.27'"):
        decode_body(wire(bid_price="187.28"))


def test_decode_body_refuses_nan() -> None:
    with pytest.raises(DecodeError, match="bid_size='NaN': is not a finite decimal"):
        decode_body(wire(bid_size="NaN"))


def test_decode_body_refuses_infinity() -> None:
    with pytest.raises(DecodeError, match="ask_price='Infinity': is not a finite decimal"):
        decode_body(wire(ask_price="Infinity"))


def test_decode_body_refuses_a_decimal_sent_as_a_json_number() -> None:
    with pytest.raises(DecodeError, match="volume=1234500: must be a JSON string"):
        decode_body(wire(volume=1234500))


def test_decode_body_refuses_a_timestamp_without_utc_suffix() -> None:
    with pytest.raises(DecodeError, match=r"timestamp='2026-11-25T14:03:07.123456': is not an"):
        decode_body(wire(timestamp="2026-11-25T14:03:07.123456"))


def test_decode_body_refuses_a_timestamp_with_a_non_utc_offset() -> None:
    with pytest.raises(DecodeError, match=r"timestamp=.*ISO-8601 UTC"):
        decode_body(wire(timestamp="2026-11-25T15:03:07.123456+01:00"))


def test_decode_body_refuses_an_impossible_date() -> None:
    with pytest.raises(DecodeError, match=r"timestamp=.*not a valid date and time"):
        decode_body(wire(timestamp="2026-02-30T14:03:07.123456Z"))


def test_decode_body_refuses_an_unknown_version() -> None:
    with pytest.raises(DecodeError, match="version=2: unknown schema version"):
        decode_body(wire(version=2))


def test_decode_body_refuses_a_version_sent_as_a_string() -> None:
    with pytest.raises(DecodeError, match="version='1': must be an integer"):
        decode_body(wire(version="1"))


def test_decode_body_refuses_a_negative_sequence_number() -> None:
    with pytest.raises(DecodeError, match="sequence_number=-1"):
        decode_body(wire(sequence_number=-1))


def test_decode_body_refuses_a_boolean_sequence_number() -> None:
    with pytest.raises(DecodeError, match="sequence_number=True: must be an integer"):
        decode_body(wire(sequence_number=True))


# -- decode_body accepts exactly what MarketData accepts -----------------------------------------

DECIMALS = [
    "187.25", "187.27", "187.2500", "300", "0", "-0", "0.000", "-1", "-0.01", ".5", "5.", "+3",
    "1E+2", "1e-7", "1e-400", "-1e-400", "1e400", "NaN", "nan", "Infinity", "-inf", " 1",
    "1 ", "1_000", "1,5", "", "١٢", "0x10", "1e", "187.270000000000000001", "9" * 65, 187.25,
    187, None, True, ["1"],
]  # fmt: skip
TIMESTAMPS = [
    "2026-11-25T14:03:07.123456Z", "2026-11-25T14:03:07.123999Z",
    "2026-11-25T14:03:07.123456+00:00", "2026-11-25T14:03:07Z", "2026-11-25T14:03:07.1Z",
    "2026-11-25T14:03:07.123456789Z", "2026-11-25T14:03:07.1234567890Z",
    "2026-11-25T15:03:07.123456+01:00", "2026-11-25T14:03:07.123456", "2026-11-25",
    "2026-11-25 14:03:07.123456Z", "2026-11-25T14:03:07.123456z", "2026-13-25T14:03:07Z",
    "2026-11-25T14:03:07.12345٦Z", "2026-11-25T14:03:07.+12345Z", "0001-01-01T00:00:00Z",
    "2026-11-25T14:03:07.123456-00:00", 1795615387, None,
]  # fmt: skip
POOLS: dict[str, list[Any]] = {
    "symbol": ["AAPL", "BRK.B", "トヨタ", "", "A B", "A" * 33, "A" * 32, "🚀", 5, None, "^VIX"],
    "exchange": ["NYSE", "", " ", 3, None, "N Y", 'Ex"change'],
    "bid_price": DECIMALS,
    "bid_size": DECIMALS,
    "ask_price": DECIMALS,
    "ask_size": DECIMALS,
    "last_price": DECIMALS,
    "last_size": DECIMALS,
    "volume": DECIMALS,
    "timestamp": TIMESTAMPS,
    "sequence_number": [0, 42, -1, 2**63 - 1, 2**63, True, 1.0, "5", None],
    "version": [1, 2, 0, True, 1.0, "1", None],
}


def agree(body: bytes) -> None:
    """decode_body and MarketData.from_bytes accept or refuse `body` together, and agree."""
    try:
        expected = MarketData.from_bytes(body)
    except DecodeError:
        with pytest.raises(DecodeError):
            decode_body(body)
        return
    tick = decode_body(body)
    assert tick.to_model() == expected
    raw = orjson.loads(body)
    for name in ("bid_price", "bid_size", "ask_price", "ask_size", "last_price", "last_size"):
        assert getattr(tick, name) == raw[name]
    assert tick.volume == raw["volume"]
    assert tick.timestamp_us == expected.timestamp_us


@pytest.mark.parametrize("field", list(POOLS))
def test_decode_body_agrees_with_the_model_on_every_value_of_each_field(field: str) -> None:
    for value in POOLS[field]:
        agree(wire(**{field: value}))


def test_decode_body_agrees_with_the_model_on_random_mutations() -> None:
    rng = random.Random(20261125)
    fields = list(POOLS)
    accepted = 0
    for case in range(3000):
        data = wire_dict()
        for field in rng.sample(fields, rng.randint(1, 3)):
            data[field] = rng.choice(POOLS[field])
        if case % 7 == 0:
            del data[rng.choice(fields)]
        if case % 11 == 0:
            data["extra"] = 1
        if case % 5 == 0:
            items = list(data.items())
            rng.shuffle(items)
            data = dict(items)
        body = orjson.dumps(data)
        agree(body)
        try:
            MarketData.from_bytes(body)
            accepted += 1
        except DecodeError:
            pass
    assert 100 < accepted < 2900  # both outcomes were exercised


# -- AMQP 1.0 framing ----------------------------------------------------------------------------


def test_frame_message_writes_properties_application_properties_and_data() -> None:
    expected = (
        described(0x73, b"\xc0\x19\x07" + b"\x40" * 6 + sym8("application/json"))
        + described(
            0x74,
            b"\xc1\x22\x04" + str8("symbol") + str8("AAPL") + str8("schema_version") + str8("1"),
        )
        + described(0x75, b"\xa0" + bytes([len(BODY)]) + BODY)
    )
    assert frame_message("AAPL", BODY) == expected


def test_frame_message_is_prefix_plus_data_header_plus_body() -> None:
    assert frame_message("MSFT", BODY) == message_prefix("MSFT") + data_header(len(BODY)) + BODY


def test_data_header_uses_vbin8_up_to_255_bytes_then_vbin32() -> None:
    assert data_header(255) == b"\x00\x53\x75\xa0\xff"
    assert data_header(256) == b"\x00\x53\x75\xb0\x00\x00\x01\x00"
    assert data_header(70_000) == b"\x00\x53\x75\xb0" + struct.pack(">I", 70_000)


def test_split_message_reads_back_frame_message() -> None:
    properties, body = split_message(frame_message("トヨタ", BODY))
    assert properties == {"symbol": "トヨタ", "schema_version": "1"}
    assert body == BODY


def test_schema_version_property_is_a_string() -> None:
    properties, _ = split_message(frame_message("AAPL", BODY))
    assert properties["schema_version"] == "1"


def test_a_long_body_is_framed_with_vbin32_and_read_back() -> None:
    body = wire(exchange="X" * 5000)
    message = frame_message("AAPL", body)
    assert message.endswith(b"\x00\x53\x75\xb0" + struct.pack(">I", len(body)) + body)
    assert split_message(message)[1] == body


def test_a_long_routing_key_is_framed_with_str32_and_map32() -> None:
    symbol = "S" * 300
    properties, body = split_message(frame_message(symbol, BODY))
    assert properties["symbol"] == symbol
    assert body == BODY


def test_encode_message_frames_the_models_body() -> None:
    tick = model()
    assert encode_message(tick) == frame_message("AAPL", encode_body(tick))


def test_decode_message_reads_our_own_messages() -> None:
    assert decode_message(frame_message("AAPL", BODY)) == decode_body(BODY)


def test_decode_message_reads_our_own_messages_with_long_bodies() -> None:
    body = wire(exchange="X" * 400)
    assert decode_message(frame_message("AAPL", body)).exchange == "X" * 400


def test_decode_message_accepts_bytearray_and_memoryview() -> None:
    message = frame_message("AAPL", BODY)
    assert decode_message(bytearray(message)) == decode_message(memoryview(message))


def test_decode_message_reads_a_java_style_message_in_another_layout() -> None:
    message = (
        described(0x70, list8(b"\x41"))  # header: durable
        + described(0x72, map32(sym8("x-opt-key"), str8("v")))  # message-annotations
        + described(0x73, list8(str8("id-1"), b"\x40", b"\x40", b"\x40", b"\x40", b"\x40"))
        + described(0x74, map32(str32("symbol"), str32("AAPL"), sym8("seq"), b"\x54\x07"))
        + described(0x77, vbin32(BODY))  # amqp-value holding a binary
    )
    assert split_message(message) == ({"symbol": "AAPL", "seq": 7}, BODY)
    assert decode_message(message) == decode_body(BODY)


def test_split_message_reads_an_amqp_value_string_body() -> None:
    message = described(0x77, str32(BODY.decode()))
    assert split_message(message) == ({}, BODY)


def test_split_message_concatenates_several_data_sections() -> None:
    message = described(0x75, vbin32(BODY[:10])) + described(0x75, vbin32(BODY[10:]))
    assert split_message(message)[1] == BODY


def test_split_message_reads_symbolic_and_ulong_descriptors() -> None:
    message = (
        b"\x00" + sym8("amqp:application-properties:map") + map32(str8("symbol"), str8("A"))
        + b"\x00\x80" + struct.pack(">Q", 0x75) + vbin32(BODY)
    )  # fmt: skip
    assert split_message(message) == ({"symbol": "A"}, BODY)


def test_split_message_reads_integer_and_boolean_property_values() -> None:
    properties = map32(
        str8("ulong"), b"\x80" + struct.pack(">Q", 2**40),
        str8("int"), b"\x71" + struct.pack(">i", -5),
        str8("small"), b"\x52\x09",
        str8("zero"), b"\x43",
        str8("flag"), b"\x41",
        str8("skipped"), b"\x82" + struct.pack(">d", 1.5),
    )  # fmt: skip
    parsed, _ = split_message(described(0x74, properties) + described(0x75, vbin32(BODY)))
    assert parsed == {"ulong": 2**40, "int": -5, "small": 9, "zero": 0, "flag": True}


def test_split_message_skips_delivery_annotations_and_footer() -> None:
    message = (
        described(0x71, map32(sym8("k"), b"\x40"))
        + described(0x75, vbin32(BODY))
        + described(0x78, map32(sym8("sig"), vbin32(b"\x01\x02")))
    )
    assert split_message(message) == ({}, BODY)


def test_split_message_refuses_a_truncated_message() -> None:
    with pytest.raises(DecodeError, match="truncated"):
        split_message(frame_message("AAPL", BODY)[:-5])


def test_split_message_refuses_a_message_without_body() -> None:
    with pytest.raises(DecodeError, match="no body"):
        split_message(message_prefix("AAPL"))


def test_split_message_refuses_bytes_that_are_not_amqp() -> None:
    with pytest.raises(DecodeError, match="does not start an AMQP section"):
        split_message(BODY)


def test_split_message_refuses_an_amqp_sequence_body() -> None:
    with pytest.raises(DecodeError, match="amqp-sequence"):
        split_message(described(0x76, list8(str8("x"))))


def test_decode_message_refuses_a_truncated_message() -> None:
    with pytest.raises(DecodeError):
        decode_message(frame_message("AAPL", BODY)[:-1])


def test_decode_message_refuses_an_invalid_tick() -> None:
    with pytest.raises(DecodeError, match="is above ask_price"):
        decode_message(frame_message("AAPL", wire(bid_price="200")))


def test_split_message_skips_deeply_nested_descriptors_without_recursing() -> None:
    message = described(0x72, b"\x00\x53\x01" * 100_000 + b"\x40") + described(0x75, b"\xa0\x00")
    assert split_message(message) == ({}, b"")


def test_corrupted_messages_raise_only_decode_error() -> None:
    rng = random.Random(7)
    good = [
        frame_message("AAPL", BODY),
        described(0x72, map32(sym8("k"), str8("v")))
        + described(0x74, map32(str32("symbol"), str32("AAPL"), sym8("n"), b"\x54\x07"))
        + described(0x77, vbin32(BODY)),
    ]
    for _ in range(5000):
        message = bytearray(rng.choice(good))
        if rng.random() < 0.5:
            del message[rng.randrange(1, len(message)) :]
        for _ in range(rng.randint(1, 4)):
            message[rng.randrange(len(message))] = rng.randrange(256)
        with contextlib.suppress(DecodeError):  # anything else fails the test
            decode_message(bytes(message))


# -- decode_messages agrees with decode_message --------------------------------------------------


def one_by_one(messages: list[bytes]) -> tuple[list[Tick], list[tuple[int, str, str]]]:
    ticks: list[Tick] = []
    errors: list[tuple[int, str, str]] = []
    for i, message in enumerate(messages):
        try:
            ticks.append(decode_message(message))
        except DecodeError as exc:
            errors.append((i, type(exc).__name__, str(exc)))
    return ticks, errors


def agree_chunk(messages: list[bytes]) -> tuple[list[Tick], list[tuple[int, str, str]]]:
    """decode_messages reads `messages` exactly as decode_message reads each of them."""
    expected = one_by_one(messages)
    ticks, errors = decode_messages(messages)
    assert ticks == expected[0]
    assert [(i, type(exc).__name__, str(exc)) for i, exc in errors] == expected[1]
    return expected


def java_style(body: bytes = BODY) -> bytes:
    return (
        described(0x70, list8(b"\x41"))
        + described(0x74, map32(str32("symbol"), str32("AAPL"), sym8("seq"), b"\x54\x07"))
        + described(0x77, vbin32(body))
    )


GOOD_MESSAGES = [
    frame_message("AAPL", BODY),
    frame_message("AAPL", wire(exchange="X" * 400)),  # vbin32 data section
    frame_message("Nestlé", encode_body(model(symbol="Nestlé", exchange='Six "S" \\ E'))),
    frame_message("AAPL", wire(timestamp="2026-11-25T14:03:07.123+00:00")),
    frame_message("AAPL", wire(exchange="[NYSE]")),  # a bracket: parsed on its own
    frame_message("AAPL", b" " + BODY),  # does not start with {: parsed on its own
    frame_message("AAPL", BODY + b"\n"),  # does not end with }: parsed on its own
    java_style(),
    encode_message(model(symbol="BRK.B", bid_price="1e-400", ask_price="1e-399")),
]
BAD_MESSAGES = [
    frame_message("AAPL", BODY)[:-1],
    frame_message("AAPL", wire(bid_price="200")),
    frame_message("AAPL", b"{}"),
    frame_message("AAPL", b""),
    frame_message("AAPL", b"not json"),
    BODY,
    b"",
    b"\x00",
    java_style(b"[]"),
]


def test_decode_messages_reads_an_empty_chunk() -> None:
    assert decode_messages([]) == ([], [])


def test_decode_messages_agrees_on_good_and_bad_vectors() -> None:
    ticks, errors = agree_chunk(GOOD_MESSAGES + BAD_MESSAGES)
    assert len(ticks) == len(GOOD_MESSAGES)
    assert [i for i, _, _ in errors] == list(
        range(len(GOOD_MESSAGES), len(GOOD_MESSAGES) + len(BAD_MESSAGES))
    )
    for message in GOOD_MESSAGES + BAD_MESSAGES:
        agree_chunk([message])
        agree_chunk([message, frame_message("AAPL", BODY), message])


def test_decode_messages_agrees_on_shuffled_mixed_chunks() -> None:
    rng = random.Random(11)
    plain = [frame_message("AAPL", fast_body(ts=WHEN_US + n)) for n in range(50)]
    for _ in range(200):
        chunk = plain + rng.sample(GOOD_MESSAGES + BAD_MESSAGES, rng.randint(0, 6))
        rng.shuffle(chunk)
        agree_chunk(chunk)


def test_decode_messages_accepts_bytearray_and_memoryview() -> None:
    message = frame_message("AAPL", BODY)
    ticks, errors = decode_messages([bytearray(message), memoryview(message), message])
    assert ticks == [decode_message(message)] * 3
    assert errors == []


@pytest.mark.parametrize(
    "bodies",
    [
        [b'{"a":{"b":1}', b'{"c":2}}'],  # the first object closes in the second body
        [b'{"a":[{"b":1}', b"{}]}"],  # an array swallows the next body
        [b'{"a":"x}', b'{"}'],  # a string spanning two bodies
        [b'{"a":1},{"b":2}', b"}{"],  # one body holds two values, the next none
        [b'{"a":1},\n{"b":2}', b'{"c":3'],
        [b"{", b"}"],
    ],
)
def test_decode_messages_reads_each_body_alone(bodies: list[bytes]) -> None:
    good = frame_message("AAPL", BODY)
    messages = [good, *(frame_message("AAPL", body) for body in bodies), good]
    _, errors = agree_chunk(messages)
    assert [i for i, _, _ in errors] == list(range(1, len(bodies) + 1))


@pytest.mark.parametrize(
    "body",
    [
        # a repeated key keeps its last value (orjson's dict does), even after a wrong type
        BODY[:-1] + b',"sequence_number":"x","sequence_number":7}',
        BODY[:-1] + b',"sequence_number":7,"sequence_number":"x"}',
        BODY[:-1] + b',"symbol":"MSFT"}',
        BODY.replace(b'"symbol":', b'"symb\\u006fl":'),  # an escaped key
        BODY.replace(b'"AAPL"', b'"\\u0041APL"'),  # an escaped value
        BODY.replace(b":42,", b":-0,"),
        BODY.replace(b":42,", b":42.0,"),
        BODY.replace(b":42,", b":4.2e1,"),
        BODY.replace(b":42,", b":9223372036854775807,"),  # the largest sequence number
        BODY.replace(b":42,", b":9223372036854775808,"),
        BODY.replace(b":42,", b":18446744073709551616,"),  # beyond 64 bits: a float to orjson
        BODY.replace(b":42,", b":true,"),
        BODY.replace(b'"version":1', b'"version":1.0'),
        BODY.replace(b'"version":1', b'"version":true'),
        BODY.replace(b'"exchange":"NASDAQ"', b'"exchange":""'),
        BODY.replace(b'"volume":"1234500"', b'"volume":1234500'),
        BODY.replace(b'"volume":"1234500"', b'"volume":null'),
        BODY[:-1] + b',"timestamp_us":1}',  # the name of a Tick field, not of the wire
        BODY.replace(b'"version":1', b'"version":1,"extra":{}'),
        BODY.replace(b'"AAPL"', b'"\\ud800"'),  # a lone surrogate
        BODY.replace(b'"NASDAQ"', b'"NAS\\u0000DAQ"'),
    ],
)
def test_decode_messages_agrees_where_json_readers_may_differ(body: bytes) -> None:
    """The chunk decoder reads typed structs (msgspec) first, orjson dicts when they do not
    fit: either way, the same answer as `decode_message`, alone or among good messages."""
    good = frame_message("AAPL", BODY)
    agree_chunk([frame_message("AAPL", body)])
    agree_chunk([good, frame_message("AAPL", body), good])


def test_decode_messages_reads_a_simulated_chunk() -> None:
    from partitioning.simulator import MarketSimulator

    messages = [frame_message(s, b) for s, b in MarketSimulator(50, seed=3).batch(2000)]
    ticks, errors = agree_chunk(messages)
    assert len(ticks) == 2000
    assert errors == []


@pytest.mark.parametrize("field", list(POOLS))
def test_decode_messages_agrees_on_every_value_of_each_field(field: str) -> None:
    messages = [frame_message("AAPL", wire(**{field: value})) for value in POOLS[field]]
    agree_chunk(messages)
    agree_chunk(messages[::-1])


@pytest.mark.parametrize("field", list(POOLS))
def test_decode_messages_refuses_one_bad_value_among_ticks_the_caches_know(field: str) -> None:
    """A chunk whose strings were all seen before is checked through the caches in one test
    per tick: a value that breaks a rule, among good ticks, is still refused on its own, field
    by field (`agree_chunk` reads each message alone first, so the caches know every string)."""
    good = frame_message("AAPL", BODY)
    for value in POOLS[field]:
        odd = frame_message("AAPL", wire(**{field: value}))
        agree_chunk([good, odd, good])
        agree_chunk([good, good, good, odd])


def test_decode_messages_gives_ticks_of_the_tick_type() -> None:
    """Checked through the caches or without them, a decoded tick is a `Tick`, not the struct
    it was read into."""
    when = 1_900_000_000_123_000  # a millisecond no other test reads: not in the cache yet
    messages = [frame_message("AAPL", fast_body(ts=when + n)) for n in range(5)]
    for _ in range(2):  # a new millisecond (`_wire_tick`), then known (the caches' test)
        ticks, errors = decode_messages(messages)
        assert errors == []
        assert [type(t) for t in ticks] == [Tick] * 5
        assert [t.timestamp_us for t in ticks] == [when + n for n in range(5)]


def test_decode_messages_agrees_on_random_mutations() -> None:
    rng = random.Random(20261125)
    fields = list(POOLS)
    messages = []
    for case in range(3000):
        data = wire_dict()
        for field in rng.sample(fields, rng.randint(1, 3)):
            data[field] = rng.choice(POOLS[field])
        if case % 7 == 0:
            del data[rng.choice(fields)]
        if case % 11 == 0:
            data["extra"] = 1
        if case % 5 == 0:
            items = list(data.items())
            rng.shuffle(items)
            data = dict(items)
        messages.append(frame_message("AAPL", orjson.dumps(data)))
    ticks, errors = agree_chunk(messages)
    assert ticks
    assert errors
    for start in range(0, len(messages), 97):
        agree_chunk(messages[start : start + 97])


def test_decode_messages_agrees_on_corrupted_messages() -> None:
    rng = random.Random(7)
    good = [
        frame_message("AAPL", BODY),
        described(0x72, map32(sym8("k"), str8("v")))
        + described(0x74, map32(str32("symbol"), str32("AAPL"), sym8("n"), b"\x54\x07"))
        + described(0x77, vbin32(BODY)),
    ]
    messages = []
    for _ in range(5000):
        message = bytearray(rng.choice(good))
        if rng.random() < 0.5:
            del message[rng.randrange(1, len(message)) :]
        for _ in range(rng.randint(1, 4)):
            message[rng.randrange(len(message))] = rng.randrange(256)
        messages.append(bytes(message))
    for start in range(0, len(messages), 50):
        chunk = messages[start : start + 50]
        agree_chunk(chunk)
        agree_chunk([*chunk, *good])
