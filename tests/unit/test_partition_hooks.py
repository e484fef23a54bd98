"""A worker tells a handler that asks (`PartitionAssigning`, `PartitionReleasing`) when a
partition becomes its own and when it moves away (what the aggregator's handler does then is in
tests/unit/test_venues.py)."""

from __future__ import annotations

from collections.abc import Sequence

from partitioning.codec import Tick
from superticks.streams import Offset
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


async def test_a_partition_lost_with_its_connection_is_released_before_it_is_assigned_again() -> (
    None
):
    # another worker may have handled some of it meanwhile: the handler's state for it is stale
    handler = _Told()
    worker, part = _worker(handler)
    await worker._on_activation(part, True)
    worker._on_lost(part)

    await worker._on_activation(part, True)
    await worker._on_activation(part, True)  # not lost in between: nothing to release

    assert handler.told == [("assigned", 2), ("released", 2), ("assigned", 2), ("assigned", 2)]


async def test_a_lost_partition_that_then_moves_away_is_released_once() -> None:
    handler = _Told()
    worker, part = _worker(handler)
    await worker._on_activation(part, True)
    worker._on_lost(part)

    await worker._on_activation(part, False)  # the broker's word comes after the loss
    await worker._on_activation(part, True)

    assert handler.told == [("assigned", 2), ("released", 2), ("assigned", 2)]


async def test_a_stopping_worker_is_not_given_partitions_nor_tells_the_handler() -> None:
    handler = _Told()
    worker, part = _worker(handler)
    worker._intake = False

    assert await worker._on_activation(part, True) == Offset.next()
    assert handler.told == []
