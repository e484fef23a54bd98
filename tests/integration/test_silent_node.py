"""A node that accepts connections and answers nothing (paused, hung, or restarting behind the
port's proxy) costs a client a few seconds once, not `connect_timeout_s` on every connection:
its handshake times out early while other nodes may answer, it is then known to be silent, and
later connections try it last."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from partitioning.producer import Producer, ProducerConfig
from superticks.settings import ConnectionSettings, NodeAddress
from superticks.streams import Admin, Chunk, Offset, Subscription, is_silent

pytestmark = pytest.mark.cluster

PATIENCE_S = 30.0  # connect_timeout_s: what a silent node would cost without the rotation
# A handshake waits 1.5 s on a silent node while others may answer; without that, rstream's own
# 10 s request timeout (or connect_timeout_s) would pass first.
BOUND_S = 7.0


@dataclass
class SilentNode:
    address: NodeAddress
    accepted: int = 0
    held: list[asyncio.StreamWriter] = field(default_factory=list)


@pytest.fixture
async def silent_node() -> AsyncIterator[SilentNode]:
    """A TCP listener on 127.0.0.1 that accepts every connection and never says a word."""
    node = SilentNode(NodeAddress(host="127.0.0.1", port=1))

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        node.accepted += 1
        node.held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    node.address = NodeAddress(host="127.0.0.1", port=server.sockets[0].getsockname()[1])
    yield node
    server.close()
    for writer in node.held:
        writer.close()
    await server.wait_closed()


def _silent_first(connection: ConnectionSettings, node: SilentNode) -> ConnectionSettings:
    return connection.model_copy(
        update={"nodes": (node.address, *connection.nodes), "connect_timeout_s": PATIENCE_S}
    )


async def test_a_silent_node_costs_an_admin_connection_seconds_once_then_is_tried_last(
    connection: ConnectionSettings, silent_node: SilentNode
) -> None:
    settings = _silent_first(connection, silent_node)
    started = time.monotonic()
    async with Admin(settings) as admin:
        assert await admin.partitions("no-such-super-stream") == []
    assert time.monotonic() - started < BOUND_S
    assert silent_node.accepted == 1
    assert is_silent(silent_node.address)

    async with Admin(settings) as admin:  # the silent node is not tried first again
        assert await admin.partitions("no-such-super-stream") == []
    assert silent_node.accepted == 1


async def test_a_subscription_starts_and_reads_with_a_silent_first_node(
    connection: ConnectionSettings, stream: str, silent_node: SilentNode
) -> None:
    async with Producer(
        ProducerConfig(connection=connection, stream=stream, name=f"{stream}-feed")
    ) as producer:
        await (await producer.send_batch([("AAPL", b'{"n": 1}'), ("MSFT", b'{"n": 2}')]))

    got: list[Chunk] = []
    done = asyncio.Event()

    async def on_chunk(chunk: Chunk) -> None:
        got.append(chunk)
        if sum(len(c.messages) for c in got) >= 2:
            done.set()

    settings = _silent_first(connection, silent_node)
    started = time.monotonic()
    async with Subscription(settings, stream, on_chunk, Offset.first(), name="silent-test"):
        async with asyncio.timeout(PATIENCE_S):
            await done.wait()
    assert time.monotonic() - started < BOUND_S
    assert silent_node.accepted == 1


async def test_a_chunk_in_hand_after_this_process_was_frozen_is_not_delivered_but_resubscribed(
    connection: ConnectionSettings, stream: str
) -> None:
    settings = connection.model_copy(update={"heartbeat_s": 1})
    lost = asyncio.Event()
    events: list[str] = []

    async def on_chunk(chunk: Chunk) -> None:
        events.append(f"chunk {chunk.first_offset}")

    def on_lost() -> None:
        events.append("lost")
        lost.set()

    go, sent = threading.Event(), threading.Event()

    async def publish() -> None:  # in a thread of its own, with its own event loop
        config = ProducerConfig(connection=connection, stream=stream, name=f"{stream}-feed")
        async with Producer(config) as producer:
            await asyncio.to_thread(go.wait)
            await (await producer.send_batch([("AAPL", b'{"n": 1}')]))
            sent.set()

    feed = threading.Thread(target=lambda: asyncio.run(publish()))
    async with Subscription(
        settings, stream, on_chunk, Offset.first(), name="frozen", on_lost=on_lost
    ):
        feed.start()
        await asyncio.sleep(2.0)  # the feed's producer is up, waiting for `go`
        # This process's event loop stops for 3 heartbeats right as the other thread publishes:
        # the chunk reaches the subscription's socket while nothing here runs.
        go.set()
        time.sleep(3.0)  # noqa: ASYNC251 - on purpose: the event loop is frozen
        assert sent.is_set()
        async with asyncio.timeout(10):
            await lost.wait()
        for _ in range(100):  # subscribed again: the chunk comes, once
            if "chunk 0" in events:
                break
            await asyncio.sleep(0.1)
    feed.join()

    assert events == ["lost", "chunk 0"]
