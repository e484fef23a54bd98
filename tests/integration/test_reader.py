"""A plain reader starts where it is told (first, last, next, an offset, a time), independent
of every other reader, and with symbols gets only those, mostly filtered by the broker."""

from __future__ import annotations

import asyncio
import time

import pytest

from partitioning.codec import Tick, decode_body
from partitioning.producer import Producer, ProducerConfig, group_by_symbol
from partitioning.simulator import MarketSimulator
from superticks.settings import ConnectionSettings
from superticks.streams import Admin, Offset
from workers.reader import TickReader

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(30)]

Key = tuple[str, int]  # (symbol, sequence number): one tick


class Collected:
    """An `on_ticks` that keeps what it is given, per partition, in call order."""

    def __init__(self) -> None:
        self.offsets: dict[str, list[int]] = {}
        self.calls: dict[str, list[list[int]]] = {}  # partition -> offsets of each call
        self.keys: list[Key] = []
        self._arrived = asyncio.Event()

    async def __call__(self, partition: str, offsets: list[int], ticks: list[Tick]) -> None:
        self.offsets.setdefault(partition, []).extend(offsets)
        self.calls.setdefault(partition, []).append(offsets)
        self.keys.extend((t.symbol, t.sequence_number) for t in ticks)
        self._arrived.set()

    async def until(self, count: int, timeout_s: float = 15.0) -> None:
        """Wait until `count` ticks arrived, then a little longer to catch any extra one."""
        async with asyncio.timeout(timeout_s):
            while len(self.keys) < count:
                self._arrived.clear()
                await self._arrived.wait()
        await asyncio.sleep(0.3)


@pytest.fixture
def simulator() -> MarketSimulator:
    return MarketSimulator(20, seed=11)


async def _publish(
    connection: ConnectionSettings,
    super_stream: str,
    items: list[tuple[str, bytes]],
    batch: int = 1_000,
) -> set[Key]:
    """Publish `items` in calls of `batch` (as a feed would send), confirmed at the end."""
    calls = [items[i : i + batch] for i in range(0, len(items), batch)]
    return await _publish_calls(connection, super_stream, calls, confirm_each=False)


async def _publish_calls(
    connection: ConnectionSettings,
    super_stream: str,
    calls: list[list[tuple[str, bytes]]],
    *,
    confirm_each: bool,
) -> set[Key]:
    """One `send_batch` per call, each confirmed before the next if `confirm_each`."""
    config = ProducerConfig(connection=connection, super_stream=super_stream, name=super_stream)
    async with Producer(config) as producer:
        for call in calls:
            await producer.send_batch(call)
            if confirm_each:
                await producer.flush(15)
        await producer.flush(15)
    return {(s, decode_body(b).sequence_number) for call in calls for s, b in call}


async def _ends(connection: ConnectionSettings, super_stream: str) -> dict[str, int]:
    """Partition -> one past its last offset."""
    async with Admin(connection) as admin:
        return {s: await admin.last_offset(s) + 1 for s in await admin.partitions(super_stream)}


async def test_first_reads_every_stored_tick_in_offset_order(
    connection: ConnectionSettings, super_stream: str, simulator: MarketSimulator
) -> None:
    sent = await _publish(connection, super_stream, simulator.batch(3_000))
    got = Collected()
    async with TickReader(connection, got, offset=Offset.first(), super_stream=super_stream):
        await got.until(len(sent))
    assert set(got.keys) == sent
    assert len(got.keys) == len(sent)
    ends = await _ends(connection, super_stream)
    assert got.offsets == {p: list(range(end)) for p, end in ends.items() if end}


async def test_last_reads_from_the_last_chunk_of_each_partition_on(
    connection: ConnectionSettings, super_stream: str, simulator: MarketSimulator
) -> None:
    await _publish(connection, super_stream, simulator.batch(2_000))
    await _publish(connection, super_stream, simulator.batch(600))
    everything = Collected()
    async with TickReader(connection, everything, offset=Offset.first(), super_stream=super_stream):
        await everything.until(2_600)
    last_chunk = {p: calls[-1][0] for p, calls in everything.calls.items()}
    ends = await _ends(connection, super_stream)

    got = Collected()
    expected = sum(ends[p] - start for p, start in last_chunk.items())
    async with TickReader(connection, got, offset=Offset.last(), super_stream=super_stream):
        await got.until(expected)
    assert got.offsets == {p: list(range(start, ends[p])) for p, start in last_chunk.items()}
    assert len(got.keys) < 2_600


