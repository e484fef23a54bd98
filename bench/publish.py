"""`superticks bench publish`: four ways to publish the same ticks, side by side, one run.

(a) superticks' producer: routes, frames and publishes the simulator's (symbol, body) pairs
    with per-message ids, confirms and re-send bookkeeping;
(b) the naive rstream way: `SuperStreamProducer.send` per message with an `AMQPMessage`;
(c) the seed article's way: pika (AMQP 0-9-1) publishing into a stream queue with confirms,
    one at a time;
(d) the ceiling: the same ticks as AMQP messages and publish frames encoded before timing,
    with per-message ids, written straight to the partition leaders (transport + broker only);
(e) the issue's limit row: the same pre-encoded messages in uncompressed sub-entry batches of
    100 straight to the partitions with rstream's `send_sub_entry` (not what superticks writes:
    the JS client cannot read sub-entry batches and deduplication needs per-message ids).
Every contender writes to a fresh super stream (or stream) that is deleted afterwards; the tick
bodies are generated before any timing starts. Rates are confirmed ticks per second.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from partitioning.codec import frame_message
from partitioning.model import StreamConfig
from partitioning.producer import Producer, ProducerConfig
from partitioning.router import Router
from partitioning.simulator import MarketSimulator
from partitioning.topology import create_topology, delete_topology
from superticks.settings import ConnectionSettings
from superticks.streams import (
    Admin,
    PartitionPublisher,
    encode_publish_frame,
    naive_rstream_publish,
    subentry_rstream_publish,
)

__all__ = ["PublishBench", "PublishRow", "run_publish_bench"]

MAX_IN_FLIGHT = 50_000


@dataclass(frozen=True, slots=True)
class PublishRow:
    name: str
    ticks: int
    seconds: float
    ticks_per_s: float


@dataclass(frozen=True, slots=True)
class PublishBench:
    rows: list[PublishRow]
    vs_naive: float  # superticks / naive rstream
    vs_ceiling: float  # superticks / pre-encoded per-message-id ceiling
    vs_subentry: float  # superticks / pre-encoded sub-entry batches

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row(name: str, ticks: int, seconds: float) -> PublishRow:
    return PublishRow(name, ticks, round(seconds, 3), round(ticks / seconds, 1))


async def _superticks(
    settings: ConnectionSettings, ss: str, items: list[tuple[str, bytes]]
) -> float:
    config = ProducerConfig(
        connection=settings, super_stream=ss, name=f"{ss}-a", max_in_flight=MAX_IN_FLIGHT
    )
    async with Producer(config) as producer:
        started = time.perf_counter()
        for i in range(0, len(items), 2000):
            await producer.send_batch(items[i : i + 2000])
        await producer.flush()
        return time.perf_counter() - started


async def _ceiling(settings: ConnectionSettings, ss: str, items: list[tuple[str, bytes]]) -> float:
    async with Admin(settings) as admin:
        streams = await admin.partitions(ss)
    router = Router(len(streams))
    per_partition: list[list[tuple[int, bytes]]] = [[] for _ in streams]
    for symbol, body in items:
        bucket = per_partition[router.route(symbol)]
        bucket.append((len(bucket) + 1, frame_message(symbol, body)))
    frames = [
        [encode_publish_frame(0, bucket[i : i + 1000]) for i in range(0, len(bucket), 1000)]
        for bucket in per_partition
    ]
    remaining = len(items)
    done = asyncio.Event()

    def confirmed(ids: list[int]) -> None:
        nonlocal remaining
        remaining -= len(ids)
        if remaining <= 0:
            done.set()

    links = [
        PartitionPublisher(settings, s, f"{s}-d", confirmed, lambda _e: None, lambda _w: None)
        for s in streams
    ]
    await asyncio.gather(*(link.start() for link in links))
    try:
        started = time.perf_counter()
        for i in range(max(len(f) for f in frames)):
            for link, fs in zip(links, frames, strict=True):
                if i < len(fs):
                    link.write(fs[i])
            await asyncio.gather(*(link.drain() for link in links))
        await asyncio.wait_for(done.wait(), 300)
        return time.perf_counter() - started
    finally:
        await asyncio.gather(*(link.stop() for link in links))


def _pika(settings: ConnectionSettings, stream: str, items: list[tuple[str, bytes]]) -> float:
    import pika

    params = pika.ConnectionParameters(
        host="localhost",
        port=5672,
        credentials=pika.PlainCredentials(settings.username, settings.password.get_secret_value()),
    )
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.queue_declare(stream, durable=True, arguments={"x-queue-type": "stream"})
        channel.confirm_delivery()
        started = time.perf_counter()
        for symbol, body in items:
            channel.basic_publish(
                "",
                stream,
                body,
                pika.BasicProperties(content_type="application/json", headers={"symbol": symbol}),
            )
        seconds = time.perf_counter() - started
        channel.queue_delete(stream)
        return seconds
    finally:
        connection.close()


async def run_publish_bench(
    settings: ConnectionSettings,
    *,
    count: int = 200_000,
    naive_count: int = 50_000,
    pika_count: int = 2_000,
    symbols: int = 200,
    seed: int = 0,
) -> PublishBench:
    items = MarketSimulator(symbols, seed=seed).batch(count)
    tag = uuid.uuid4().hex[:6]
    names = {k: f"bench-{tag}-{k}" for k in "abde"}
    for ss in names.values():
        await create_topology(settings, StreamConfig(super_stream=ss, partitions=3))
    try:
        rows = [_row("superticks producer", count, await _superticks(settings, names["a"], items))]
        naive = items[:naive_count]
        seconds = await naive_rstream_publish(settings, names["b"], naive)
        rows.append(_row("naive rstream send()", naive_count, seconds))
        pika_items = items[:pika_count]
        seconds = await asyncio.to_thread(_pika, settings, f"bench-{tag}-c", pika_items)
        rows.append(_row("pika into a stream queue", pika_count, seconds))
        seconds = await _ceiling(settings, names["d"], items)
        rows.append(_row("ceiling: pre-encoded, per-message ids", count, seconds))
        seconds = await subentry_rstream_publish(settings, _sub_entries(names["e"], items))
        rows.append(_row("limit: pre-encoded sub-entry batches", count, seconds))
    finally:
        for ss in names.values():
            await delete_topology(settings, ss)
    ours, naive_row, ceiling, subentry = rows[0], rows[1], rows[3], rows[4]
    return PublishBench(
        rows,
        vs_naive=round(ours.ticks_per_s / naive_row.ticks_per_s, 2),
        vs_ceiling=round(ours.ticks_per_s / ceiling.ticks_per_s, 2),
        vs_subentry=round(ours.ticks_per_s / subentry.ticks_per_s, 2),
    )


def _sub_entries(ss: str, items: list[tuple[str, bytes]]) -> dict[str, list[list[bytes]]]:
    """The ticks as AMQP messages per partition, in sub-entry batches of 100."""
    router = Router(3)
    per_partition: list[list[bytes]] = [[], [], []]
    for symbol, body in items:
        per_partition[router.route(symbol)].append(frame_message(symbol, body))
    return {
        f"{ss}-{i}": [msgs[j : j + 100] for j in range(0, len(msgs), 100)]
        for i, msgs in enumerate(per_partition)
    }
