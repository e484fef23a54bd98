"""A worker tells a handler that asks (`PartitionAssigning`, `PartitionReleasing`) when a
partition becomes its own and when it moves away; the aggregator's handler starts a
partition's producer as soon as the partition is assigned, not at its first chunk."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from partitioning.codec import Tick, frame_message
from superticks.settings import ConnectionSettings
from superticks.streams import Offset
from tests.unit.test_venues import BODY, SlowStartProducer
from trading import venues
from trading.venues import VenueHandler
from workers.group import GroupWorker, WorkerConfig, _Partition


class _Admin:
    async def stored_offset(self, stream: str, reference: str) -> int | None:
        return 41

    async def store_offset(self, stream: str, reference: str, offset: int) -> None:
        pass

    def heard_within(self, seconds: float) -> bool:
        return True


class _Told:
    """A handler that records what it was told."""

    def __init__(self) -> None:
        self.told: list[tuple[str, int]] = []

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        pass

    async def partition_assigned(self, partition: int) -> None:
        self.told.append(("assigned", partition))

    async def partition_released(self, partition: int) -> None:
        self.told.append(("released", partition))


def _worker(handler: _Told) -> tuple[GroupWorker, _Partition]:
    worker = GroupWorker(WorkerConfig(group="g", lag_interval_s=0), handler)
    worker._admin = _Admin()  # type: ignore[assignment]
    worker._intake = True
    return worker, _Partition(2, "ticks-2", worker.metrics.partition(2))


async def test_the_handler_is_told_when_a_partition_becomes_the_workers() -> None:
    handler = _Told()
    worker, part = _worker(handler)

    offset = await worker._on_activation(part, True)

    assert offset == Offset.at(42)  # after the group's stored offset
    assert handler.told == [("assigned", 2)]


async def test_the_handler_is_told_when_a_partition_moves_away() -> None:
    handler = _Told()
    worker, part = _worker(handler)
    await worker._on_activation(part, True)

    await worker._on_activation(part, False)

    assert handler.told == [("assigned", 2), ("released", 2)]


async def test_a_stopping_worker_is_not_given_partitions_nor_tells_the_handler() -> None:
    handler = _Told()
    worker, part = _worker(handler)
    worker._intake = False

    assert await worker._on_activation(part, True) == Offset.next()
    assert handler.told == []


@pytest.fixture
def slow_producers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(venues, "Producer", SlowStartProducer)
    monkeypatch.setattr(SlowStartProducer, "starts", 0)
    monkeypatch.setattr(SlowStartProducer, "overlapping", 0)


@pytest.mark.usefixtures("slow_producers")
async def test_the_aggregator_starts_a_partitions_producer_when_the_partition_is_assigned() -> None:
    handler = VenueHandler(ConnectionSettings(), "NYSE")

    await handler.partition_assigned(1)  # returns at once: the start goes on in the background
    await asyncio.sleep(0.1)  # a start takes 0.05 s
    assert SlowStartProducer.starts == 1  # before any chunk
    await handler.handle_messages(1, 0, [frame_message("AAPL", BODY)])

    assert SlowStartProducer.starts == 1  # the first chunk found it started
    await asyncio.sleep(0)  # the confirm's callback
    assert handler.forwarded == 1
    await handler.close()


@pytest.mark.usefixtures("slow_producers")
async def test_a_partition_released_while_its_producer_starts_keeps_no_producer() -> None:
    handler = VenueHandler(ConnectionSettings(), "NYSE")
    await handler.partition_assigned(1)
    await asyncio.sleep(0)  # the start is under way

    await handler.partition_released(1)

    assert SlowStartProducer.overlapping == 0  # the start was cancelled
    assert handler._producers == {}
    await handler.close()
