"""The compiled fold (`workers/_fold.c`, `RunningVwap.update_messages`), against the decoder.

Two promises, each checked against the Python path (`decode_messages`, then `update_batch`):

* it adds a chunk it vouches for with exactly the aggregates (values and decimal
  representations) and last prices of the Python path, and it vouches for every chunk of ticks
  our producer writes with numbers of up to 18 digits (so these tests cannot pass on a fold that
  declines everything);
* it never vouches for a message the decoder refuses: every mutation of a valid message is
  either declined or decoded by the decoder to aggregates it agrees with; a declined chunk adds
  nothing.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from partitioning.codec import decode_messages, format_body, frame_message
from partitioning.simulator import MarketSimulator
from workers.handlers import VwapHandler
from workers.vwap import COMPILED_FOLD, RunningVwap, message_timestamps

FUZZ = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
T0_US = 1_795_617_000_000_000


def test_the_fold_is_compiled() -> None:
    assert COMPILED_FOLD, (
        "workers/_fold.c was not compiled when the project was installed (hatch_build.py): "
        "install a C compiler, then `uv sync --reinstall-package superticks`"
    )


def _message(
    symbol: str = "AAPL",
    price: str = "187.25",
    size: str = "100",
    timestamp_us: int = T0_US,
    bid: str | None = None,
    ask: str | None = None,
    seq: int = 1,
    exchange: str = "XNAS",
) -> bytes:
    body = format_body(
        symbol,
        exchange,
        bid or price,
        "300",
        ask or price,
        "0",
        price,
        size,
        "123456789012345678901234567890",
        timestamp_us,
        seq,
    )
    return frame_message(symbol, body)


def _reference(messages: list[bytes]) -> tuple[RunningVwap, dict[str, str]] | None:
    """The Python path: None when any message does not decode."""
    ticks, errors = decode_messages(messages)
    if errors:
        return None
    running = RunningVwap()
    running.update_batch(ticks)
    return running, {t.symbol: t.last_price for t in ticks}


def _same(a: RunningVwap, b: RunningVwap) -> None:
    left, right = a.snapshot(), b.snapshot()
    assert list(left) == list(right)  # first-seen order too
    for symbol, agg in left.items():
        other = right[symbol]
        assert agg == other
        assert [str(x) for x in (agg.vwap, agg.high, agg.low, agg.volume)] == [
            str(x) for x in (other.vwap, other.high, other.low, other.volume)
        ]


def _check(messages: list[bytes]) -> bool:
    """Fold `messages` both ways; True when the compiled fold vouched for them."""
    folded = RunningVwap()
    pairs = folded.update_messages(messages)
    reference = _reference(messages)
    if pairs is None:
        assert len(folded) == 0  # a declined chunk adds nothing
        return False
    assert reference is not None, "the fold vouched for a chunk the decoder refuses"
    running, last_prices = reference
    _same(folded, running)
    assert dict(pairs) == last_prices
    return True


def test_a_simulated_feed_folds_exactly_as_decoded() -> None:
    sim = MarketSimulator(50, seed=3)
    messages = [frame_message(s, b) for s, b in sim.batch(3000)]
    for start in range(0, 3000, 700):
        assert _check(messages[start : start + 700])


def test_chunks_folded_one_after_another_add_up_like_one_batch() -> None:
    sim = MarketSimulator(20, seed=4)
    messages = [frame_message(s, b) for s, b in sim.batch(2000)]
    folded = RunningVwap()
    for start in range(0, 2000, 300):
        assert folded.update_messages(messages[start : start + 300]) is not None
    reference = _reference(messages)
    assert reference is not None
    _same(folded, reference[0])


def test_a_symbol_folded_in_python_first_then_compiled_adds_up() -> None:
    # a number the fold does not take (19 digits) puts the symbol in the Python paths first
    first = [_message(price="1234567890.123456789", size="3")]
    then = [_message(price="187.5", size="2"), _message(price="187.25", size="0.5")]
    folded = RunningVwap()
    assert folded.update_messages(first) is None
    ticks, _ = decode_messages(first)
    folded.update_batch(ticks)
    assert folded.update_messages(then) is not None
    reference = _reference(first + then)
    assert reference is not None
    _same(folded, reference[0])


decimals = st.builds(
    lambda whole, fraction: whole + ("." + fraction if fraction else ""),
    st.from_regex(r"[0-9]{1,9}", fullmatch=True),
    st.one_of(st.just(""), st.from_regex(r"[0-9]{1,9}", fullmatch=True)),
)
symbols = st.from_regex(r"[A-Za-z0-9_.\-/^=]{1,32}", fullmatch=True)
timestamps = st.integers(min_value=-62_135_596_800_000_000, max_value=253_402_300_799_999_999)


@given(
    st.lists(
        st.tuples(st.sampled_from(["AAPL", "MSFT", "X"]), decimals, decimals, timestamps),
        min_size=1,
        max_size=30,
    )
)
@FUZZ
def test_any_plain_numbers_and_times_fold_exactly_as_decoded(
    ticks: list[tuple[str, str, str, int]],
) -> None:
    messages = [_message(symbol, price, size, ts) for symbol, price, size, ts in ticks]
    reference = _reference(messages)
    vouched = _check(messages)
    # every price > 0 decodes, and the fold then takes it
    assert vouched == (reference is not None)


@given(
    st.lists(
        st.tuples(st.sampled_from(["AAPL", "MSFT"]), decimals, decimals, timestamps),
        min_size=2,
        max_size=40,
    ),
    st.lists(st.integers(min_value=1, max_value=39), max_size=6),
)
@FUZZ
def test_chunks_split_anywhere_add_up_as_decoded(
    ticks: list[tuple[str, str, str, int]], cuts: list[int]
) -> None:
    messages = [_message(symbol, price, size, ts) for symbol, price, size, ts in ticks]
    reference = _reference(messages)
    edges = sorted({0, len(messages), *(c for c in cuts if c < len(messages))})
    folded = RunningVwap()
    for start, end in itertools.pairwise(edges):
        chunk = messages[start:end]
        assert (folded.update_messages(chunk) is None) == (_reference(chunk) is None)
    if reference is not None:
        _same(folded, reference[0])


@given(symbols)
@FUZZ
def test_every_valid_symbol_is_taken(symbol: str) -> None:
    assert _check([_message(symbol)])


def _mutations(message: bytes) -> st.SearchStrategy[bytes]:
    positions = st.integers(min_value=0, max_value=len(message) - 1)
    replaced = st.builds(
        lambda i, b: message[:i] + bytes([b]) + message[i + 1 :], positions, st.integers(0, 255)
    )
    deleted = st.builds(lambda i: message[:i] + message[i + 1 :], positions)
    inserted = st.builds(
        lambda i, b: message[:i] + bytes([b]) + message[i:], positions, st.integers(0, 255)
    )
    return st.one_of(replaced, deleted, inserted)


GOOD = _message("BRK.B", price="187.25", size="100", bid="187.24", ask="187.26")


@given(_mutations(GOOD))
@FUZZ
@example(GOOD.replace(b'"version":1', b'"version":2'))
@example(GOOD.replace(b'"bid_price":"187.24"', b'"bid_price":"187.27"'))  # bid above ask
@example(GOOD.replace(b'"last_price":"187.25"', b'"last_price":"0.00"'))
@example(GOOD.replace(b"T14:30:00", b"T24:30:00"))
@example(GOOD.replace(b"T14:30:00", b"T14:30:60"))
@example(GOOD.replace(b'"sequence_number":1', b'"sequence_number":01'))
def test_a_mutated_message_is_declined_or_decoded_alike(mutant: bytes) -> None:
    _check([GOOD, mutant])


@pytest.mark.parametrize(
    "message",
    [
        _message(timestamp_us=T0_US).replace(b"2026-11-25", b"2026-02-29"),  # not a leap year
        _message(timestamp_us=T0_US).replace(b"2026-11-25", b"0000-11-25"),
        _message(exchange='X"Y'),  # an escaped quote
        _message(symbol="Ünïcode"),
        _message(seq=2**63 - 1).replace(b"9223372036854775807", b"9223372036854775808"),
        _message(price="1."),
        _message(price=".5"),
    ],
)
def test_what_the_fold_cannot_vouch_for_is_left_to_the_decoder(message: bytes) -> None:
    assert RunningVwap().update_messages([GOOD, message]) is None
    _check([GOOD, message])


async def test_the_handler_folds_a_chunk_and_returns_what_does_not_decode() -> None:
    handler = VwapHandler()
    bad = GOOD.replace(b'"version":1', b'"version":2')
    chunk = [_message(price="10"), bad, _message(price="20")]
    refused = await handler.handle_messages(0, 100, chunk)
    assert [offset for offset, _ in refused] == [101]
    assert "version" in refused[0][1]
    agg = handler.snapshot()["AAPL"]
    assert (agg.count, agg.vwap) == (2, 15)
    # the same chunk again (a retry) and a good one overlapping it: nothing counted twice
    await handler.handle_messages(0, 100, chunk)
    assert await handler.handle_messages(0, 102, [_message(price="20"), _message(price="30")]) == ()
    agg = handler.snapshot()["AAPL"]
    assert (agg.count, agg.high) == (3, 30)
    assert handler.figures()[1] == {"AAPL": "30"}


def test_the_timestamps_read_are_the_decoded_ones_or_none() -> None:
    messages = [frame_message(s, b) for s, b in MarketSimulator(10, seed=5).batch(200)]
    ticks, _ = decode_messages(messages)
    assert message_timestamps(messages) == [t.timestamp_us for t in ticks]
    assert message_timestamps([*messages, GOOD.replace(b'"version":1', b'"version":2')]) is None


async def test_every_symbol_handled_has_a_last_price_not_only_the_last_chunks() -> None:
    handler = VwapHandler()
    await handler.handle_messages(0, 0, [_message("AAPL", price="10"), _message("MSFT", "20")])
    await handler.handle_messages(0, 2, [_message("MSFT", price="21")])
    assert handler.figures()[1] == {"AAPL": "10", "MSFT": "21"}
