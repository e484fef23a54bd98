"""The lag exporter against the cluster: it discovers groups from their stored offsets, reads
lag in ticks and exact lag in seconds, sees the broker's active consumer, refuses unknown names
and keeps answering when a node or a management API does not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from monitoring.exporter import GroupPartition, Monitor, MonitorConfig, render
from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from superticks.errors import ConfigError
from superticks.settings import ConnectionSettings, NodeAddress
from superticks.streams import Admin, ChunkProbe
from workers.group import GroupWorker, WorkerConfig
from workers.handlers import CountingHandler

pytestmark = pytest.mark.cluster

Monitors = Callable[[MonitorConfig], Monitor]


async def _publish(connection: ConnectionSettings, super_stream: str, count: int) -> None:
    config = ProducerConfig(connection=connection, super_stream=super_stream, name=super_stream)
    async with Producer(config) as producer:
        await producer.send_batch(MarketSimulator(20, seed=3).batch(count))
        await producer.flush(30)


@pytest.fixture
async def monitors() -> AsyncIterator[Callable[[MonitorConfig], Monitor]]:
    """`monitors(config)`: a Monitor polled by hand, stopped after the test."""
    made: list[Monitor] = []

    def make(config: MonitorConfig) -> Monitor:
        made.append(Monitor(config))
        return made[-1]

    yield make
    for monitor in made:
        await monitor.stop()


def _row(monitor: Monitor, group: str, index: int) -> GroupPartition:
    rows = [g for g in monitor.snapshot.groups if g.group == group and g.index == index]
    assert len(rows) == 1, monitor.snapshot.groups
    return rows[0]


@pytest.fixture
async def ends(connection: ConnectionSettings, super_stream: str) -> list[int]:
    """3,000 ticks published; the offset of each partition's last tick."""
    await _publish(connection, super_stream, 3_000)
    async with Admin(connection) as admin:
        probe = ChunkProbe(admin)
        lasts = [await probe.last(f"{super_stream}-{i}") for i in range(3)]
    assert all(h is not None for h in lasts)
    return [h.last_offset for h in lasts if h is not None]


async def test_a_group_is_discovered_with_its_lag_in_ticks_and_exact_lag_in_seconds(
    connection: ConnectionSettings, super_stream: str, ends: list[int], monitors: Monitors
) -> None:
    async with Admin(connection) as admin:
        await admin.store_offset(f"{super_stream}-0", "behind", 99)
        for i, end in enumerate(ends):
            await admin.store_offset(f"{super_stream}-{i}", "caught-up", end)
        first_unprocessed = await ChunkProbe(admin).at(f"{super_stream}-0", 100)
    assert first_unprocessed is not None
    await asyncio.sleep(0.5)  # offset-tracking writes are asynchronous
    monitor = monitors(MonitorConfig(connection=connection, super_streams=(super_stream,)))
    before = time.time()
    await monitor.poll()
    after = time.time()
    behind = _row(monitor, "behind", 0)
    assert behind.stored == 99
    assert behind.lag_ticks == ends[0] - 99  # tracking records come after the last tick
    assert behind.lag_seconds is not None
    stored_at = first_unprocessed.timestamp_ms / 1000
    assert before - stored_at - 0.01 <= behind.lag_seconds <= after - stored_at + 0.01
    for i in range(3):
        caught_up = _row(monitor, "caught-up", i)
        assert (caught_up.lag_ticks, caught_up.lag_seconds) == (0, 0.0)
    ends_seen = {p.index: p.end_offset for p in monitor.snapshot.partitions}
    assert ends_seen == dict(enumerate(ends))
    assert monitor.snapshot.sources["stream"].up
    assert monitor.snapshot.sources["management"].up
    labels = f'group="behind",partition="0",super_stream="{super_stream}"'
    assert f"superticks_group_lag_ticks{{{labels}}} {ends[0] - 99}.0" in render(monitor)


async def test_the_active_consumer_and_unconsumed_partitions_come_from_the_broker(
    connection: ConnectionSettings,
    super_stream: str,
    ends: list[int],
    unique: str,
    monitors: Monitors,
) -> None:
    config = WorkerConfig(connection=connection, super_stream=super_stream, group=unique, name="w1")
    monitor = monitors(MonitorConfig(connection=connection, super_streams=(super_stream,)))
    async with GroupWorker(config, CountingHandler()):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            await monitor.poll()
            rows = [g for g in monitor.snapshot.groups if g.group == unique]
            if len(rows) == 3 and all(r.lag_ticks == 0 and r.unconsumed is False for r in rows):
                break
            await asyncio.sleep(0.5)
        assert [(r.lag_ticks, r.unconsumed, r.consumers) for r in rows] == [(0, False, 1)] * 3
        assert all(r.active_consumer for r in rows)
    await monitor.poll()
    rows = [g for g in monitor.snapshot.groups if g.group == unique]
    assert [(r.unconsumed, r.active_consumer) for r in rows] == [(True, None)] * 3


async def test_unknown_super_stream_or_group_names_are_refused(
    connection: ConnectionSettings, super_stream: str, ends: list[int], monitors: Monitors
) -> None:
    nope = monitors(MonitorConfig(connection=connection, super_streams=(f"{super_stream}-nope",)))
    with pytest.raises(ConfigError, match="unknown super stream"):
        await nope.check_names()
    nobody = monitors(
        MonitorConfig(connection=connection, super_streams=(super_stream,), groups=("nobody",))
    )
    with pytest.raises(ConfigError, match="unknown group"):
        await nobody.check_names()


async def test_a_dead_node_or_management_api_is_skipped(
    connection: ConnectionSettings, super_stream: str, ends: list[int], monitors: Monitors
) -> None:
    async with Admin(connection) as admin:
        await admin.store_offset(f"{super_stream}-1", "g", 10)
    await asyncio.sleep(0.5)
    dead_first = connection.model_copy(
        update={"nodes": (NodeAddress(host="127.0.0.1", port=1), *connection.nodes)}
    )
    monitor = monitors(
        MonitorConfig(
            connection=dead_first,
            super_streams=(super_stream,),
            management_urls=("http://127.0.0.1:1", "http://127.0.0.1:15673"),
        )
    )
    await monitor.poll()
    assert _row(monitor, "g", 1).lag_ticks == ends[1] - 10
    assert {s: h.up for s, h in monitor.snapshot.sources.items()} == {
        "stream": True,
        "management": True,
    }
