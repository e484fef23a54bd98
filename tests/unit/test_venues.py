"""Venues merged: the aggregated tick's wire form and the consolidated best bid and offer."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from partitioning.codec import (
    data_header,
    decode_message,
    decode_messages,
    format_body,
    frame_message,
    message_prefix_with,
    reframe_with,
    split_message,
)
from superticks.histogram import LatencyHistogram
from superticks.settings import ConnectionSettings
from trading import venues
from trading.venues import Bbo, BboHandler, Quote, VenueHandler, consolidate, venue_stream

BODY = format_body(
    "AAPL", "NYSE", "187.24", "300", "187.26", "200", "187.25", "100", "123400",
    1_795_617_000_000_123, 42,
)  # fmt: skip

# properties (content-type) and application-properties {symbol, schema_version, venue,
# received_at}: the tick layout with two more string pairs
AGGREGATED_HEAD = bytes.fromhex(
    "005373c01907404040404040a3106170706c69636174696f6e2f6a736f6e"
    "005374c15908a10673796d626f6ca1044141504ca10e736368656d615f76657273696f6ea10131"
    "a10576656e7565a1044e595345"
    "a10b72656365697665645f6174a11b323032362d31312d32355431343a33303a30302e3030303132335a"
)
RECEIVED = "2026-11-25T14:30:00.000123Z"


def aggregated(body: bytes = BODY) -> bytes:
    prefix = message_prefix_with("AAPL", (("venue", "NYSE"), ("received_at", RECEIVED)))
    return prefix + data_header(len(body)) + body


def test_an_aggregated_tick_is_pinned_byte_for_byte() -> None:
    assert aggregated() == AGGREGATED_HEAD + data_header(len(BODY)) + BODY


def test_an_aggregated_tick_carries_venue_and_received_at_as_string_properties() -> None:
    properties, body = split_message(aggregated())
    assert properties == {
        "symbol": "AAPL",
        "schema_version": "1",
        "venue": "NYSE",
        "received_at": RECEIVED,
    }
    assert body == BODY


def test_readers_of_plain_ticks_read_an_aggregated_tick_unchanged() -> None:
    tick = decode_message(aggregated())
    assert (tick.symbol, tick.exchange, tick.sequence_number) == ("AAPL", "NYSE", 42)
    ticks, errors = decode_messages([aggregated(), aggregated()])
    assert errors == []
    assert [t.sequence_number for t in ticks] == [42, 42]


EXTRA = (("venue", "NYSE"), ("received_at", RECEIVED))


def test_the_aggregator_reframes_our_own_layout_without_decoding() -> None:
    items, others = reframe_with([frame_message("AAPL", BODY)] * 2, EXTRA, number_from=7)
    assert items == [(7, "AAPL", aggregated()), (8, "AAPL", aggregated())]
    assert others == []


def test_a_long_body_and_a_changing_received_at_are_reframed_too() -> None:
    long_body = BODY.replace(b'"NYSE"', b'"' + b"N" * 300 + b'"')  # vbin32 data section
    later = (("venue", "NYSE"), ("received_at", "2026-11-25T14:30:00.000999Z"))
    for extra in (EXTRA, later, (("venue", "NYSE"),), ()):
        items, _ = reframe_with([frame_message("AAPL", long_body)], extra)
        expected = message_prefix_with("AAPL", extra) + data_header(len(long_body)) + long_body
        assert items == [(0, "AAPL", expected)]


def test_messages_of_another_layout_are_left_to_the_caller() -> None:
    ours = frame_message("AAPL", BODY)
    with_header = bytes.fromhex("005370c00201") + ours  # a header section first
    truncated = ours[:-1]
    trailing = ours + bytes.fromhex("005378c10100")  # a footer after the body
    items, others = reframe_with([with_header, ours, truncated, trailing, b"x"], EXTRA)
    assert [number for number, _, _ in items] == [1]
    assert others == [0, 2, 3, 4]


def test_a_venue_feed_lives_in_its_own_super_stream() -> None:
    assert venue_stream("NASDAQ") == "market_data_nasdaq"


def q(venue: str, bid: str, bid_size: str, ask: str, ask_size: str) -> Quote:
    return Quote(venue, Decimal(bid), Decimal(bid_size), Decimal(ask), Decimal(ask_size), 0)


BBO_VECTORS = [
    pytest.param(
        [q("NYSE", "10.00", "100", "10.02", "200")],
        Bbo("X", Decimal("10.00"), Decimal(100), ("NYSE",), Decimal("10.02"), Decimal(200),
            ("NYSE",)),
        id="one venue",
    ),
    pytest.param(
        [
            q("NYSE", "10.00", "100", "10.03", "200"),
            q("NASDAQ", "10.01", "300", "10.02", "100"),
            q("CBOE", "10.01", "200", "10.04", "500"),
        ],
        Bbo("X", Decimal("10.01"), Decimal(500), ("CBOE", "NASDAQ"), Decimal("10.02"),
            Decimal(100), ("NASDAQ",)),
        id="best of each side, sizes at the best summed",
    ),
    pytest.param(
        [q("NYSE", "10.05", "100", "10.06", "100"), q("CBOE", "10.00", "100", "10.04", "100")],
        Bbo("X", Decimal("10.05"), Decimal(100), ("NYSE",), Decimal("10.04"), Decimal(100),
            ("CBOE",)),
        id="crossed across venues",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("quotes", "expected"), BBO_VECTORS)
def test_the_consolidated_best_bid_and_offer(quotes: list[Quote], expected: Bbo) -> None:
    assert consolidate("X", quotes) == expected


def test_crossed_and_locked() -> None:
    crossed = consolidate("X", BBO_VECTORS[2].values[0])  # type: ignore[arg-type]
    assert crossed is not None
    assert crossed.crossed
    assert not crossed.locked
    assert consolidate("X", []) is None


async def test_the_bbo_handler_keeps_the_latest_quote_per_venue() -> None:
    handler = BboHandler()
    first = decode_message(aggregated())
    better = decode_message(
        aggregated(BODY.replace(b'"NYSE"', b'"CBOE"').replace(b'"187.24"', b'"187.25"'))
    )
    worse = decode_message(aggregated(BODY.replace(b'"187.24"', b'"187.20"')))
    await handler.handle_batch(0, [0, 1, 2], [first, better, worse])
    bbo = handler.best["AAPL"]
    assert (bbo.bid, bbo.bid_venues) == (Decimal("187.25"), ("CBOE",))
    assert bbo.ask_venues == ("CBOE", "NYSE")


class SlowStartProducer:
    """A producer whose start takes a while (as on a loaded machine), counting starts."""

    starts = 0
    overlapping = 0
    most_overlapping = 0

    def __init__(self, config: Any) -> None:
        self.config = config

    async def start(self) -> None:
        cls = SlowStartProducer
        cls.starts += 1
        cls.overlapping += 1
        cls.most_overlapping = max(cls.most_overlapping, cls.overlapping)
        try:
            await asyncio.sleep(0.05)
        finally:
            cls.overlapping -= 1

    async def send_with_ids(self, items: Any) -> asyncio.Future[None]:
        confirm = asyncio.get_running_loop().create_future()
        confirm.set_result(None)
        return confirm

    async def stop(self) -> None:
        pass


async def test_the_aggregator_starts_the_producers_of_its_source_partitions_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(venues, "Producer", SlowStartProducer)
    monkeypatch.setattr(SlowStartProducer, "starts", 0)
    monkeypatch.setattr(SlowStartProducer, "most_overlapping", 0)
    handler = VenueHandler(ConnectionSettings(), "NYSE")
    chunk = [frame_message("AAPL", BODY)]
    await asyncio.gather(*(handler.handle_messages(p, 0, chunk) for p in (0, 1, 2, 0)))
    assert SlowStartProducer.most_overlapping == 3  # not one partition after another
    assert SlowStartProducer.starts == 3  # one producer per source partition
    assert handler.forwarded == 4
    await handler.close()


@pytest.fixture
def slow_producers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(venues, "Producer", SlowStartProducer)
    monkeypatch.setattr(SlowStartProducer, "starts", 0)
    monkeypatch.setattr(SlowStartProducer, "overlapping", 0)


@pytest.mark.usefixtures("slow_producers")
async def test_the_aggregator_starts_a_partitions_producer_when_the_partition_is_assigned() -> None:
    handler = VenueHandler(ConnectionSettings(), "NYSE")

    await handler.partition_assigned(1)  # returns at once: the start goes on in the background
    await asyncio.sleep(0.1)  # a start takes 0.05 s
    assert SlowStartProducer.starts == 1  # before any chunk
    await handler.handle_messages(1, 0, [frame_message("AAPL", BODY)])

    assert SlowStartProducer.starts == 1  # the first chunk found it started
    await asyncio.sleep(0)  # the confirm's callback
    assert handler.forwarded == 1
    await handler.close()


@pytest.mark.usefixtures("slow_producers")
async def test_a_partition_released_while_its_producer_starts_keeps_no_producer() -> None:
    handler = VenueHandler(ConnectionSettings(), "NYSE")
    await handler.partition_assigned(1)
    await asyncio.sleep(0)  # the start is under way

    await handler.partition_released(1)

    assert SlowStartProducer.overlapping == 0  # the start was cancelled
    assert handler._producers == {}
    await handler.close()


@pytest.mark.usefixtures("slow_producers")
async def test_the_aggregators_lag_counts_every_confirmed_chunk_with_no_sample_cap() -> None:
    handler = VenueHandler(ConnectionSettings(), "NYSE")
    handler.lag.record(0.5, count=1_000_000)  # as after ~20 minutes at 90,000 ticks/s
    handler.forward.record(0.1, count=1_000_000)
    tick = frame_message("AAPL", BODY)  # stamped days ago: its lag is counted as an hour

    for offset in range(3):
        await handler.handle_messages(0, offset, [tick])
    await asyncio.sleep(0)  # the confirms' callbacks

    lag = venues.quantiles([handler.lag])
    forward = venues.quantiles([handler.forward])
    assert (lag["count"], forward["count"]) == (1_000_003, 1_000_003)
    assert lag["p50"] == pytest.approx(0.5, rel=1e-3)
    assert lag["max"] == 3600.0  # the three chunks moved it
    await handler.close()


def test_the_aggregators_quantiles_merge_every_venue_and_say_none_when_empty() -> None:
    nyse, cboe = LatencyHistogram(), LatencyHistogram()
    nyse.record(0.010, count=98)
    cboe.record(2.0, count=2)

    assert venues.quantiles([nyse, cboe]) == {"p50": 0.01, "p99": 2.0, "max": 2.0, "count": 100}
    assert venues.quantiles([]) == {"p50": None, "p99": None, "max": None, "count": 0}
