"""Replay returns exactly the stored ticks of a time range and symbols, the same every time."""

from __future__ import annotations

import pytest

from partitioning.codec import decode_body
from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from superticks.settings import ConnectionSettings
from workers.replay import replay_all, replay_symbols, replay_time_range

pytestmark = pytest.mark.cluster


@pytest.fixture
async def stored(
    connection: ConnectionSettings, unique: str, super_stream: str
) -> list[tuple[str, bytes]]:
    items = MarketSimulator(30, seed=7).batch(20_000)
    config = ProducerConfig(connection=connection, super_stream=unique, name=unique)
    async with Producer(config) as producer:
        await producer.send_batch(items)
        await producer.flush(30)
    return items


async def test_replay_all_returns_every_stored_tick_in_order(
    connection: ConnectionSettings, unique: str, stored: list[tuple[str, bytes]]
) -> None:
    result = await replay_all(connection, unique)
    assert result.read == result.kept == len(stored)
    for symbol in {s for s, _ in stored}:
        sequence = [t.sequence_number for t in result.get_data_for_symbol(symbol)]
        assert sequence == list(range(len(sequence)))


async def test_replay_of_a_time_range_and_symbols_returns_exactly_those_ticks(
    connection: ConnectionSettings, unique: str, stored: list[tuple[str, bytes]]
) -> None:
    ticks = [decode_body(body) for _, body in stored]
    start = ticks[5_000].timestamp_us
    end = ticks[12_000].timestamp_us
    wanted = {ticks[0].symbol, ticks[1].symbol}
    expected = {
        (t.symbol, t.sequence_number)
        for t in ticks
        if start <= t.timestamp_us < end and t.symbol in wanted
    }
    from workers.replay import replay

    result = await replay(connection, unique, start_us=start, end_us=end, symbols=wanted)
    got = {(t.symbol, t.sequence_number) for s in wanted for t in result.get_data_for_symbol(s)}
    assert got == expected
    assert result.kept == len(expected)


async def test_replaying_a_time_range_twice_gives_the_same_vwaps(
    connection: ConnectionSettings, unique: str, stored: list[tuple[str, bytes]]
) -> None:
    ticks = [decode_body(body) for _, body in stored]
    start, end = ticks[2_000].timestamp_us, ticks[9_000].timestamp_us
    first = await replay_time_range(connection, start, end, unique)
    second = await replay_time_range(connection, start, end, unique)
    assert first.vwap() == second.vwap()
    assert first.kept == 7_000


async def test_replay_of_symbols_reads_only_their_partitions(
    connection: ConnectionSettings, unique: str, stored: list[tuple[str, bytes]]
) -> None:
    symbol = stored[0][0]
    result = await replay_symbols(connection, [symbol], unique)
    assert len(result.end_offsets) == 1
    assert result.kept == sum(1 for s, _ in stored if s == symbol)
