"""`superticks bench consume`: one consumer reading the same stored ticks, side by side.

A fresh super stream (3 partitions) is filled with the simulator's ticks before any timing.
Then, one after the other, each contender reads all of them from the first offset:

(a) one superticks `GroupWorker` with the `vwap` handler: decode and validate every tick, fence
    offsets, keep a running VWAP per symbol, store offsets (what a worker really does);
(b) RbFly (another Python stream client, Cython codec) with `orjson.loads` per message, when it
    is installed (`uv sync --group compare`; it is GPL, so it is never a runtime dependency).

Rates are ticks per second from the first tick delivered to the last (connection set-up is not
counted), so the contenders compare on the steady state a long-running worker lives in.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from partitioning.codec import Tick
from partitioning.model import StreamConfig
from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from partitioning.topology import create_topology, delete_topology
from superticks.settings import ConnectionSettings
from superticks.streams import Admin
from workers.group import GroupWorker, WorkerConfig
from workers.handlers import VwapHandler

__all__ = ["ConsumeBench", "ConsumeRow", "run_consume_bench"]


@dataclass(frozen=True, slots=True)
class ConsumeRow:
    name: str
    ticks: int
    seconds: float
    ticks_per_s: float


@dataclass(frozen=True, slots=True)
class ConsumeBench:
    rows: list[ConsumeRow]
    vs_rbfly: float | None  # superticks worker / RbFly (None when RbFly is not installed)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row(name: str, ticks: int, seconds: float) -> ConsumeRow:
    return ConsumeRow(name, ticks, round(seconds, 3), round(ticks / seconds, 1))


class _TimedVwap(VwapHandler):
    """The vwap handler, noting when the first and the last tick arrived."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected
        self.seen = 0
        self.first = 0.0
        self.last = 0.0
        self.done = asyncio.Event()

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        if not self.seen:
            self.first = time.perf_counter()
        await super().handle_batch(partition, offsets, ticks)
        self.seen += len(ticks)
        if self.seen >= self.expected:
            self.last = time.perf_counter()
            self.done.set()


async def _worker(settings: ConnectionSettings, ss: str, count: int) -> float:
    handler = _TimedVwap(count)
    config = WorkerConfig(
        connection=settings,
        super_stream=ss,
        group=f"{ss}-bench",
        name="bench-worker",
        lag_interval_s=0,
        credits=16,
    )
    async with GroupWorker(config, handler):
        await asyncio.wait_for(handler.done.wait(), 300)
    return handler.last - handler.first


async def _rbfly(settings: ConnectionSettings, streams: list[str], count: int) -> float | None:
    import importlib

    import orjson

    try:
        rbs: Any = importlib.import_module("rbfly.streams")
    except ImportError:
        return None
    node = settings.nodes[0]
    password = settings.password.get_secret_value()
    uri = f"rabbitmq-stream://{settings.username}:{password}@{node.host}:{node.port}/"
    client = rbs.streams_client(uri)
    seen = 0
    first = last = 0.0
    done = asyncio.Event()

    async def read(stream: str) -> None:
        nonlocal seen, first, last
        async for message in client.subscribe(stream, offset=rbs.Offset.FIRST):
            if not seen:
                first = time.perf_counter()
            orjson.loads(message)
            seen += 1
            if seen >= count:
                last = time.perf_counter()
                done.set()
                return

    tasks = [asyncio.create_task(read(s)) for s in streams]
    try:
        await asyncio.wait_for(done.wait(), 300)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await client.disconnect()
    return last - first


async def run_consume_bench(
    settings: ConnectionSettings, *, count: int = 300_000, symbols: int = 200, seed: int = 0
) -> ConsumeBench:
    ss = f"bench-{uuid.uuid4().hex[:6]}-consume"
    config = StreamConfig(super_stream=ss, partitions=3)
    await create_topology(settings, config)
    try:
        items = MarketSimulator(symbols, seed=seed).batch(count)
        producer = ProducerConfig(connection=settings, super_stream=ss, name=f"{ss}-fill")
        async with Producer(producer) as p:
            await p.send_batch(items)
            await p.flush(120)
        seconds = await _worker(settings, ss, count)
        rows = [_row("superticks worker (decode+VWAP)", count, seconds)]
        rb = await _rbfly(settings, config.partition_names(), count)
        if rb is not None:
            rows.append(_row("RbFly consume (orjson.loads)", count, rb))
    finally:
        await delete_topology(settings, ss)
        async with Admin(settings) as admin:
            await admin.delete_stream(f"{ss}-dlq")  # the worker's dead-letter stream
    ratio = round(rows[0].ticks_per_s / rows[1].ticks_per_s, 2) if len(rows) > 1 else None
    return ConsumeBench(rows, ratio)
