"""`superticks consume --count N` takes exactly N ticks, although the broker delivers whole
chunks (hundreds of ticks): the summary says N delivered, N received, N per symbol in all."""

from __future__ import annotations

import pytest

from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from superticks.cli.consume import consume
from superticks.settings import ConnectionSettings
from superticks.streams import Offset

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(60)]


@pytest.mark.parametrize("count", [1, 5, 1_500])
async def test_count_takes_exactly_that_many_ticks(
    connection: ConnectionSettings, super_stream: str, count: int
) -> None:
    config = ProducerConfig(connection=connection, super_stream=super_stream, name=super_stream)
    async with Producer(config) as producer:
        await producer.send_batch(MarketSimulator(20, seed=3).batch(3_000))
        await producer.flush(15)
    summary = await consume(
        connection, Offset.first(), super_stream=super_stream, count=count, progress=False
    )
    assert summary["delivered"] == count
    assert summary["received"] == count
    assert sum(summary["per_symbol"].values()) == count
