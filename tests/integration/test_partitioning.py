"""The producer side on the real cluster: topology declared once, every tick stored once in its
symbol's partition and in order, also across a killed node, and backpressure when the cluster
stops answering."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest

import cluster as cl
from bench.verdict import Verdict, VerdictBuilder
from cluster.management import ManagementClient
from partitioning.codec import Tick, decode_message, format_body, frame_message
from partitioning.model import StreamConfig
from partitioning.producer import Producer, ProducerConfig
from partitioning.router import partition_for
from partitioning.topology import create_topology, delete_topology, describe_topology
from superticks.errors import StreamError, TopologyMismatch
from superticks.settings import ConnectionSettings, NodeAddress
from superticks.streams import Admin, Chunk, Offset, PartitionPublisher, Subscription
from workers.reader import TickReader
from workers.replay import replay

pytestmark = pytest.mark.cluster

SYMBOLS = [f"SYM{i}" for i in range(50)] + ["BRK.B", "トヨタ", "Nestlé"]


def _ticks(count: int) -> Iterator[tuple[str, bytes]]:
    seq = dict.fromkeys(SYMBOLS, 0)
    for i in range(count):
        symbol = SYMBOLS[(i * 7) % len(SYMBOLS)]
        n = seq[symbol]
        seq[symbol] = n + 1
        body = format_body(
            symbol,
            "NYSE",
            "100.00",
            "100",
            "100.02",
            "200",
            "100.01",
            "100",
            str(n * 100),
            1_764_072_000_000_000 + i,
            n,
        )
        yield symbol, body


async def _read_back(
    connection: ConnectionSettings, super_stream: str, items: list[tuple[str, bytes]]
) -> tuple[Verdict, dict[str, set[int]]]:
    """Read every partition from the start; judge what was read against what was sent."""
    async with Admin(connection) as admin:
        streams = await admin.partitions(super_stream)
    builder = VerdictBuilder()
    for symbol in SYMBOLS:
        builder.expect(symbol, sum(1 for s, _ in items if s == symbol))
    expected = len(items)
    partitions_seen: dict[str, set[int]] = {}
    received = 0
    done = asyncio.Event()

    def reader(index: int):
        async def on_chunk(chunk: Chunk) -> None:
            nonlocal received
            for message in chunk.messages:
                tick = decode_message(message)
                builder.observe(tick.symbol, tick.sequence_number)
                partitions_seen.setdefault(tick.symbol, set()).add(index)
            received += len(chunk.messages)
            if received >= expected:
                done.set()

        return on_chunk

    subs = [Subscription(connection, s, reader(i), Offset.first()) for i, s in enumerate(streams)]
    for sub in subs:
        await sub.start()
    try:
        async with asyncio.timeout(60):
            await done.wait()
        await asyncio.sleep(0.5)  # anything extra (a duplicate) would arrive now
    finally:
        for sub in subs:
            await sub.stop()
    return builder.result(), partitions_seen


async def test_topology_create_is_idempotent(
    connection: ConnectionSettings, unique: str, cluster: cl.Cluster
) -> None:
    config = StreamConfig(super_stream=unique, partitions=3)
    assert await create_topology(connection, config) is True
    assert await create_topology(connection, config) is False
    info = await describe_topology(connection, unique)
    assert [p.stream for p in info.partitions] == [f"{unique}-0", f"{unique}-1", f"{unique}-2"]
    # Replicas appear in the metadata as they start, a moment after the leader.
    for _ in range(100):
        if all(len(p.replicas) == 2 for p in info.partitions):
            break
        await asyncio.sleep(0.1)
        info = await describe_topology(connection, unique)
    assert all(len(p.replicas) == 2 for p in info.partitions)
    await delete_topology(connection, unique)


async def test_partition_leaders_are_not_all_put_on_the_node_we_declared_them_through(
    connection: ConnectionSettings, unique: str, cluster: cl.Cluster
) -> None:
    # RabbitMQ's default locator (client-local) puts all six leaders on the node the
    # declaring connection is on. `balanced` puts each on a node leading the fewest queues of
    # any type at that moment (other tests' streams on the shared cluster too, so where each
    # goes is not pinned). Declaring through the node that leads the most makes the two
    # locators part ways whatever the cluster holds: balanced puts at most a few there.
    counts = cluster.management.leader_counts()
    busiest = max(cl.NODES, key=lambda n: counts.get(f"rabbit@{n.name}", 0))
    through = connection.model_copy(
        update={"nodes": (NodeAddress(host="localhost", port=busiest.stream_port),)}
    )
    await create_topology(through, StreamConfig(super_stream=unique, partitions=6))
    try:
        info = await describe_topology(connection, unique)
        by_port = {f"localhost:{n.stream_port}": f"rabbit@{n.name}" for n in cl.NODES}
        leaders = [by_port[p.leader] for p in info.partitions]
        assert leaders.count(f"rabbit@{busiest.name}") < 6, (leaders, counts)
    finally:
        await delete_topology(connection, unique)


async def test_topology_with_another_partition_count_is_a_clear_error(
    connection: ConnectionSettings, unique: str, cluster: cl.Cluster
) -> None:
    await create_topology(connection, StreamConfig(super_stream=unique, partitions=3))
    with pytest.raises(TopologyMismatch, match="exists with 3 partitions, not 5"):
        await create_topology(connection, StreamConfig(super_stream=unique, partitions=5))
    await delete_topology(connection, unique)


async def test_a_super_stream_whose_partition_streams_were_all_deleted_is_made_anew(
    connection: ConnectionSettings, new_super_stream: Callable[[int], Awaitable[str]]
) -> None:
    config = StreamConfig(super_stream=await new_super_stream(3), partitions=3)
    async with Admin(connection) as admin:
        for name in config.partition_names():
            assert await admin.delete_stream(name)
        assert await admin.partitions(config.super_stream) == []  # only the exchange is left
    assert await create_topology(connection, config) is True
    info = await describe_topology(connection, config.super_stream)
    assert [p.stream for p in info.partitions] == config.partition_names()


@pytest.mark.parametrize("attempt", range(3))
async def test_two_creates_at_once_leave_one_whole_super_stream(
    connection: ConnectionSettings, unique: str, attempt: int
) -> None:
    # RabbitMQ (4.3.6) may fail one of them and, undoing it, delete the exchange both made
    # (its partition streams left unbound, empty): the failed one then makes it anew
    config = StreamConfig(super_stream=f"{unique}-{attempt}", partitions=3)
    try:
        created = await asyncio.gather(
            create_topology(connection, config), create_topology(connection, config)
        )
        assert True in created
        info = await describe_topology(connection, config.super_stream)
        assert [p.stream for p in info.partitions] == config.partition_names()
    finally:
        await delete_topology(connection, config.super_stream)
        async with Admin(connection) as admin:  # what a failed run may have left unbound
            for name in config.partition_names():
                await admin.delete_stream(name)


async def test_a_super_stream_that_lost_some_partition_streams_is_a_clear_error(
    connection: ConnectionSettings, new_super_stream: Callable[[int], Awaitable[str]]
) -> None:
    ss = await _lost_partition(connection, new_super_stream, partitions=3, index=1)
    with pytest.raises(TopologyMismatch, match=f"lost partition streams {ss}-1 "):
        await create_topology(connection, StreamConfig(super_stream=ss, partitions=3))


async def _lost_partition(
    connection: ConnectionSettings,
    new_super_stream: Callable[[int], Awaitable[str]],
    *,
    partitions: int,
    index: int,
) -> str:
    """A new super stream of `partitions` whose partition stream `index` was deleted on its own."""
    ss = await new_super_stream(partitions)
    async with Admin(connection) as admin:
        assert await admin.delete_stream(f"{ss}-{index}")
    return ss


async def test_a_super_stream_that_lost_some_partition_streams_is_refused_by_producer_and_readers(
    connection: ConnectionSettings, new_super_stream: Callable[[int], Awaitable[str]]
) -> None:
    ss = await _lost_partition(connection, new_super_stream, partitions=4, index=1)
    lost = f"lost partition streams {ss}-1 "
    assert (await describe_topology(connection, ss)).missing == (f"{ss}-1",)
    with pytest.raises(TopologyMismatch, match=lost):  # three left: the count alone agrees
        await create_topology(connection, StreamConfig(super_stream=ss, partitions=3))
    with pytest.raises(TopologyMismatch, match=lost):
        await Producer(ProducerConfig(connection=connection, super_stream=ss, name=ss)).start()
    with pytest.raises(TopologyMismatch, match=lost):
        await TickReader(
            connection, _ignore, offset=Offset.first(), super_stream=ss, symbols=["AAPL"]
        ).start()
    with pytest.raises(TopologyMismatch, match=lost):
        await replay(connection, ss, symbols=["AAPL"], timeout_s=10)
    # every symbol: what is left is read (salvage for an audit)
    salvaged = await replay(connection, ss, timeout_s=10)
    assert salvaged.end_offsets == {f"{ss}-{i}": -1 for i in (0, 2, 3)}


async def _ignore(_stream: str, _offsets: list[int], _ticks: list[Tick]) -> None:
    return None


async def test_a_super_stream_that_lost_its_last_partition_streams_is_named_in_the_count_error(
    connection: ConnectionSettings, new_super_stream: Callable[[int], Awaitable[str]]
) -> None:
    ss = await _lost_partition(connection, new_super_stream, partitions=3, index=2)
    with pytest.raises(
        TopologyMismatch, match=f"exists with 2 partitions, not 3: .* If it had 3 and {ss}-2 "
    ):
        await create_topology(connection, StreamConfig(super_stream=ss, partitions=3))


@pytest.mark.parametrize("filter_values", [True, False])
async def test_every_tick_lands_once_in_its_symbols_partition_in_order(
    connection: ConnectionSettings, unique: str, super_stream: str, filter_values: bool
) -> None:
    items = list(_ticks(20_000))
    async with Producer(
        ProducerConfig(
            connection=connection, super_stream=unique, name=unique, filter_values=filter_values
        )
    ) as p:
        await p.send_batch(items)
        await p.flush(30)
    result, seen = await _read_back(connection, unique, items)
    assert result.ok, result.summary()
    assert {s: parts for s, parts in seen.items()} == {s: {partition_for(s, 3)} for s in SYMBOLS}


@pytest.mark.parametrize(("linger_ms", "frames"), [(0, 5), (1_000, 1)])
async def test_a_frame_not_full_waits_linger_ms_for_the_next_calls_ticks(
    connection: ConnectionSettings,
    unique: str,
    new_super_stream: Callable[[int], Awaitable[str]],
    monkeypatch: pytest.MonkeyPatch,
    linger_ms: int,
    frames: int,
) -> None:
    await new_super_stream(1)
    written: list[int] = []
    write = PartitionPublisher.write

    def counting(self: PartitionPublisher, *frame: bytes) -> None:
        written.append(len(frame))
        write(self, *frame)

    monkeypatch.setattr(PartitionPublisher, "write", counting)
    items = list(_ticks(50))
    config = ProducerConfig(
        connection=connection, super_stream=unique, name=unique, linger_ms=linger_ms
    )
    async with Producer(config) as p:
        started = time.monotonic()
        for i in range(0, 50, 10):  # five calls of 10 ticks, 20 ms apart: each its own frame
            await p.send_batch(items[i : i + 10])  # unless the first waits for the rest
            await asyncio.sleep(0.02)
        await p.flush(30)
        waited = time.monotonic() - started
    assert len(written) == frames
    if linger_ms:
        assert waited >= linger_ms / 1000  # the frame went out no sooner
    result, _ = await _read_back(connection, unique, items)
    assert result.ok, result.summary()


async def test_a_restarted_producer_continues_its_ids_and_nothing_is_stored_twice(
    connection: ConnectionSettings, unique: str, super_stream: str
) -> None:
    items = list(_ticks(3_000))
    config = ProducerConfig(connection=connection, super_stream=unique, name=unique)
    async with Producer(config) as p:
        await p.send_batch(items[:1_500])
    async with Producer(config) as p:
        await p.send_batch(items[1_500:])
    result, _ = await _read_back(connection, unique, items)
    assert result.ok, result.summary()


async def test_connections_the_broker_closes_mid_feed_are_re_sent_and_nothing_is_lost(
    connection: ConnectionSettings, unique: str, super_stream: str
) -> None:
    items = list(_ticks(400_000))
    web = ManagementClient(
        tuple(f"http://127.0.0.1:{port}" for port in (15672, 15673, 15674)),
        connection.username,
        connection.password.get_secret_value(),
    )
    async with Producer(
        ProducerConfig(connection=connection, super_stream=unique, name=unique)
    ) as p:
        ours = [f"superticks-producer-{unique}-{i}" for i in range(3)]
        deadline = time.monotonic() + 30
        while not (
            wanted := [
                n for n in ours if n in (listed := await asyncio.to_thread(web.connections))
            ][:2]
        ):
            assert time.monotonic() < deadline, "the broker never listed the producer's connections"
            await asyncio.sleep(0.5)

        closed = asyncio.Event()
        sent = 0

        async def feed() -> None:
            # flat out until the connections were closed, then 20,000 more: however fast the
            # broker confirms, the close lands while ticks are in flight (100,000 ticks were
            # once all confirmed before it did)
            nonlocal sent
            after_close = 0
            while sent < len(items) and after_close < 20_000:
                await p.send_batch(items[sent : sent + 2_000])
                sent += 2_000
                after_close += 2_000 if closed.is_set() else 0

        feeding = asyncio.create_task(feed())
        deadline = time.monotonic() + 10
        while p.metrics.in_flight == 0:  # the close cuts off unconfirmed ticks
            assert time.monotonic() < deadline, "the feed never had ticks in flight"
            await asyncio.sleep(0.01)
        for name in wanted:
            await asyncio.to_thread(web.close_connection, listed[name])
        closed.set()
        await feeding
        await p.flush(60)
        assert p.metrics.reconnects >= 1  # the fault took effect
        assert p.metrics.resent > 0
    result, _ = await _read_back(connection, unique, items[:sent])
    assert result.ok, result.summary()


async def _leader_node(connection: ConnectionSettings, stream: str) -> str:
    async with Admin(connection) as admin:
        leader = (await admin.info(stream)).leader
    return next(n.name for n in cl.NODES if leader.endswith(f":{n.stream_port}"))


@pytest.mark.chaos
@pytest.mark.long  # `make test` runs the node-kill scenario (leader moved, producer reconnected)
async def test_node_killed_while_producing_loses_and_duplicates_nothing(
    connection: ConnectionSettings, unique: str, super_stream: str, cluster: cl.Cluster
) -> None:
    items = list(_ticks(150_000))
    victim = await _leader_node(connection, f"{unique}-0")  # it leads partition 0
    others = connection.model_copy(
        update={
            "nodes": tuple(
                a for a in connection.nodes if a.port != cl.node_named(victim).stream_port
            )
        }
    )
    config = ProducerConfig(connection=connection, super_stream=unique, name=unique)
    async with Producer(config) as producer:

        async def feed() -> None:
            for i in range(0, len(items), 1_000):
                await producer.send_batch(items[i : i + 1_000])
                await asyncio.sleep(0.005)  # ~ a few seconds of traffic

        task = asyncio.create_task(feed())
        await asyncio.sleep(1.0)
        try:
            await asyncio.to_thread(cl.kill, cluster, victim)
            for _ in range(100):  # the fault took effect: partition 0 got another leader
                with contextlib.suppress(StreamError):
                    if await _leader_node(others, f"{unique}-0") != victim:
                        break
                await asyncio.sleep(0.2)
            assert await _leader_node(others, f"{unique}-0") != victim
        finally:
            await asyncio.to_thread(cl.restart, cluster, victim)
        await task
        await producer.flush(120)
        assert producer.metrics.reconnects > 0  # and the producer went through it
        assert producer.metrics.confirmed == len(items)
    result, _ = await _read_back(connection, unique, items)
    assert result.ok, result.summary()


@pytest.mark.chaos
async def test_producer_blocks_its_caller_while_the_cluster_is_frozen(
    connection: ConnectionSettings, unique: str, super_stream: str, cluster: cl.Cluster
) -> None:
    items = list(_ticks(20_000))
    config = ProducerConfig(
        connection=connection, super_stream=unique, name=unique, max_in_flight=2_000
    )
    async with Producer(config) as producer:
        for node in cl.NODES:
            await asyncio.to_thread(cl.pause, cluster, node.name)
        try:

            async def feed() -> None:
                for i in range(0, len(items), 500):
                    await producer.send_batch(items[i : i + 500])

            task = asyncio.create_task(feed())
            await asyncio.sleep(3.0)
            assert not task.done()
            assert producer.metrics.in_flight <= 2_000
        finally:
            for node in cl.NODES:
                await asyncio.to_thread(cl.unpause, cluster, node.name, False)
            await asyncio.to_thread(cluster.wait_until_formed)
        async with asyncio.timeout(120):
            await task
        await producer.flush(120)
    result, _ = await _read_back(connection, unique, items)
    assert result.ok, result.summary()


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
async def test_sub_entry_batches_store_every_tick_once_and_read_back(
    connection: ConnectionSettings, unique: str, super_stream: str, compression: str
) -> None:
    items = list(_ticks(6_000))
    config = ProducerConfig(
        connection=connection,
        super_stream=unique,
        name=unique,
        sub_entry_size=100,
        compression=compression,  # type: ignore[arg-type]
    )
    async with Producer(config) as p:
        await p.send_batch(items[:3_000])
    async with Producer(config) as p:  # ids continue across a restart
        await p.send_batch(items[3_000:])
        await p.flush(30)
    result, _ = await _read_back(connection, unique, items)
    assert result.ok, result.summary()


async def test_sub_entry_batches_under_caller_ids_store_every_tick_once_when_handed_over_again(
    connection: ConnectionSettings, unique: str, super_stream: str
) -> None:
    # ids from the input's positions, as the aggregator derives them from source offsets
    items = list(_ticks(6_000))
    messages = [
        (i + 1, symbol, frame_message(symbol, body)) for i, (symbol, body) in enumerate(items)
    ]
    config = ProducerConfig(
        connection=connection, super_stream=unique, name=unique, sub_entry_size=100
    )
    async with Producer(config) as p:
        await (await p.send_with_ids(messages[:3_500]))
    # a restarted producer handed the input over again from an earlier point, in other calls:
    # its batches are not the first's, and what was stored must not be stored again
    async with Producer(config) as p:
        for start in range(1_000, 6_000, 700):
            await p.send_with_ids(messages[start : start + 700])
        await p.flush(30)
    result, _ = await _read_back(connection, unique, items)
    assert result.ok, result.summary()


def test_compression_without_sub_entries_is_refused() -> None:
    with pytest.raises(ValueError, match="sub_entry_size"):
        ProducerConfig(compression="zstd")


async def test_producer_metrics_are_served_for_prometheus(
    connection: ConnectionSettings, unique: str, super_stream: str
) -> None:
    from partitioning.metrics import serve_producer_metrics

    producer = Producer(ProducerConfig(connection=connection, super_stream=unique, name=unique))
    serve_producer_metrics(producer, 19_870)
    async with producer:
        await producer.send_batch(list(_ticks(1_000)))
        await producer.flush(30)
        text = await asyncio.to_thread(_get, "http://127.0.0.1:19870/metrics")
    labels = f'{{producer="{unique}",super_stream="{unique}"}}'
    assert f"superticks_producer_confirmed_total{labels} 1000.0" in text
    assert f"superticks_producer_in_flight{labels} 0.0" in text


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())
