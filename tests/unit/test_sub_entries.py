"""A producer's sub-entry batches: at most `sub_entry_size` messages each, fewer where more
would not fit a publish frame, and under caller ids (`send_with_ids`) the id of the batch's
last message, so the broker keeps or drops each batch whole by the ids of what it holds."""

from __future__ import annotations

import asyncio

from partitioning import producer as producer_module
from partitioning.producer import Producer, ProducerConfig
from superticks.streams import FRAME_MAX


def _batches(
    sub_entry_size: int, messages: list[bytes], ids: list[int] | None
) -> tuple[list[int], list[int]]:
    """(record ids, messages per record) of `messages` cut into sub-entry records."""
    producer = Producer(ProducerConfig(name="batches", sub_entry_size=sub_entry_size))
    part = producer_module._Partition(0)
    part.next_id = 7
    ticket = producer_module._Ticket(asyncio.get_running_loop().create_future(), 0)
    segment = producer._sub_entries(part, messages, ticket, ids)
    assert segment.weights is not None
    return list(segment.ids), segment.weights


async def test_caller_ids_put_each_batch_under_its_last_message_id() -> None:
    ids = [3, 5, 9, 12, 20]
    assert _batches(2, [b"m"] * 5, ids) == ([5, 12, 20], [2, 2, 1])


async def test_without_caller_ids_batches_take_the_partitions_next_ids() -> None:
    assert _batches(2, [b"m"] * 5, None) == ([7, 8, 9], [2, 2, 1])


async def test_a_batch_is_cut_short_where_more_would_not_fit_a_frame() -> None:
    big = b"x" * (FRAME_MAX // 3 + 1)  # two fit a frame, three do not
    ids, weights = _batches(100, [big] * 5, list(range(1, 6)))
    assert weights == [2, 2, 1]
    assert ids == [2, 4, 5]
