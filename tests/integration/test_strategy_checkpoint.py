"""A strategy checkpoints each partition's state, and a rebuild replays only the ticks after the
latest checkpoint before it: the same state as a replay from the first offset, for a fraction of
the reading."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
from _streams import eventually

from partitioning.codec import Tick, message_body
from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from superticks.settings import ConnectionSettings
from superticks.streams import Admin
from trading import strategy
from trading.reading import read_partition_ticks, read_to_end
from trading.strategy import StrategyHandler, StrategyParams, checkpoint_stream
from workers.group import GroupWorker, WorkerConfig

pytestmark = pytest.mark.cluster

TICKS = 9_000
PARAMS = StrategyParams(name="ckpt", threshold_bps=2, quantity=700)


@pytest.fixture
async def audit_stream(connection: ConnectionSettings, unique: str) -> AsyncIterator[str]:
    name = f"{unique}-audit"
    yield name
    async with Admin(connection) as admin:
        for stream in (name, checkpoint_stream(name)):
            await admin.delete_stream(stream)


async def partition_ticks(
    connection: ConnectionSettings, stream: str
) -> tuple[list[int], list[Tick]]:
    async with Admin(connection) as admin:
        end = await admin.last_offset(stream)
    offsets: list[int] = []
    ticks: list[Tick] = []

    def add(more_offsets: list[int], more_ticks: list[Tick]) -> None:
        offsets.extend(more_offsets)
        ticks.extend(more_ticks)

    await read_partition_ticks(connection, stream, add, end=end)
    return offsets, ticks


def checkpoints_started(handler: StrategyHandler) -> bool:
    """Whether partition 0's checkpoint publisher, started in the background when the
    partition became the handler's, is up (until then checkpoints are put off)."""
    active = handler._active.get(0)
    if active is None:
        return False
    return active.checkpoints is not None or (active.warming is not None and active.warming.done())


async def test_a_rebuild_starts_at_the_latest_checkpoint_and_reaches_the_same_state(
    connection: ConnectionSettings,
    unique: str,
    new_super_stream: Callable[[int], Awaitable[str]],
    audit_stream: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the checkpoints are read back one at a time from the newest: later ones are passed over
    monkeypatch.setattr(strategy, "_CHECKPOINT_WINDOW", 1)
    super_stream = await new_super_stream(1)
    first = StrategyHandler(
        connection, PARAMS, super_stream=super_stream, audit_stream=audit_stream,
        checkpoint_every=2_000,
    )  # fmt: skip
    config = ProducerConfig(connection=connection, super_stream=super_stream, name=unique)
    simulator = MarketSimulator(20, seed=3)
    async with Producer(config) as producer:
        # the first tick activates the partition; the rest come once its checkpoints can be
        # written (a catch-up faster than the publisher's start would put them all off)
        await (await producer.send_batch(simulator.batch(1)))
        worker_config = WorkerConfig(
            connection=connection, super_stream=super_stream, group=f"{unique}-a"
        )
        async with GroupWorker(worker_config, first) as worker:
            await eventually(lambda: checkpoints_started(first), "checkpoints can be written")
            await (await producer.send_batch(simulator.batch(TICKS - 1)))
            await eventually(lambda: worker.consumed >= TICKS, "every tick handled", timeout_s=60)
    await first.close()

    checkpoints: list[int] = []

    def on_messages(_first: int, messages: list[bytes]) -> None:
        checkpoints.extend(orjson.loads(message_body(m))["offset"] for m in messages)

    await read_to_end(connection, checkpoint_stream(audit_stream), on_messages)
    assert len(checkpoints) >= 3, checkpoints  # one every 2,000 ticks or more
    assert checkpoints == sorted(checkpoints)

    # a successor given the partition's ticks from 150 after a checkpoint: its state is
    # rebuilt from that checkpoint and those 150 ticks
    offsets, ticks = await partition_ticks(connection, f"{super_stream}-0")
    # the second-to-last checkpoint: the last one, later than the chunk, is passed over
    last = offsets.index(checkpoints[-2]) + 1 + 150

    async def successor(checkpoint_every: int) -> StrategyHandler:
        """A new handler given the partition's ticks from `last` on: it rebuilds first."""
        handler = StrategyHandler(
            connection, PARAMS, super_stream=super_stream, audit_stream=audit_stream,
            checkpoint_every=checkpoint_every,
        )  # fmt: skip
        await handler.handle_batch(0, offsets[last:], ticks[last:])
        await handler.close()
        return handler

    from_checkpoint = await successor(2_000)
    from_start = await successor(0)  # no checkpoint read
    # a rebuild reads back at most _CHECKPOINT_SCAN checkpoints: with none among them, it
    # replays from the first offset
    monkeypatch.setattr(strategy, "_CHECKPOINT_SCAN", 1)
    beyond = await successor(2_000)

    assert from_checkpoint.replayed == 150
    assert from_start.replayed == beyond.replayed == last  # every tick before the chunk
    assert beyond.positions() == from_checkpoint.positions()
    assert from_checkpoint.positions() == from_start.positions() == first.positions()
    assert from_checkpoint.published == from_start.published > 0  # the same decisions
