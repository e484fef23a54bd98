"""Helpers the integration tests share: read a stream's raw messages from the start, write raw
messages, publish numbered ticks of every symbol, wait for a condition, and the verdict of what
handlers saw."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from bench.verdict import Verdict, VerdictBuilder
from partitioning.codec import format_body
from partitioning.producer import Producer, ProducerConfig
from superticks.settings import ConnectionSettings
from superticks.streams import Chunk, Offset, PartitionPublisher, Subscription, encode_publish_frame
from workers.deadletter import read_dead_letter
from workers.handlers import CountingHandler


async def read_messages(
    connection: ConnectionSettings, stream: str, count: int, timeout_s: float = 30
) -> list[bytes]:
    """The first `count` messages of `stream` (AMQP 1.0 bytes), in offset order."""
    got: list[bytes] = []
    done = asyncio.Event()

    async def on_chunk(chunk: Chunk) -> None:
        got.extend(chunk.messages)
        if len(got) >= count:
            done.set()

    async with Subscription(connection, stream, on_chunk, Offset.first()):
        async with asyncio.timeout(timeout_s):
            await done.wait()
    return got


SYMBOLS = [f"S{i:02d}" for i in range(24)]
T0_US = 1_790_000_000_000_000


def ticks_of_every_symbol(first_seq: int, per_symbol: int) -> list[tuple[str, bytes]]:
    """`per_symbol` ticks of every symbol, sequence numbers from `first_seq`, interleaved."""
    out = []
    for seq in range(first_seq, first_seq + per_symbol):
        for n, symbol in enumerate(SYMBOLS):
            price = f"{100 + n}.{seq % 100:02d}"
            body = format_body(
                symbol, "XNAS", price, "10", price, "10", price, "5", str(seq * 5),
                T0_US + seq * 1000, seq,
            )  # fmt: skip
            out.append((symbol, body))
    return out


async def publish_ticks(connection: ConnectionSettings, super_stream: str, items: Any) -> None:
    config = ProducerConfig(connection=connection, super_stream=super_stream, name=super_stream)
    async with Producer(config) as producer:
        await producer.send_batch(items)
        await producer.flush(30)


async def eventually(check: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


def all_handled(handlers: Sequence[CountingHandler], per_symbol: int) -> bool:
    return sum(len(h) for h in handlers) == per_symbol * len(SYMBOLS)


def verdict(
    handlers: Sequence[CountingHandler], per_symbol: int, *, idempotent: bool = False
) -> Verdict:
    """Every tick seen once across `handlers`, in order per symbol. Each handler must have seen
    its partitions in offset order; their records are then merged in (partition, offset) order,
    the order of each symbol in its partition."""
    for handler in handlers:
        last: dict[int, int] = {}
        for _, _, partition, offset in handler.records:
            assert offset > last.get(partition, -1), f"partition {partition} out of offset order"
            last[partition] = offset
    builder = VerdictBuilder()
    for symbol in SYMBOLS:
        builder.expect(symbol, per_symbol)
    merged = sorted((r for h in handlers for r in h.records), key=lambda r: (r[2], r[3]))
    if idempotent:  # a sink keyed by (partition, offset) keeps the first of each
        merged = list({(r[2], r[3]): r for r in reversed(merged)}.values())[::-1]
    builder.observe_many((symbol, seq) for symbol, seq, _, _ in merged)
    return builder.result()


async def write_raw(connection: ConnectionSettings, stream: str, message: bytes) -> None:
    confirmed = asyncio.Event()
    publisher = PartitionPublisher(
        connection, stream, f"{stream}-raw", lambda _ids: confirmed.set(), print, print
    )
    last = await publisher.start()
    publisher.write(encode_publish_frame(0, [(last + 1, message)]))
    await publisher.drain()
    async with asyncio.timeout(10):
        await confirmed.wait()
    await publisher.stop()


async def read_dead_letters(
    connection: ConnectionSettings, stream: str, count: int
) -> list[dict[str, Any]]:
    return [read_dead_letter(m) for m in await read_messages(connection, stream, count, 10)]
