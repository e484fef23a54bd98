"""The plain reader's pure rules: which partitions it reads with which filter values, how a
chunk becomes ticks (client-side post-filter, undecodable messages counted), its lifecycle
before it ever connected, the producer's stable grouping by symbol, and how `superticks
consume --offset` reads its argument."""

from __future__ import annotations

import argparse

import pytest

from partitioning.codec import format_body, frame_message
from partitioning.producer import group_by_symbol
from partitioning.router import partition_for
from superticks.cli.consume import parse_offset
from superticks.settings import ConnectionSettings
from superticks.streams import Offset
from workers.reader import ReaderMetrics, ReaderState, TickReader, decode_chunk, plan_partitions

PARTITIONS = ["s-0", "s-1", "s-2"]


def _message(symbol: str, seq: int = 0) -> bytes:
    body = format_body(
        symbol, "XNAS", "1.5", "1", "1.6", "1", "1.55", "1", "10", 1_790_000_000_000_000, seq
    )
    return frame_message(symbol, body)


async def _nothing(*_: object) -> None:
    return None


# --- plan_partitions --------------------------------------------------------------------------
def test_without_symbols_every_partition_is_read_unfiltered() -> None:
    assert plan_partitions(PARTITIONS, None) == {"s-0": None, "s-1": None, "s-2": None}


def test_with_symbols_only_their_partitions_are_read_filtered_by_their_own_symbols() -> None:
    symbols = ["AAPL", "MSFT", "GOOG", "TSLA", "IBM"]
    plan = plan_partitions(PARTITIONS, symbols)
    expected: dict[str, list[str]] = {}
    for symbol in sorted(symbols):
        expected.setdefault(PARTITIONS[partition_for(symbol, 3)], []).append(symbol)
    assert plan == {p: tuple(v) for p, v in expected.items()}


def test_no_symbols_at_all_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one symbol"):
        plan_partitions(PARTITIONS, [])


def test_an_empty_symbol_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        plan_partitions(PARTITIONS, ["AAPL", ""])


# --- decode_chunk -----------------------------------------------------------------------------
def test_a_chunk_decodes_to_its_ticks_numbered_from_its_first_offset() -> None:
    offsets, ticks, bad = decode_chunk(40, [_message("AAPL", 0), _message("MSFT", 1)], None)
    assert offsets == [40, 41]
    assert [t.symbol for t in ticks] == ["AAPL", "MSFT"]
    assert bad == 0


def test_post_filtering_keeps_only_the_wanted_symbols_with_their_offsets() -> None:
    messages = [_message("AAPL", 0), _message("MSFT", 0), _message("AAPL", 1)]
    offsets, ticks, _ = decode_chunk(7, messages, frozenset({"AAPL"}))
    assert offsets == [7, 9]
    assert [t.sequence_number for t in ticks] == [0, 1]


def test_a_message_that_is_not_a_tick_is_counted_and_skipped_not_fatal() -> None:
    offsets, ticks, bad = decode_chunk(0, [b"not amqp", _message("AAPL")], None)
    assert (offsets, len(ticks), bad) == ([1], 1, 1)


def test_a_bad_message_between_ticks_leaves_the_other_ticks_offsets_as_they_were() -> None:
    messages = [_message("AAPL", 0), _message("MSFT", 0), b"not amqp", _message("AAPL", 1)]
    offsets, ticks, bad = decode_chunk(10, messages, frozenset({"AAPL"}))
    assert offsets == [10, 13]
    assert [t.sequence_number for t in ticks] == [0, 1]
    assert bad == 1


def test_filtered_out_is_what_reached_the_client_but_was_not_delivered() -> None:
    metrics = ReaderMetrics(received=100, delivered=30, undecodable=2)
    assert metrics.filtered_out == 68


# --- lifecycle without a broker ---------------------------------------------------------------
def test_a_reader_with_bad_symbols_fails_when_made_not_when_started() -> None:
    with pytest.raises(ValueError, match="at least one symbol"):
        TickReader(ConnectionSettings(), _nothing, offset=Offset.first(), symbols=[])


async def test_stopping_a_reader_that_never_started_is_safe_twice() -> None:
    reader = TickReader(ConnectionSettings(), _nothing, offset=Offset.next())
    await reader.stop()
    await reader.stop()
    assert reader.state is ReaderState.STOPPED


async def test_a_stopped_reader_does_not_start() -> None:
    reader = TickReader(ConnectionSettings(), _nothing, offset=Offset.next())
    await reader.stop()
    with pytest.raises(RuntimeError, match="starts once"):
        await reader.start()


# --- the producer's grouping ------------------------------------------------------------------
def test_grouping_by_symbol_keeps_each_symbols_order_and_first_appearance_order() -> None:
    items = [("B", b"b0"), ("A", b"a0"), ("B", b"b1"), ("C", b"c0"), ("A", b"a1")]
    groups = group_by_symbol(items)
    assert list(groups) == ["B", "A", "C"]
    assert groups == {"B": [b"b0", b"b1"], "A": [b"a0", b"a1"], "C": [b"c0"]}


# --- `superticks consume --offset` ------------------------------------------------------------
@pytest.mark.parametrize("word", ["first", "last", "next"])
def test_offset_words_name_the_offset_kinds(word: str) -> None:
    assert parse_offset(word) == getattr(Offset, word)()


def test_an_integer_offset_is_that_offset_of_every_partition() -> None:
    assert parse_offset("1200") == Offset.at(1200)


def test_a_time_with_a_zone_is_the_broker_time_in_milliseconds() -> None:
    assert parse_offset("2026-11-25T14:30:00.250Z") == Offset.since(1_795_617_000_250)
    assert parse_offset("2026-11-25T15:30:00+01:00") == Offset.since(1_795_617_000_000)


@pytest.mark.parametrize("text", ["-1", "yesterday", "2026-11-25T14:30:00"])
def test_a_negative_offset_a_word_or_a_time_without_zone_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_offset(text)
