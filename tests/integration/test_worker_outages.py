"""Workers, readers and the producer ride out node outages: any one node down at start, the
whole cluster gone for a while, offsets that cannot be stored, and a poison pill too large to
dead-letter whole."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from _streams import (
    SYMBOLS,
    all_handled,
    eventually,
    publish_ticks,
    read_dead_letters,
    ticks_of_every_symbol,
    verdict,
    write_raw,
)

from cluster import Cluster, chaos
from cluster.node import NODES
from partitioning.producer import Producer, ProducerConfig
from superticks import streams
from superticks.errors import ConnectionFailed
from superticks.settings import ConnectionSettings, NodeAddress
from superticks.streams import Admin, Offset
from workers.deadletter import MAX_ORIGINAL_BYTES
from workers.group import GroupWorker, WorkerConfig, WorkerState
from workers.handlers import CountingHandler
from workers.reader import TickReader

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]


def _config(connection: ConnectionSettings, super_stream: str, **overrides: Any) -> WorkerConfig:
    return WorkerConfig(
        connection=connection,
        super_stream=super_stream,
        group=f"{super_stream}-g",
        name=overrides.pop("name", "w"),
        lag_interval_s=0,
        **overrides,
    )


def _first_at(connection: ConnectionSettings, node: str) -> ConnectionSettings:
    """`connection` with `node`'s address first, which a new connection then tries first:
    what earlier tests taught the adapter about these nodes (one that failed, one that was
    silent) is forgotten."""
    port = next(n.stream_port for n in NODES if n.name == node)
    at = next(a for a in connection.nodes if a.port == port)
    settings = connection.model_copy(
        update={"nodes": (at, *(a for a in connection.nodes if a != at))}
    )
    streams.forget_nodes(settings)
    return settings


@contextlib.asynccontextmanager
async def _node_down(cluster: Cluster, name: str) -> AsyncIterator[None]:
    """`name` killed for the block; started again (and the cluster whole) afterwards."""
    chaos.kill(cluster, name)
    try:
        yield
    finally:
        await asyncio.to_thread(chaos.restart, cluster, name)


@pytest.mark.chaos
@pytest.mark.parametrize("down", [n.name for n in NODES])
async def test_with_any_node_down_a_new_worker_joins_and_a_reader_reads(
    down: str, connection: ConnectionSettings, super_stream: str, cluster: Cluster
) -> None:
    # the dead node first in the list, as rabbit1 is first in the default SUPERTICKS_NODES
    dead = next(n for n in NODES if n.name == down)
    first = NodeAddress(host="localhost", port=dead.stream_port)
    nodes = (first, *(a for a in connection.nodes if a != first))
    settings = connection.model_copy(update={"nodes": nodes})
    await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 20))
    async with _node_down(cluster, down):
        async with Admin(settings) as admin:  # `topology describe` answers
            assert len(await admin.partitions(super_stream)) == 3
        handler = CountingHandler()
        async with GroupWorker(_config(settings, super_stream), handler) as worker:
            await eventually(partial_all(handler, 20), "the new worker handled what was stored")
            await publish_ticks(settings, super_stream, ticks_of_every_symbol(20, 20))
            await eventually(partial_all(handler, 40), "and what is published now", 60)
            assert worker.state is WorkerState.RUNNING
        read: list[int] = []

        async def on_ticks(_stream: str, offsets: list[int], _ticks: Any) -> None:
            read.extend(offsets)

        async with TickReader(settings, on_ticks, offset=Offset.first(), super_stream=super_stream):
            await eventually(lambda: len(read) == 40 * len(SYMBOLS), "`consume` reads all", 60)
    assert verdict([handler], 40).ok


def partial_all(handler: CountingHandler, per_symbol: int) -> Callable[[], bool]:
    return lambda: all_handled([handler], per_symbol)


@pytest.mark.chaos
@pytest.mark.long  # `make test` runs the all-nodes-restart scenario (worker processes, produce)
async def test_worker_and_producer_ride_out_the_whole_cluster_going_down(
    connection: ConnectionSettings, super_stream: str, cluster: Cluster
) -> None:
    handler = CountingHandler()
    config = ProducerConfig(connection=connection, super_stream=super_stream, name=super_stream)
    per_round = 5
    rounds = 40
    async with (
        GroupWorker(_config(connection, super_stream), handler) as worker,
        Producer(config) as producer,
    ):

        async def feed() -> None:
            for r in range(rounds):
                await producer.send_batch(ticks_of_every_symbol(r * per_round, per_round))
                await asyncio.sleep(0.1)
            await producer.flush(120)

        feeding = asyncio.create_task(feed())
        await eventually(lambda: len(handler) > 0, "the worker handles the feed")
        for node in NODES:
            chaos.kill(cluster, node.name)
        await asyncio.sleep(5)  # no cluster at all
        assert worker.state is WorkerState.RUNNING
        await asyncio.to_thread(chaos.start_all, cluster)
        await feeding
        await eventually(partial_all(handler, rounds * per_round), "every tick handled", 90)
        assert worker.state is WorkerState.RUNNING
    result = verdict([handler], rounds * per_round)
    assert result.ok, result.summary()  # once each: no worker crashed, so nothing twice


async def test_a_partition_whose_offsets_cannot_be_stored_is_not_handled_further(
    connection: ConnectionSettings, super_stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = CountingHandler()
    cfg = _config(connection, super_stream, max_unstored_ms=300)
    async with GroupWorker(cfg, handler) as worker:
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 10))
        await eventually(partial_all(handler, 10), "the first ticks are handled")
        admin = worker._admin
        real_store = admin.store_offset

        async def refused(*_: object) -> None:
            raise ConnectionFailed("injected: the node holding the offsets does not answer")

        monkeypatch.setattr(admin, "store_offset", refused)

        # The partitions are quiet with every offset stored, so the fence counts from their
        # next chunk: a feed spread over ~2 s is handled for 300 ms, then no more.
        async def feed() -> None:
            config = ProducerConfig(connection=connection, super_stream=super_stream, name="f")
            async with Producer(config) as producer:
                for first in range(10, 210, 10):
                    await producer.send_batch(ticks_of_every_symbol(first, 10))
                    await asyncio.sleep(0.1)
                await producer.flush(30)

        publishing = asyncio.create_task(feed())
        await asyncio.sleep(2)
        stuck = len(handler)
        await asyncio.sleep(1.5)
        assert len(handler) == stuck, "ticks were handled while no offset could be stored"
        assert stuck < 210 * len(SYMBOLS)
        monkeypatch.setattr(admin, "store_offset", real_store)
        await publishing
        await eventually(partial_all(handler, 210), "handling resumes once offsets store")
    assert verdict([handler], 210).ok


async def test_a_message_too_large_to_dead_letter_whole_is_dead_lettered_by_reference(
    connection: ConnectionSettings, super_stream: str
) -> None:
    handler = CountingHandler()
    huge = b"\x00Sw" + b"x" * 900_000  # not a tick, and over the frame limit once base64'd
    async with GroupWorker(_config(connection, super_stream), handler) as worker:
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 10))
        await eventually(partial_all(handler, 10), "the first ticks are handled")
        await write_raw(connection, f"{super_stream}-0", huge)
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(10, 10))
        await eventually(partial_all(handler, 20), "the partition goes on after it")
        assert worker.dead_letters == 1
    [letter] = await read_dead_letters(connection, f"{super_stream}-dlq", 1)
    assert letter["original_truncated"] is True
    assert letter["original_size"] == len(huge)
    assert letter["original"] == huge[:MAX_ORIGINAL_BYTES]
    assert letter["stream"] == f"{super_stream}-0"
    assert verdict([handler], 20).ok


@pytest.mark.chaos
async def test_a_store_frame_a_frozen_node_applies_late_does_not_set_the_offset_back(
    connection: ConnectionSettings,
    super_stream: str,
    cluster: Cluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # a store frame has no answer: one written to a node that froze waits in its socket buffer
    # and is applied when the node resumes (a worker that moved on to another node meanwhile
    # left it there); the worker active on the partition must store its offset again
    handler = CountingHandler()
    cfg = _config(connection, super_stream)
    async with GroupWorker(cfg, handler) as worker:
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 20))
        await eventually(partial_all(handler, 20), "the ticks are handled")
        part = max(worker._partitions, key=lambda p: p.processed)
        await eventually(lambda: part.stored == part.processed, "its offset is stored")
        confirmed = part.stored
        async with Admin(connection) as admin:
            leader = (await admin.info(part.stream)).leader
        frozen = next(n for n in NODES if not leader.endswith(f":{n.stream_port}"))
        only = (NodeAddress(host="localhost", port=frozen.stream_port),)
        async with Admin(connection.model_copy(update={"nodes": only})) as late:
            await asyncio.to_thread(chaos.pause, cluster, frozen.name)
            try:
                await late.store_offset(part.stream, cfg.group, 0)  # waits in the frozen node
                await asyncio.sleep(0.5)
            finally:
                await asyncio.to_thread(chaos.unpause, cluster, frozen.name)
            await eventually(
                lambda: "went back" in caplog.text, "the late store set the offset back", 20
            )
        async with Admin(connection) as admin:
            await eventually_stored(admin, part.stream, cfg.group, confirmed)
        assert worker.state is WorkerState.RUNNING


async def eventually_stored(admin: Admin, stream: str, group: str, at_least: int) -> None:
    stored: int | None = None
    for _ in range(50):
        stored = await admin.stored_offset(stream, group)
        if stored is not None and stored >= at_least:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"the group's offset on {stream} stayed at {stored}, behind {at_least}")


@pytest.mark.chaos
async def test_a_worker_stopped_while_its_admin_node_is_frozen_stores_through_another_node(
    connection: ConnectionSettings,
    new_super_stream: Callable[[int], Awaitable[str]],
    cluster: Cluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # SIGTERM while the node holding the worker's admin connection is frozen: the final stores
    # go through another node (tried again within the drain timeout), so the successor
    # handles nothing the stopped worker handled. The frozen node leads no partition (two
    # partitions, three nodes): where it leads one, no store can be made until it resumes.
    super_stream = await new_super_stream(2)
    async with Admin(connection) as admin:
        leaders = [(await admin.info(s)).leader for s in await admin.partitions(super_stream)]
    frozen = next(n for n in NODES if not any(x.endswith(f":{n.stream_port}") for x in leaders))
    settings = _first_at(connection, frozen.name)
    first, successor = CountingHandler(), CountingHandler()
    rounds = 0
    config = ProducerConfig(connection=connection, super_stream=super_stream, name=super_stream)
    async with Producer(config) as producer:
        worker = GroupWorker(_config(settings, super_stream, name="first"), first)
        await worker.start()
        try:
            assert worker._admin._node == 0, "the worker's admin is not on the node to freeze"
            await eventually(lambda: len(worker.active_partitions) == 2, "all partitions active")

            async def feed() -> None:
                nonlocal rounds
                while True:  # a tick per symbol every 20 ms; waits only for room
                    await producer.send_batch(ticks_of_every_symbol(rounds, 1))
                    rounds += 1
                    await asyncio.sleep(0.02)

            feeding = asyncio.create_task(feed())
            await eventually(lambda: len(first) > 10 * len(SYMBOLS), "the feed is handled")
            await asyncio.to_thread(chaos.pause, cluster, frozen.name)
            try:
                await asyncio.sleep(1.0)
                unstored = [p.index for p in worker._partitions if p.processed > p.stored]
                assert unstored, "no partition had handled ticks left to store: no fault"
                stopping = asyncio.create_task(worker.stop())
                await asyncio.sleep(8.0)  # while the worker stores through another node
            finally:
                await asyncio.to_thread(chaos.unpause, cluster, frozen.name)
            await stopping
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding
            await producer.flush(60)
        finally:
            await worker.stop()
    async with GroupWorker(_config(connection, super_stream, name="successor"), successor):
        await eventually(
            lambda: len(first) + len(successor) >= rounds * len(SYMBOLS), "every tick handled", 60
        )
    result = verdict([first, successor], rounds)
    assert result.ok, result.summary()  # a graceful stop: nothing handled twice
    assert "storing the offset failed" not in caplog.text


@pytest.mark.chaos
async def test_a_store_frame_a_frozen_node_holds_is_sealed_behind_the_confirmed_offset(
    connection: ConnectionSettings, stream: str, cluster: Cluster
) -> None:
    # A store frame has no answer: one written to a node that then froze is applied when the
    # node resumes, setting the offset back. `seal` writes the offset confirmed meanwhile
    # through another node behind it on the same connection, which the node applies last, even
    # when the connection was closed before the node resumed.
    async with Admin(connection) as admin:
        leader = (await admin.info(stream)).leader
    frozen = next(n for n in NODES if not leader.endswith(f":{n.stream_port}"))  # a replica
    sealed, unsealed = f"{stream}-sealed", f"{stream}-unsealed"
    admin = Admin(_first_at(connection, frozen.name))
    await admin.start()
    try:
        assert admin._node == 0, "the admin is not on the node to freeze"
        for reference in (sealed, unsealed):
            await admin.store_offset(stream, reference, 10)
        assert await admin.stored_offset(stream, unsealed) == 10  # the frames so far: applied
        await asyncio.to_thread(chaos.pause, cluster, frozen.name)
        try:
            for reference in (sealed, unsealed):
                await admin.store_offset(stream, reference, 20)  # held by the frozen node
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(1.0):
                    await admin.stored_offset(stream, sealed)
            await admin.reconnect(silent=True)  # another node; the frozen one's connection kept
            for reference in (sealed, unsealed):
                await admin.store_offset(stream, reference, 30)
                assert await admin.stored_offset(stream, reference) == 30
            # never below a held frame: 19 is not written behind the 20
            assert await admin.seal({(stream, sealed): 30, (stream, unsealed): 19}) == 1
            await admin.stop()  # before the node resumes
        finally:
            await asyncio.to_thread(chaos.unpause, cluster, frozen.name)
    finally:
        await admin.stop()

    async with Admin(connection) as reader:
        for _ in range(100):  # until the held frames are applied: the fault took effect
            if await reader.stored_offset(stream, unsealed) == 20:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # the seal, written after them, is applied after them
        seen = (
            await reader.stored_offset(stream, sealed),
            await reader.stored_offset(stream, unsealed),
        )
    assert seen == (30, 20), f"(sealed, unsealed) stored offsets after the node resumed: {seen}"
