"""Least privilege on the trading side: the strategy user writes the audit log (and does a
worker's job), the aggregator user reads the venues' super streams and writes the unified one;
each is refused the rest by the broker (`cluster.users`, made at cluster up)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from _streams import publish_ticks, read_messages, ticks_of_every_symbol

from partitioning.model import StreamConfig
from partitioning.topology import create_topology, delete_topology
from superticks.errors import PermissionDenied
from superticks.settings import ConnectionSettings, Role
from superticks.streams import Admin, Offset, PartitionPublisher, Subscription
from trading.audit import AuditConfig, AuditLog
from trading.events import EventType, Side, TradingEvent
from trading.venues import Aggregator, AggregatorConfig

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(90)]

PER_SYMBOL = 10


@pytest.fixture
async def venue_stream(connection: ConnectionSettings, unique: str) -> AsyncIterator[str]:
    """A venue's 2-partition super stream (with its dead-letter stream), as the admin makes it."""
    name = f"market_data_{unique}"
    await create_topology(connection, StreamConfig(super_stream=name, partitions=2))
    yield name
    await delete_topology(connection, name)


async def refused(what: object, permission: str, resource: str) -> None:
    with pytest.raises(PermissionDenied) as denied:
        await what  # type: ignore[misc]
    assert (denied.value.permission, denied.value.resource) == (permission, resource)


async def never(_chunk: object) -> None:
    raise AssertionError("nothing may be delivered")


def publisher(settings: ConnectionSettings, stream: str) -> PartitionPublisher:
    return PartitionPublisher(settings, stream, "intruder", print, print, print)


def event(n: int) -> TradingEvent:
    return TradingEvent(
        event_id=f"perm:{n}",
        timestamp=datetime(2026, 11, 25, 20, 47, 0, n, tzinfo=UTC),
        type=EventType.ORDER_CREATED,
        order_id=f"o{n}",
        symbol="AAPL",
        side=Side.BUY,
        quantity=Decimal(100),
        price=Decimal("187.25"),
        source=f"p0@{n}",
    )


async def test_strategy_writes_the_audit_log_and_reads_ticks_but_nothing_more(
    as_role: Callable[[Role], ConnectionSettings],
    connection: ConnectionSettings,
    super_stream: str,
    audit_stream: str,
) -> None:
    strategy = as_role(Role.STRATEGY)
    with pytest.raises(PermissionDenied, match="configure"):  # the admin makes the log
        await AuditLog(AuditConfig(connection=strategy, stream=audit_stream)).start()
    async with AuditLog(AuditConfig(connection=connection, stream=audit_stream)):
        pass
    try:
        async with AuditLog(AuditConfig(connection=strategy, stream=audit_stream)) as log:
            await (await log.publish([event(n) for n in range(3)]))
        assert len(await read_messages(connection, audit_stream, 3)) == 3
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 1))
        ticks: list[int] = []

        async def on_chunk(chunk: object) -> None:
            ticks.append(1)

        async with Subscription(strategy, f"{super_stream}-0", on_chunk, Offset.first()):
            for _ in range(100):
                if ticks:
                    break
                await asyncio.sleep(0.05)
        assert ticks, "the strategy reads its partitions"
        await refused(
            publisher(strategy, f"{super_stream}-0").start(), "write", f"{super_stream}-0"
        )
        async with Admin(strategy) as admin:
            await refused(admin.delete_stream(audit_stream), "configure", audit_stream)
            await refused(
                admin.create_stream(f"{super_stream}-x", {}), "configure", f"{super_stream}-x"
            )
    finally:
        async with Admin(connection) as admin:
            await admin.delete_stream(audit_stream)


async def test_aggregator_reads_venues_and_writes_the_unified_stream_but_nothing_more(
    as_role: Callable[[Role], ConnectionSettings],
    connection: ConnectionSettings,
    super_stream: str,
    audit_stream: str,
    venue_stream: str,
) -> None:
    aggregator = as_role(Role.AGGREGATOR)
    items = ticks_of_every_symbol(0, PER_SYMBOL)
    await publish_ticks(connection, venue_stream, items)
    config = AggregatorConfig(
        connection=aggregator,
        venues=("X",),
        target=super_stream,
        group=f"{super_stream}-agg",
        sources={"X": venue_stream},
    )
    async with Aggregator(config) as running:
        for _ in range(300):
            if running.status()["forwarded"] == len(items):
                break
            await asyncio.sleep(0.05)
        assert running.status()["forwarded"] == len(items)
    async with Admin(aggregator) as admin:  # source offsets stored under its own user
        assert await admin.stored_offset(f"{venue_stream}-0", f"{super_stream}-agg") is not None
        await refused(
            admin.create_stream(f"{venue_stream}-x", {}), "configure", f"{venue_stream}-x"
        )
        await refused(admin.delete_stream(f"{super_stream}-0"), "configure", f"{super_stream}-0")
    await refused(publisher(aggregator, f"{venue_stream}-0").start(), "write", f"{venue_stream}-0")
    await refused(
        Subscription(aggregator, f"{super_stream}-dlq", never, Offset.first()).start(),
        "read",
        f"{super_stream}-dlq",
    )
    await refused(publisher(aggregator, audit_stream).start(), "read or write", audit_stream)
