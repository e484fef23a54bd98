"""`superticks bench monitor`: how long one poll of the lag exporter takes (target < 200 ms for
3 partitions x 10 groups).

Publishes `count` ticks into a fresh 3-partition super stream, stores offsets for `groups`
groups at different positions on every partition (so each group has a lag to measure), then
times `polls` polls of `monitoring.Monitor`. Between polls every group's stored offset moves
forward, so each poll reads a fresh chunk per group and partition for its lag in seconds (the
live case; a group that does not move costs nothing, its chunk time is cached). Reports the
poll durations and checks every group got a lag. The super stream is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from monitoring.exporter import Monitor, MonitorConfig
from partitioning.model import StreamConfig
from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from partitioning.topology import create_topology, delete_topology
from superticks.settings import ConnectionSettings
from superticks.streams import Admin, ChunkProbe

__all__ = ["MonitorBench", "run_monitor_bench"]


@dataclass(frozen=True, slots=True)
class MonitorBench:
    partitions: int
    groups: int
    polls: int
    first_poll_ms: float  # cold: discovers everything, reads every chunk
    poll_p50_ms: float
    poll_p95_ms: float
    poll_max_ms: float
    series_with_lag: int  # (group, partition) pairs with a lag in seconds in the last poll
    target_ms: float = 200.0

    @property
    def within_target(self) -> bool:
        return self.poll_p95_ms < self.target_ms

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "within_target": self.within_target}


async def run_monitor_bench(
    settings: ConnectionSettings, *, groups: int = 10, polls: int = 20, count: int = 60_000
) -> MonitorBench:
    name = f"bench-monitor-{uuid.uuid4().hex[:6]}"
    await create_topology(settings, StreamConfig(super_stream=name, partitions=3))
    try:
        config = ProducerConfig(connection=settings, super_stream=name, name=name)
        async with Producer(config) as producer:
            await producer.send_batch(MarketSimulator(200, seed=1).batch(count))
            await producer.flush(60)
        streams = [f"{name}-{i}" for i in range(3)]
        async with Admin(settings) as admin:
            probe = ChunkProbe(admin)
            ends = [(await probe.last(s)) for s in streams]
            last = [h.last_offset if h is not None else 0 for h in ends]

            async def store(step: int) -> None:
                for g in range(groups):
                    for s, end in zip(streams, last, strict=True):
                        at = min(end - 1, (end * (g + 1)) // (groups + 2) + step * 50)
                        await admin.store_offset(s, f"g{g}", at)

            await store(0)
            await asyncio.sleep(1.0)
            monitor = Monitor(MonitorConfig(connection=settings, super_streams=(name,)))
            try:
                started = time.perf_counter()
                await monitor.poll()
                first = (time.perf_counter() - started) * 1000
                durations = []
                for step in range(1, polls + 1):
                    await store(step)
                    await asyncio.sleep(0.3)
                    started = time.perf_counter()
                    snapshot = await monitor.poll()
                    durations.append((time.perf_counter() - started) * 1000)
            finally:
                await monitor.stop()
        with_lag = sum(1 for g in snapshot.groups if g.lag_seconds and g.lag_seconds > 0)
        durations.sort()
        return MonitorBench(
            partitions=3,
            groups=groups,
            polls=polls,
            first_poll_ms=round(first, 1),
            poll_p50_ms=round(statistics.median(durations), 1),
            poll_p95_ms=round(durations[max(0, int(len(durations) * 0.95) - 1)], 1),
            poll_max_ms=round(durations[-1], 1),
            series_with_lag=with_lag,
        )
    finally:
        await delete_topology(settings, name)
