"""Least privilege: each role's user does its own job and is refused the rest, with an error
that names the user, the permission and the resource (`cluster.users`, made at cluster up).
The refusals come from the broker: nothing here is faked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from _streams import read_messages

from cluster import NODES, Cluster
from cluster.management import ManagementClient
from partitioning.codec import format_body
from partitioning.producer import Producer, ProducerConfig
from superticks.errors import ClusterError, PermissionDenied
from superticks.settings import ConnectionSettings, Role
from superticks.streams import (
    Admin,
    Offset,
    PartitionPublisher,
    Subscription,
    encode_publish_frame,
)
from workers.group import GroupWorker, WorkerConfig
from workers.handlers import CountingHandler

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(60)]

TICKS = 300


def _ticks(count: int) -> list[tuple[str, bytes]]:
    out = []
    for seq in range(count):
        symbol = f"P{seq % 12:02d}"
        ts = 1_790_000_000_000_000 + seq
        body = format_body(symbol, "XNAS", "10.5", "1", "10.5", "1", "10.5", "1", str(seq), ts, seq)
        out.append((symbol, body))
    return out


@pytest.fixture
async def other_stream(connection: ConnectionSettings, super_stream: str) -> AsyncIterator[str]:
    """A plain stream that is not part of the super stream."""
    name = f"{super_stream}-other"
    async with Admin(connection) as admin:
        await admin.create_stream(name, {"max-length-bytes": 10_000_000})
    yield name
    async with Admin(connection) as admin:
        await admin.delete_stream(name)


async def _refused(what: object, permission: str, resource: str) -> str:
    with pytest.raises(PermissionDenied) as refused:
        await what  # type: ignore[misc]
    assert refused.value.permission == permission
    assert refused.value.resource == resource
    message = str(refused.value)
    assert f"no {permission} permission on {resource!r}" in message
    assert "set_permissions" in message
    print(message)
    return message


async def _never(_chunk: object) -> None:
    raise AssertionError("nothing may be delivered")


def _publisher(settings: ConnectionSettings, stream: str) -> PartitionPublisher:
    return PartitionPublisher(settings, stream, "intruder", print, print, print)


async def test_producer_writes_the_super_stream_and_nothing_else(
    as_role: Callable[[Role], ConnectionSettings],
    connection: ConnectionSettings,
    super_stream: str,
    other_stream: str,
) -> None:
    producer_user = as_role(Role.PRODUCER)
    config = ProducerConfig(connection=producer_user, super_stream=super_stream, name="feed")
    async with Producer(config) as producer:
        await producer.send_batch(_ticks(TICKS))
        await producer.flush(30)
        assert producer.metrics.confirmed == TICKS

    async with Admin(producer_user) as admin:
        await _refused(
            admin.create_stream(f"{super_stream}-extra", {}), "configure", f"{super_stream}-extra"
        )
        await _refused(admin.delete_stream(f"{super_stream}-0"), "configure", f"{super_stream}-0")
        await _refused(admin.delete_super_stream(super_stream), "configure", super_stream)
    await _refused(
        Subscription(producer_user, other_stream, _never, Offset.first()).start(),
        "read",
        other_stream,
    )
    # a publisher first asks where the leader is: metadata, which needs read or write
    await _refused(_publisher(producer_user, other_stream).start(), "read or write", other_stream)
    await _refused(
        _publisher(producer_user, f"{super_stream}-dlq").start(),
        "read or write",
        f"{super_stream}-dlq",
    )


async def test_worker_reads_stores_offsets_and_dead_letters_but_cannot_write_or_delete(
    as_role: Callable[[Role], ConnectionSettings],
    connection: ConnectionSettings,
    super_stream: str,
) -> None:
    worker_user = as_role(Role.WORKER)
    config = ProducerConfig(connection=connection, super_stream=super_stream, name="feed")
    async with Producer(config) as producer:
        await producer.send_batch(_ticks(TICKS))
        await producer.flush(30)
    raw = PartitionPublisher(connection, f"{super_stream}-0", "raw", print, print, print)
    last = await raw.start()  # a poison pill, which the worker must dead-letter
    raw.write(encode_publish_frame(0, [(last + 1, b"not a tick")]))
    await raw.drain()
    await asyncio.sleep(0.5)
    await raw.stop()

    handler = CountingHandler()
    worker_config = WorkerConfig(
        connection=worker_user,
        super_stream=super_stream,
        group=f"{super_stream}-g",
        name="w",
        lag_interval_s=0,
        store_every_ticks=50,
    )
    async with GroupWorker(worker_config, handler) as worker:
        for _ in range(300):
            if len(handler) >= TICKS and worker.dead_letters == 1:
                break
            await asyncio.sleep(0.05)
        assert len(handler) == TICKS
        assert worker.dead_letters == 1
    async with Admin(worker_user) as admin:  # offsets stored under the worker's user
        stored = [
            await admin.stored_offset(f"{super_stream}-{i}", f"{super_stream}-g") for i in range(3)
        ]
        assert all(offset is not None for offset in stored)
        await _refused(admin.delete_super_stream(super_stream), "configure", super_stream)
        await _refused(admin.delete_stream(f"{super_stream}-1"), "configure", f"{super_stream}-1")
    await _refused(
        _publisher(worker_user, f"{super_stream}-0").start(), "write", f"{super_stream}-0"
    )
    assert len(await read_messages(connection, f"{super_stream}-dlq", 1)) == 1


async def test_monitoring_reads_metadata_but_cannot_publish_or_consume(
    as_role: Callable[[Role], ConnectionSettings],
    cluster: Cluster,
    super_stream: str,
) -> None:
    monitoring_user = as_role(Role.MONITORING)
    partition = f"{super_stream}-0"
    async with Admin(monitoring_user) as admin:  # the stream protocol: nothing at all
        await _refused(admin.info(partition), "read or write", partition)
        await _refused(admin.partitions(super_stream), "read", super_stream)
        await _refused(admin.stats(partition), "read", partition)
    await _refused(_publisher(monitoring_user, partition).start(), "read or write", partition)
    await _refused(
        Subscription(monitoring_user, partition, _never, Offset.first()).start(), "read", partition
    )
    web = ManagementClient(
        tuple(f"http://127.0.0.1:{n.management_port}" for n in NODES),
        monitoring_user.username,
        monitoring_user.password.get_secret_value(),
    )
    assert web.overview().rabbitmq_version  # metadata comes from the management API
    queue = web.queue(partition)
    assert (queue.type, len(queue.members)) == ("stream", 3)
    assert queue.leader
    with pytest.raises(ClusterError, match=r"HTTP 40[13]"):
        web.send("PUT", "/api/users/superticks-intruder", {"password": "x", "tags": ""})
