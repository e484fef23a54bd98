"""`superticks bench filter`: what server-side stream filtering saves a one-symbol reader.

Publishes `count` ticks of `symbols` equally active symbols with superticks' producer (which
groups each batch's ticks by symbol) into a fresh super stream, then reads one symbol from the
start twice with `TickReader`: without server-side filtering (the broker sends every chunk of
the symbol's partition; the client drops the other symbols) and with it (the broker sends only
chunks whose Bloom filter may hold the symbol). Both deliver exactly the symbol's ticks; the
bench reports how many messages reached the client in each case, and the saving. The super
stream is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from partitioning.codec import Tick
from partitioning.model import StreamConfig
from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from partitioning.topology import create_topology, delete_topology
from superticks.settings import ConnectionSettings
from superticks.streams import Admin, Offset
from workers.reader import ReaderMetrics, TickReader

__all__ = ["FilterBench", "FilterRead", "run_filter_bench"]


@dataclass(frozen=True, slots=True)
class FilterRead:
    name: str
    received: int  # messages that reached the client
    delivered: int  # the symbol's ticks handed on
    chunks: int
    seconds: float


@dataclass(frozen=True, slots=True)
class FilterBench:
    ticks: int  # published, all partitions
    symbols: int
    batch: int  # ticks per send_batch call
    symbol: str
    partition_ticks: int  # ticks in the symbol's partition
    matching: int  # the symbol's ticks
    reads: list[FilterRead]
    saving: float  # 1 - received(filtered) / received(unfiltered)
    received_share: float  # received(filtered) / partition_ticks
    ideal_share: float  # matching / partition_ticks: a perfect filter

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def _read(
    settings: ConnectionSettings,
    super_stream: str,
    symbol: str,
    *,
    server_filter: bool,
    matching: int,
    partition_end: int,
    timeout_s: float,
) -> FilterRead:
    """Read `symbol` from the first offset until its `matching` ticks arrived and (unfiltered)
    the whole partition was received, or (filtered) nothing more came for half a second."""

    async def on_ticks(_partition: str, _offsets: list[int], _ticks: list[Tick]) -> None:
        return None

    def done(metrics: ReaderMetrics) -> bool:
        if metrics.delivered < matching:
            return False
        return server_filter or sum(metrics.next_offsets.values()) >= partition_end

    reader = TickReader(
        settings,
        on_ticks,
        offset=Offset.first(),
        super_stream=super_stream,
        symbols=[symbol],
        server_filter=server_filter,
        name=f"bench-filter-{'on' if server_filter else 'off'}",
        initial_credit=8,
    )
    started = time.perf_counter()
    async with reader, asyncio.timeout(timeout_s):
        while not done(reader.metrics):  # polled: the last chunks may hold none of `symbol`
            if reader.failure is not None:
                raise reader.failure
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
        if server_filter:  # a trailing chunk the Bloom filter let through still counts
            await asyncio.sleep(0.5)
    m = reader.metrics
    name = "server-side filter + client filter" if server_filter else "client filter only"
    return FilterRead(name, m.received, m.delivered, m.chunks, round(seconds, 3))


async def run_filter_bench(
    settings: ConnectionSettings,
    *,
    count: int = 100_000,
    symbols: int = 50,
    batch: int = 2_000,
    seed: int = 0,
    timeout_s: float = 120.0,
) -> FilterBench:
    items = MarketSimulator(symbols, seed=seed, zipf_s=0.0).batch(count)
    symbol = items[0][0]
    matching = sum(1 for s, _ in items if s == symbol)
    super_stream = f"bench-filter-{uuid.uuid4().hex[:6]}"
    await create_topology(settings, StreamConfig(super_stream=super_stream, partitions=3))
    try:
        config = ProducerConfig(connection=settings, super_stream=super_stream, name=super_stream)
        async with Producer(config) as producer:
            partition = producer.partition_for(symbol)
            for i in range(0, count, batch):
                await producer.send_batch(items[i : i + batch])
            await producer.flush(timeout_s)
        async with Admin(settings) as admin:
            stream = (await admin.partitions(super_stream))[partition]
            partition_end = await admin.last_offset(stream) + 1
        reads = [
            await _read(
                settings,
                super_stream,
                symbol,
                server_filter=server_filter,
                matching=matching,
                partition_end=partition_end,
                timeout_s=timeout_s,
            )
            for server_filter in (False, True)
        ]
    finally:
        await delete_topology(settings, super_stream)
    unfiltered, filtered = reads
    return FilterBench(
        ticks=count,
        symbols=symbols,
        batch=batch,
        symbol=symbol,
        partition_ticks=partition_end,
        matching=matching,
        reads=reads,
        saving=round(1 - filtered.received / max(1, unfiltered.received), 4),
        received_share=round(filtered.received / max(1, partition_end), 4),
        ideal_share=round(matching / max(1, partition_end), 4),
    )
