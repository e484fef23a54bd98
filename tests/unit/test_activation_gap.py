"""A partition activated from offset n must be handled from n on: if the broker's first chunk
begins after n, the worker asks which chunk of ticks really comes first from n (offset-tracking
entries take offsets but are never delivered) and, if ticks were skipped, handles nothing and
subscribes again. The broker and the admin connection are scripted here; the scenario that
showed it is `superticks bench failover --scenario node-blip`."""

from __future__ import annotations

import pytest
from _chunks import chunk_of_ticks

from superticks.streams import ChunkHeader, Offset
from workers.group import GroupWorker, WorkerConfig, _Partition
from workers.handlers import CountingHandler


class _Admin:
    """The group's stored offset is 99 (read at activation); stores are taken and read back."""

    def __init__(self) -> None:
        self.stored = 99

    async def stored_offset(self, stream: str, reference: str) -> int | None:
        return self.stored

    def heard_within(self, seconds: float) -> bool:
        return True

    async def store_offset(self, stream: str, reference: str, offset: int) -> None:
        self.stored = offset


class _Probe:
    """Where the first chunk of ticks at or after an offset begins, as the broker says."""

    def __init__(self, first: int | None) -> None:
        self.first = first
        self.asked: list[int] = []

    async def at(self, stream: str, offset: int, timeout_s: float = 2.0) -> ChunkHeader | None:
        self.asked.append(offset)
        return None if self.first is None else ChunkHeader(stream, self.first, 10, 0)


class _Subscription:
    def __init__(self) -> None:
        self.resubscribed: list[str] = []

    def stalled(self) -> bool:
        return False

    def resubscribe(self, why: str) -> None:
        self.resubscribed.append(why)


async def _activated(
    first_tick: int | None,
) -> tuple[GroupWorker, _Partition, _Probe, _Subscription]:
    handler = CountingHandler()
    worker = GroupWorker(WorkerConfig(group="g", lag_interval_s=0), handler)
    worker._admin = _Admin()  # type: ignore[assignment]
    probe = _Probe(first_tick)
    worker._probe = probe  # type: ignore[assignment]
    subscription = _Subscription()
    part = _Partition(0, "ticks-0", worker.metrics.partition(0))
    part.subscription = subscription  # type: ignore[assignment]
    worker._intake = True
    await worker._on_activation(part, True)  # from 100
    assert part.active
    assert part.processed == 99
    return worker, part, probe, subscription


async def test_a_first_chunk_after_offset_tracking_entries_only_is_handled() -> None:
    worker, part, probe, subscription = await _activated(first_tick=102)

    await worker._process(part, chunk_of_ticks(102, 10))

    assert probe.asked == [100]
    assert subscription.resubscribed == []
    assert part.processed == 111


async def test_a_first_chunk_past_stored_ticks_is_not_handled_and_the_partition_resubscribes() -> (
    None
):
    worker, part, probe, subscription = await _activated(first_tick=100)

    await worker._process(part, chunk_of_ticks(300, 10))

    assert probe.asked == [100]
    assert subscription.resubscribed == ["it skipped offsets 100-299"]
    assert part.processed == 99  # the group's offset stays before the skipped ticks
    assert worker.handler.records == []  # type: ignore[attr-defined]


async def test_when_the_broker_cannot_say_what_comes_first_the_partition_resubscribes() -> None:
    worker, part, _, subscription = await _activated(first_tick=None)

    await worker._process(part, chunk_of_ticks(300, 10))

    assert len(subscription.resubscribed) == 1
    assert part.processed == 99


@pytest.mark.parametrize("first", [95, 100], ids=["holding-it", "at-it"])
async def test_a_first_chunk_holding_the_offset_asks_nothing(first: int) -> None:
    worker, part, probe, _ = await _activated(first_tick=None)

    await worker._process(part, chunk_of_ticks(first, 10))

    assert probe.asked == []
    assert part.processed == first + 9


async def test_only_the_first_chunk_after_an_activation_is_checked() -> None:
    worker, part, probe, subscription = await _activated(first_tick=102)

    await worker._process(part, chunk_of_ticks(102, 10))
    await worker._process(
        part, chunk_of_ticks(113, 10)
    )  # a tracking entry at 112: as the broker has it

    assert probe.asked == [100]
    assert subscription.resubscribed == []
    assert part.processed == 122


async def test_a_deactivation_answers_where_the_worker_would_resume_never_the_live_tail() -> None:
    # the broker re-reads from an answer it processes while the subscription is active, a late
    # answer to a deactivation included: NEXT there skipped what was stored meanwhile
    worker, part, _, _ = await _activated(first_tick=None)
    await worker._process(part, chunk_of_ticks(100, 10))

    answer = await worker._on_activation(part, False)

    assert answer == Offset.at(110)
    assert answer != Offset.next()


async def test_a_deactivation_of_a_partition_with_nothing_known_answers_the_start_offset() -> None:
    worker = GroupWorker(WorkerConfig(group="g", lag_interval_s=0), CountingHandler())
    worker._admin = _Admin()  # type: ignore[assignment]
    part = _Partition(0, "ticks-0", worker.metrics.partition(0))
    part.active = True

    assert await worker._on_activation(part, False) == worker.config.start_offset()


def test_the_probes_subscription_ids_are_apart_from_those_reading_a_streams_tail() -> None:
    # both share the worker's admin connection: a tail read that ended under the probe's id
    # removed the probe's delivery handler, and every later probe timed out
    from superticks import streams

    probe = streams.ChunkProbe(object())  # type: ignore[arg-type]
    probe_ids = {*probe._ids, probe._handler_id}

    assert probe_ids.isdisjoint(streams._LAST_OFFSET_IDS)
    assert max(streams._LAST_OFFSET_IDS) <= 255  # a subscription id is one byte
