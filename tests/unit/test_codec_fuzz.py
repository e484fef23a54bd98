"""Hostile input: the decoder, fuzzed. Random bytes, mutations of valid messages and the
hostile bodies of issue 15 (not JSON, wrong shape, version 99, NaN, invalid UTF-8, empty, a
900 KB body, raw bytes that are not AMQP, ask below bid), alone and among good messages.

Whatever it is given, `decode_message` returns a tick or raises `DecodeError`, nothing else;
`decode_messages` (the chunk decoder) decodes exactly the messages `decode_message` decodes,
to the same ticks, reports each bad one by its index with a DecodeError, and the good ones
around bad ones still decode. Bounded example counts keep this to seconds."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from partitioning.codec import decode_message, decode_messages, format_body, frame_message
from superticks.errors import DecodeError

T0_US = 1_790_000_000_000_000
FUZZ = settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


def _body(symbol: str = "AAPL", seq: int = 1, bid: str = "187.25", ask: str = "187.27") -> bytes:
    return format_body(symbol, "XNAS", bid, "100", ask, "200", bid, "5", "1000", T0_US + seq, seq)


GOOD = [
    frame_message(symbol, _body(symbol, seq))
    for seq, symbol in enumerate(["AAPL", "MSFT", "BRK.B", "Ünïcode", "X", "S" * 12])
]
GOOD_BODY = _body()
HOSTILE_BODIES = [
    b"not json at all",
    b'{"hello": "world"}',  # wrong shape
    b"[1, 2, 3]",
    GOOD_BODY.replace(b'"version":1', b'"version":99'),
    GOOD_BODY.replace(b'"187.25"', b"NaN", 1),
    GOOD_BODY.replace(b'"bid_size":"100"', b'"bid_size":NaN'),
    GOOD_BODY.replace(b'"AAPL"', b'"\xff\xfe\xfd"'),  # invalid UTF-8
    b"",
    b"{" + b'"pad":"' + b"x" * 900_000 + b'"}',  # a 900 KB body
    _body(bid="187.30", ask="187.20"),  # ask below bid
    GOOD_BODY[:-1],  # truncated JSON
    GOOD_BODY + b"{}",  # two values
    b"{}",
]
RAW_NOT_AMQP = [b"\x00\x01\x02\x03not amqp", b"\xff" * 64, b"\x00Sw\xa0", b"\x00", b"{}"]
HOSTILE = [frame_message("AAPL", b) for b in HOSTILE_BODIES] + HOSTILE_BODIES + RAW_NOT_AMQP


def _outcome(message: bytes) -> object:
    """The tick's fields, or the DecodeError's class: nothing else may come out."""
    try:
        tick = decode_message(message)
    except DecodeError:
        return DecodeError
    return (tick.symbol, tick.sequence_number, tick.bid_price, tick.ask_price, tick.timestamp_us)


def _fields(tick: object) -> object:
    t = tick  # a Tick
    return (t.symbol, t.sequence_number, t.bid_price, t.ask_price, t.timestamp_us)  # type: ignore[attr-defined]


def _check_chunk(messages: Sequence[bytes]) -> None:
    """decode_messages agrees with decode_message, message by message."""
    alone = [_outcome(m) for m in messages]
    ticks, errors = decode_messages(messages)
    assert all(isinstance(e, DecodeError) for _, e in errors), errors
    assert [i for i, _ in errors] == [i for i, o in enumerate(alone) if o is DecodeError]
    assert [_fields(t) for t in ticks] == [o for o in alone if o is not DecodeError]


def test_every_good_message_decodes() -> None:
    assert DecodeError not in [_outcome(m) for m in GOOD]


def test_every_hostile_message_is_a_decode_error() -> None:
    assert [_outcome(m) for m in HOSTILE] == [DecodeError] * len(HOSTILE)


def test_good_messages_around_each_hostile_one_still_decode() -> None:
    chunk = [m for bad in HOSTILE for m in (GOOD[0], bad, GOOD[1])]
    ticks, errors = decode_messages(chunk)
    assert [i for i, _ in errors] == list(range(1, len(chunk), 3))
    assert len(ticks) == 2 * len(HOSTILE)
    _check_chunk(chunk)


@FUZZ
@given(st.binary(max_size=400))
@example(b"")
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    _check_chunk([data])
    _check_chunk([GOOD[0], data, GOOD[2]])


@FUZZ
@given(st.binary(max_size=400))
def test_random_bodies_in_our_amqp_layout_decode_or_raise_decode_error(body: bytes) -> None:
    _check_chunk([frame_message("AAPL", body), GOOD[3]])


_MUTATION = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "truncate", "set"]),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=255),
)


def _mutate(message: bytes, mutations: Sequence[tuple[str, int, int]]) -> bytes:
    data = bytearray(message)
    for kind, at, value in mutations:
        pos = at % (len(data) + 1)
        if kind == "insert":
            data.insert(pos, value)
        elif not data or pos == len(data):
            continue
        elif kind == "flip":
            data[pos] ^= 1 << (value % 8)
        elif kind == "set":
            data[pos] = value
        elif kind == "delete":
            del data[pos]
        else:
            del data[pos:]
    return bytes(data)


@FUZZ
@given(
    st.lists(st.sampled_from(GOOD + HOSTILE[:12]), min_size=1, max_size=6),
    st.lists(st.lists(_MUTATION, min_size=1, max_size=4), min_size=1, max_size=6),
)
def test_mutated_chunks_decode_each_message_as_decoding_it_alone_does(
    messages: list[bytes], mutations: list[list[tuple[str, int, int]]]
) -> None:
    mutated = [_mutate(m, mutations[i % len(mutations)]) for i, m in enumerate(messages)]
    _check_chunk(mutated + GOOD)
    _check_chunk([m for pair in zip(GOOD, mutated, strict=False) for m in pair])


@FUZZ
@given(
    st.text(min_size=1, max_size=20),
    st.integers(min_value=0, max_value=2**53),
    st.decimals(allow_nan=True, allow_infinity=True, places=4),
    st.decimals(allow_nan=True, allow_infinity=True, places=4),
)
def test_ticks_with_arbitrary_fields_decode_or_raise_decode_error(
    symbol: str, seq: int, bid: object, ask: object
) -> None:
    body = format_body(symbol, "XNAS", str(bid), "1", str(ask), "1", str(bid), "1", "1", T0_US, seq)
    _check_chunk([frame_message("AAPL", body), GOOD[0]])
