"""The paper strategy's effects are exactly once: a `superticks worker --handler strategy`
SIGKILLed mid-run and replaced writes the same audit log, and ends with the same positions, as
an uninterrupted run on the same ticks."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from partitioning.codec import message_body
from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from superticks.errors import StreamError
from superticks.settings import ConnectionSettings
from superticks.streams import Admin
from trading.events import event_body
from trading.ledger import rebuild
from trading.reading import read_to_end
from trading.strategy import StrategyHandler, StrategyParams, checkpoint_stream
from workers.group import GroupWorker, WorkerConfig

pytestmark = pytest.mark.cluster

TICKS = 24_000
RATE = 6_000  # ticks/s: the feed lasts 4 s; the first worker is killed while it runs
PARAMS = StrategyParams(name="fo", threshold_bps=2, quantity=700)


@pytest.fixture
async def audit_streams(connection: ConnectionSettings, unique: str) -> AsyncIterator[list[str]]:
    names = [f"{unique}-audit-failover", f"{unique}-audit-reference"]
    yield names
    async with Admin(connection) as admin:
        for name in names:
            await admin.delete_stream(name)
            await admin.delete_stream(checkpoint_stream(name))


async def feed(
    connection: ConnectionSettings, super_stream: str, simulator: MarketSimulator, ticks: int
) -> None:
    config = ProducerConfig(connection=connection, super_stream=super_stream, name="fo-feed")
    async with Producer(config) as producer:
        for _ in range(ticks // 300):
            await producer.send_batch(simulator.batch(300))
            await asyncio.sleep(300 / RATE)
        await producer.flush(30)


def worker(super_stream: str, group: str, audit: str, name: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "superticks", "worker", "--group", group, "--name", name,
        "--super-stream", super_stream, "--handler", "strategy", "--audit-stream", audit,
        "--strategy-name", PARAMS.name, "--threshold-bps", str(PARAMS.threshold_bps),
        "--quantity", str(PARAMS.quantity),
        # checkpoints every 3,000 ticks of a partition: the successor's rebuild starts at one
        "--checkpoint-every", "3000", *extra,
    ]  # fmt: skip


async def stored_events(connection: ConnectionSettings, stream: str) -> int:
    """Events in the audit stream now (0 if it does not exist yet or a node restarts)."""
    try:
        async with Admin(connection) as admin:
            if not await admin.stream_exists(stream):
                return 0
            return await admin.last_offset(stream) + 1
    except StreamError:
        return 0


async def caught_up(
    connection: ConnectionSettings, super_stream: str, group: str, timeout_s: float = 120
) -> None:
    """Until the group's stored offset is the last offset of every partition (rides out a
    node restart: other sessions share the cluster)."""
    stored: dict[str, int | None] = {}
    ends: dict[str, int] = {}
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            async with Admin(connection) as admin:
                partitions = await admin.partitions(super_stream)
                ends = {p: await admin.last_offset(p) for p in partitions}
                while asyncio.get_running_loop().time() < deadline:
                    stored = {p: await admin.stored_offset(p, group) for p in partitions}
                    if all(stored[p] == ends[p] for p in partitions):
                        return
                    await asyncio.sleep(0.1)
        except StreamError:
            await asyncio.sleep(0.5)
    raise AssertionError(f"group {group} did not catch up: stored {stored}, ends {ends}")


async def read_log(connection: ConnectionSettings, stream: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    def on_messages(_first: int, messages: list[bytes]) -> None:
        events.extend(orjson.loads(event_body(m)) for m in messages)

    await read_to_end(connection, stream, on_messages)
    return events


async def test_a_killed_strategy_worker_replaced_writes_the_same_log_and_positions(
    connection: ConnectionSettings, unique: str, super_stream: str, audit_streams: list[str]
) -> None:
    failover, reference = audit_streams
    group = f"{unique}-fo"
    first = await asyncio.create_subprocess_exec(
        # it stores offsets only when a partition moves: its successor re-handles everything
        # it handled since, and so re-publishes decisions that are already in the log
        *worker(super_stream, group, failover, "first", "--store-every-ms", "600000",
                "--store-every-ticks", "1000000"),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    second = None
    try:
        simulator = MarketSimulator(20, seed=5)
        await feed(connection, super_stream, simulator, 600)  # a warm-up, then a live feed
        for _ in range(300):  # until the first worker has published decisions
            if await stored_events(connection, failover) > 0:
                break
            await asyncio.sleep(0.1)
        feeding = asyncio.create_task(feed(connection, super_stream, simulator, TICKS))
        second = await asyncio.create_subprocess_exec(
            *worker(super_stream, group, failover, "second"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(1.5)  # it joins: a partition moves to it (a clean handover)
        before_kill = await stored_events(connection, failover)
        assert not feeding.done(), "the feed ended before the kill: not mid-run"
        os.kill(first.pid, signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        await feeding
        await caught_up(connection, super_stream, group)
        second.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await second.wait() == 0
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()

    # the same ticks, one uninterrupted worker
    handler = StrategyHandler(connection, PARAMS, super_stream=super_stream, audit_stream=reference)
    config = WorkerConfig(connection=connection, super_stream=super_stream, group=f"{unique}-ref")
    async with GroupWorker(config, handler):
        await caught_up(connection, super_stream, config.group)
    await handler.close()
    # its state built once per partition: the offsets that stored offsets' tracking chunks
    # take (no consumer sees them) are no reason to rebuild
    assert handler.rebuilds == 3

    killed, whole = await read_log(connection, failover), await read_log(connection, reference)
    assert 0 < before_kill < len(killed)  # the kill happened mid-run
    ids = [e["event_id"] for e in killed]
    assert len(ids) == len(set(ids)), "an event was stored twice"
    assert sorted(ids) == sorted(e["event_id"] for e in whole), "an event is missing or extra"
    by_id = {e["event_id"]: e for e in whole}
    assert all(e == by_id[e["event_id"]] for e in killed)
    for partition in range(3):  # each partition's decisions in the same order
        tag = f"p{partition}@"
        assert [e["event_id"] for e in killed if e["source"].startswith(tag)] == [
            e["event_id"] for e in whole if e["source"].startswith(tag)
        ]
    checkpoints: list[dict[str, Any]] = []
    await read_to_end(
        connection,
        checkpoint_stream(failover),
        lambda _first, messages: checkpoints.extend(
            orjson.loads(message_body(m)) for m in messages
        ),
    )
    # the partitions with 3,000 ticks or more had checkpoints for a rebuild to start at
    assert {c["partition"] for c in checkpoints}, "no checkpoint was written"
    after_failover, uninterrupted = rebuild(killed), rebuild(whole)
    assert after_failover.invalid == uninterrupted.invalid == []
    assert after_failover.summary() == uninterrupted.summary()
    assert len(whole) > 1000
