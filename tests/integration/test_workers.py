"""Worker groups: single active consumer per partition, offsets that survive workers, and dead
letters, on the three-node cluster."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
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

import cluster as cl
from partitioning.codec import Tick
from superticks.settings import ConnectionSettings
from superticks.streams import Admin
from workers.group import GroupWorker, WorkerConfig
from workers.handlers import CountingHandler, VwapHandler

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(60)]


@pytest.fixture
def config(connection: ConnectionSettings, super_stream: str) -> Callable[..., WorkerConfig]:
    def make(name: str, group: str = "g", **overrides: Any) -> WorkerConfig:
        return WorkerConfig(
            connection=connection,
            super_stream=super_stream,
            group=f"{super_stream}-{group}",
            name=name,
            lag_interval_s=0,
            **overrides,
        )

    return make


async def test_partitions_spread_one_per_worker_as_the_group_grows(
    config: Callable[..., WorkerConfig],
) -> None:
    w1, w2, w3 = (GroupWorker(config(f"w{i}"), CountingHandler()) for i in (1, 2, 3))
    try:
        await w1.start()
        await eventually(lambda: w1.active_partitions == [0, 1, 2], "w1 holds all partitions")
        await w2.start()
        await eventually(
            lambda: (w1.active_partitions, w2.active_partitions) == ([0, 2], [1]),
            "the second worker took one partition",
        )
        await w3.start()
        await eventually(
            lambda: [w.active_partitions for w in (w1, w2, w3)] == [[0], [1], [2]],
            "one partition per worker",
        )
    finally:
        await asyncio.gather(w1.stop(), w2.stop(), w3.stop())


async def test_killed_workers_partition_is_taken_over_and_every_tick_handled_once(
    config: Callable[..., WorkerConfig], connection: ConnectionSettings, super_stream: str
) -> None:
    handlers = [CountingHandler() for _ in range(3)]
    workers = [GroupWorker(config(f"w{i}"), h) for i, h in enumerate(handlers)]

    def handled() -> int:
        return sum(len(h) for h in handlers)

    try:
        for worker in workers:
            await worker.start()
        await eventually(
            lambda: [w.active_partitions for w in workers] == [[0], [1], [2]], "spread"
        )
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 200))
        await eventually(lambda: handled() == 200 * len(SYMBOLS), "the first batch is handled")
        await eventually(lambda: all(w.all_stored() for w in workers), "offsets are stored")

        await workers[1].abort()  # dies holding partition 1, without a last store
        survivors = (workers[0], workers[2])
        await eventually(
            lambda: any(1 in w.active_partitions for w in survivors), "partition 1 is taken over"
        )
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(200, 200))
        await eventually(lambda: handled() == 400 * len(SYMBOLS), "the second batch is handled")
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
    assert verdict(handlers, 400).ok, verdict(handlers, 400).summary()


async def test_a_moved_partition_leader_is_followed_without_cancelling_the_dropped_subscription(
    config: Callable[..., WorkerConfig],
    connection: ConnectionSettings,
    super_stream: str,
    cluster: cl.Cluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # After a leadership move the broker sends a metadata update and drops the subscription
    # itself: an unsubscribe then gets no answer, and rstream waited 5 s for one (logging
    # "exception in unsubscribe") before the worker could subscribe again.
    handler = CountingHandler()
    worker = GroupWorker(config("w1"), handler)
    try:
        await worker.start()
        await eventually(lambda: worker.active_partitions == [0, 1, 2], "w1 holds all")
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 50))
        await eventually(lambda: len(handler) == 50 * len(SYMBOLS), "the first batch is handled")
        async with Admin(connection) as admin:
            leader = (await admin.info(f"{super_stream}-0")).leader
        node = next(n for n in cl.NODES if leader.endswith(f":{n.stream_port}"))

        with caplog.at_level(logging.INFO, logger="rstream"):
            drain = await asyncio.to_thread(cl.drain, cluster, node.name)
            await publish_ticks(connection, super_stream, ticks_of_every_symbol(50, 50))
            await eventually(
                lambda: len(handler) == 100 * len(SYMBOLS), "the second batch is handled"
            )
    finally:
        await worker.stop()
    assert f"{super_stream}-0" in [stream for _, stream, _ in drain.moves]  # it took effect
    assert not [r.getMessage() for r in caplog.records if "unsubscribe" in r.getMessage()]
    assert verdict([handler], 100).ok, verdict([handler], 100).summary()


async def test_a_worker_killed_under_load_loses_nothing_and_its_successor_redoes_its_unstored_ticks(
    config: Callable[..., WorkerConfig], connection: ConnectionSettings, super_stream: str
) -> None:
    doomed_handler, successor_handler = CountingHandler(), CountingHandler()
    handlers = [doomed_handler, successor_handler]
    doomed = GroupWorker(config("doomed", store_every_ticks=500), doomed_handler)
    successor = GroupWorker(config("successor", store_every_ticks=500), successor_handler)
    try:
        await doomed.start()
        publishing = asyncio.create_task(
            publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 1000))
        )
        await eventually(
            lambda: len(doomed_handler) > 2000 and max(_confirmed(doomed)) >= 0,
            "the doomed worker handled some and stored an offset",
        )
        await doomed.abort()  # mid-stream: what it handled after its last store is redone
        await publishing
        stored = await _settled_offsets(connection, super_stream, doomed.config.group)
        await successor.start()
        await eventually(lambda: _distinct(handlers) == 1000 * len(SYMBOLS), "all handled")
    finally:
        await asyncio.gather(doomed.stop(), successor.stop())
    result = verdict(handlers, 1000, idempotent=True)
    assert result.ok, result.summary()
    # how far the stored offset trails depends on the machine's load (store_every_ticks, or
    # store_every_ms when stores wait: one CI run redid 5,968 ticks), which benchmarks measure;
    # this test pins that the successor resumes exactly after it
    handled = Counter((p, o) for h in handlers for _, _, p, o in h.records)
    twice = sorted(key for key, times in handled.items() if times > 1)
    unstored = sorted((p, o) for _, _, p, o in doomed_handler.records if o > stored[p])
    assert twice == unstored, (stored, twice[:3], unstored[:3])


def _confirmed(worker: GroupWorker) -> list[int]:
    """The offset the worker last confirmed stored on each of its partitions (-1: none)."""
    return [p["stored_offset"] for p in worker.status()["partitions"]]


async def _settled_offsets(
    connection: ConnectionSettings, super_stream: str, group: str
) -> dict[int, int]:
    """The group's stored offset on each partition (-1: none) once reads 100 ms apart agree
    for 2 s. A store frame written just before a worker died is applied later: its tracking
    entry is read back once the nodes commit it, and on a loaded machine that took longer
    than the 0.2 s this waited before (one CI-like run read partition 2 at 6,511 while the
    successor resumed after a store of ~7,000 applied later)."""
    async with Admin(connection) as admin:
        partitions = await admin.partitions(super_stream)
        readings: list[dict[int, int]] = []
        while len(readings) < 21 or readings[-1] != readings[-21]:  # bounded by the test timeout
            offsets = {}
            for p, stream in enumerate(partitions):
                offset = await admin.stored_offset(stream, group)
                offsets[p] = -1 if offset is None else offset
            readings.append(offsets)
            await asyncio.sleep(0.1)
        return readings[-1]


def _distinct(handlers: Sequence[CountingHandler]) -> int:
    return len({(p, o) for h in handlers for _, _, p, o in h.records})


async def test_restarted_worker_resumes_after_its_stored_offset(
    config: Callable[..., WorkerConfig], connection: ConnectionSettings, super_stream: str
) -> None:
    first = CountingHandler()
    async with GroupWorker(config("w"), first):
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 100))
        await eventually(lambda: len(first) == 100 * len(SYMBOLS), "the first batch is handled")
    await publish_ticks(connection, super_stream, ticks_of_every_symbol(100, 100))

    second = CountingHandler()
    async with GroupWorker(config("w"), second):
        await eventually(lambda: len(second) >= 100 * len(SYMBOLS), "the second batch is handled")
        await asyncio.sleep(0.3)  # anything re-delivered would arrive now

    assert {seq for _, seq, _, _ in second.records} == set(range(100, 200))
    assert verdict([first, second], 200).ok, verdict([first, second], 200).summary()


async def test_a_partition_that_goes_quiet_has_its_offset_stored_at_once(
    config: Callable[..., WorkerConfig], connection: ConnectionSettings, super_stream: str
) -> None:
    handler = CountingHandler()
    # neither the tick count nor the period would store anything within the test
    cfg = config("w", store_every_ticks=1_000_000, store_every_ms=600_000)
    async with GroupWorker(cfg, handler) as worker:
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 20))
        await eventually(lambda: len(handler) == 20 * len(SYMBOLS), "the burst is handled")
        await eventually(worker.all_stored, "the quiet partitions' offsets are stored", 5)
        async with Admin(connection) as admin:
            stored = [await admin.stored_offset(p.stream, cfg.group) for p in worker._partitions]
        assert None not in stored
        assert stored == [p.processed for p in worker._partitions]
        assert sum(offset + 1 for offset in stored if offset is not None) == len(handler)


async def test_two_groups_each_see_every_tick(
    config: Callable[..., WorkerConfig], connection: ConnectionSettings, super_stream: str
) -> None:
    groups = {"a": [CountingHandler(), CountingHandler()], "b": [CountingHandler()]}
    workers = [
        GroupWorker(config(f"{group}{i}", group=group), handler)
        for group, handlers in groups.items()
        for i, handler in enumerate(handlers)
    ]
    try:
        for worker in workers:
            await worker.start()
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 150))
        for handlers in groups.values():
            await eventually(partial(all_handled, handlers, 150), "each group handled all")
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
    for name, handlers in groups.items():
        assert verdict(handlers, 150).ok, f"group {name}: {verdict(handlers, 150).summary()}"


async def test_poison_message_is_dead_lettered_and_the_worker_keeps_going(
    config: Callable[..., WorkerConfig], connection: ConnectionSettings, super_stream: str
) -> None:
    handler = CountingHandler()
    async with GroupWorker(config("w"), handler) as worker:
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 50))
        await eventually(lambda: len(handler) == 50 * len(SYMBOLS), "the first batch is handled")
        before = max(offset for _, _, partition, offset in handler.records if partition == 0)
        await write_raw(connection, f"{super_stream}-0", b"not a tick")
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(50, 50))
        await eventually(lambda: len(handler) == 100 * len(SYMBOLS), "good ticks keep coming")
        assert worker.dead_letters == 1

    assert verdict([handler], 100).ok
    [letter] = await read_dead_letters(connection, f"{super_stream}-dlq", 1)
    assert letter["original"] == b"not a tick"
    assert letter["error"].startswith("DecodeError")
    assert letter["partition"] == 0
    assert letter["stream"] == f"{super_stream}-0"
    after = min(o for _, seq, p, o in handler.records if p == 0 and seq >= 50)
    assert before < letter["offset"] < after  # offsets are not dense: tracking chunks take some
    assert letter["group"] == f"{super_stream}-g"
    assert letter["worker"] == "w"


async def test_the_default_vwap_handler_dead_letters_a_poison_message_and_counts_the_rest(
    config: Callable[..., WorkerConfig], connection: ConnectionSettings, super_stream: str
) -> None:
    # the vwap handler takes chunks undecoded (its compiled fold declines this one's chunk)
    handler = VwapHandler()
    async with GroupWorker(config("w"), handler) as worker:
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 50))
        await write_raw(connection, f"{super_stream}-0", b"not a tick")
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(50, 50))
        await eventually(lambda: worker.consumed == 100 * len(SYMBOLS), "every good tick")
        assert worker.dead_letters == 1

    assert {agg.count for agg in handler.snapshot().values()} == {100}
    assert len(handler.snapshot()) == len(SYMBOLS)
    [letter] = await read_dead_letters(connection, f"{super_stream}-dlq", 1)
    assert letter["original"] == b"not a tick"
    assert letter["error"].startswith("DecodeError")


class _FailsOn(CountingHandler):
    """Raises for one (symbol, sequence number), whatever the batch it is in."""

    def __init__(self, symbol: str, seq: int) -> None:
        super().__init__()
        self.bad = (symbol, seq)
        self.calls_with_bad = 0

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        if any((t.symbol, t.sequence_number) == self.bad for t in ticks):
            self.calls_with_bad += 1
            raise RuntimeError("cannot handle this one")
        await super().handle_batch(partition, offsets, ticks)


async def test_tick_whose_handler_keeps_failing_is_dead_lettered_after_retries(
    config: Callable[..., WorkerConfig], connection: ConnectionSettings, super_stream: str
) -> None:
    handler = _FailsOn("S03", 7)
    async with GroupWorker(config("w", handler_retries=2, retry_backoff_ms=1), handler) as worker:
        await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, 20))
        await eventually(
            lambda: len(handler) == 20 * len(SYMBOLS) - 1 and worker.dead_letters == 1,
            "every other tick is handled and the bad one dead-lettered",
        )
    # 3 calls with the whole chunk, then 3 with the tick alone
    assert handler.calls_with_bad == 6
    [letter] = await read_dead_letters(connection, f"{super_stream}-dlq", 1)
    assert letter["error"] == "RuntimeError: cannot handle this one"
    assert b'"symbol":"S03"' in letter["original"]
    assert b'"sequence_number":7,' in letter["original"]
