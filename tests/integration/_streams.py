"""Helpers the integration tests share: read a stream's raw messages from the start."""

from __future__ import annotations

import asyncio

from superticks.settings import ConnectionSettings
from superticks.streams import Chunk, Offset, Subscription


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
        await asyncio.wait_for(done.wait(), timeout_s)
    return got