async def test_next_reads_only_ticks_published_after_it_subscribed(
    connection: ConnectionSettings, super_stream: str, simulator: MarketSimulator
) -> None:
    await _publish(connection, super_stream, simulator.batch(1_000))
    got = Collected()
    async with TickReader(connection, got, offset=Offset.next(), super_stream=super_stream):
        later = await _publish(connection, super_stream, simulator.batch(500))
        await got.until(len(later))
    assert set(got.keys) == later
    assert len(got.keys) == len(later)


async def test_an_offset_reads_each_partition_from_that_offset(
    connection: ConnectionSettings, super_stream: str, simulator: MarketSimulator
) -> None:
    await _publish(connection, super_stream, simulator.batch(3_000))
    ends = await _ends(connection, super_stream)
    got = Collected()
    async with TickReader(connection, got, offset=Offset.at(100), super_stream=super_stream):
        await got.until(sum(max(0, end - 100) for end in ends.values()))
    assert got.offsets == {p: list(range(100, end)) for p, end in ends.items() if end > 100}


async def test_a_timestamp_reads_what_the_broker_stored_from_that_time_on(
    connection: ConnectionSettings, super_stream: str, simulator: MarketSimulator
) -> None:
    await _publish(connection, super_stream, simulator.batch(1_000))
    noted_ms = time.time_ns() // 1_000_000
    await asyncio.sleep(1.5)
    later = await _publish(connection, super_stream, simulator.batch(700))
    got = Collected()
    reader = TickReader(connection, got, offset=Offset.since(noted_ms), super_stream=super_stream)
    async with reader:
        await got.until(len(later))
    assert set(got.keys) == later
    assert len(got.keys) == len(later)


async def test_two_readers_each_read_every_tick_independently(
    connection: ConnectionSettings, super_stream: str, simulator: MarketSimulator
) -> None:
    sent = await _publish(connection, super_stream, simulator.batch(2_000))
    one, two = Collected(), Collected()
    async with (
        TickReader(connection, one, offset=Offset.first(), super_stream=super_stream, name="a"),
        TickReader(connection, two, offset=Offset.first(), super_stream=super_stream, name="b"),
    ):
        await asyncio.gather(one.until(len(sent)), two.until(len(sent)))
    assert set(one.keys) == set(two.keys) == sent
    assert len(one.keys) == len(two.keys) == len(sent)


async def test_symbols_deliver_only_those_symbols_and_the_broker_sends_far_fewer_messages(
    connection: ConnectionSettings, super_stream: str
) -> None:
    simulator = MarketSimulator(50, seed=3, zipf_s=0.0)
    items = simulator.batch(20_000)
    symbol = items[0][0]
    # each symbol's ticks in calls of their own, each confirmed before the next: no chunk holds
    # two symbols. (Interleaved calls grouped by the producer make chunks the broker sizes by
    # its own load, 32 to 2,000 ticks, holding 1 to 14 symbols: how much such a layout saves
    # depends on timing, not on the filter.)
    calls = [[(s, b) for b in bodies] for s, bodies in group_by_symbol(items).items()]
    sent = await _publish_calls(connection, super_stream, calls, confirm_each=True)
    wanted = {k for k in sent if k[0] == symbol}

    got = Collected()
    reader = TickReader(
        connection, got, offset=Offset.first(), super_stream=super_stream, symbols=[symbol]
    )
    async with reader:
        await got.until(len(wanted))
    assert got.keys == sorted(wanted, key=lambda k: k[1])  # only the symbol, in order
    assert len(reader.partitions) == 1
    ends = await _ends(connection, super_stream)
    partition_size = sum(ends[p] for p in reader.partitions)
    # the broker sent the symbol's chunks and skipped most others (a Bloom filter may let a
    # chunk of another symbol through now and then)
    assert reader.metrics.received < partition_size / 2
    assert reader.metrics.delivered == len(wanted)
