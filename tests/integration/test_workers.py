"""Worker groups: single active consumer per partition, offsets that survive workers, and dead
letters, on the three-node cluster."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import pytest
from _streams import read_messages

from bench.verdict import Verdict, VerdictBuilder
from partitioning.codec import Tick, format_body
from partitioning.producer import Producer, ProducerConfig
from superticks.settings import ConnectionSettings
from superticks.streams import (
    PartitionPublisher,
    encode_publish_frame,
)
from workers.deadletter import read_dead_letter
from workers.group import GroupWorker, WorkerConfig
from workers.handlers import CountingHandler

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(60)]

SYMBOLS = [f"S{i:02d}" for i in range(24)]
T0_US = 1_790_000_000_000_000


def _ticks(first_seq: int, per_symbol: int) -> list[tuple[str, bytes]]:
    """`per_symbol` ticks of every symbol, sequence numbers from `first_seq`, interleaved."""
    out = []
    for seq in range(first_seq, first_seq + per_symbol):
        for n, symbol in enumerate(SYMBOLS):
            price = f"{100 + n}.{seq % 100:02d}"
            body = format_body(
                symbol, "XNAS", price, "10", price, "10", price, "5", str(seq * 5),
                T0_US + seq * 1000, seq,
            )  # fmt: skip
            out.append((symbol, body))
    return out


async def _publish(connection: ConnectionSettings, super_stream: str, items: Any) -> None:
    config = ProducerConfig(connection=connection, super_stream=super_stream, name=super_stream)
    async with Producer(config) as producer:
        await producer.send_batch(items)
        await producer.flush(30)


async def _eventually(check: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


def _all_handled(handlers: Sequence[CountingHandler], per_symbol: int) -> bool:
    return sum(len(h) for h in handlers) == per_symbol * len(SYMBOLS)


def _verdict(
    handlers: Sequence[CountingHandler], per_symbol: int, *, idempotent: bool = False
) -> Verdict:
    """Every tick seen once across `handlers`, in order per symbol. Each handler must have seen
    its partitions in offset order; their records are then merged in (partition, offset) order,
    the order of each symbol in its partition."""
    for handler in handlers:
        last: dict[int, int] = {}
        for _, _, partition, offset in handler.records:
            assert offset > last.get(partition, -1), f"partition {partition} out of offset order"
            last[partition] = offset
    builder = VerdictBuilder()
    for symbol in SYMBOLS:
        builder.expect(symbol, per_symbol)
    merged = sorted((r for h in handlers for r in h.records), key=lambda r: (r[2], r[3]))
    if idempotent:  # a sink keyed by (partition, offset) keeps the first of each
        merged = list({(r[2], r[3]): r for r in reversed(merged)}.values())[::-1]
    builder.observe_many((symbol, seq) for symbol, seq, _, _ in merged)
    return builder.result()


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
        await _eventually(lambda: w1.active_partitions == [0, 1, 2], "w1 holds all partitions")
        await w2.start()
        await _eventually(
            lambda: (w1.active_partitions, w2.active_partitions) == ([0, 2], [1]),
            "the second worker took one partition",
        )
        await w3.start()
        await _eventually(
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
        await _eventually(
            lambda: [w.active_partitions for w in workers] == [[0], [1], [2]], "spread"
        )
        await _publish(connection, super_stream, _ticks(0, 200))
        await _eventually(lambda: handled() == 200 * len(SYMBOLS), "the first batch is handled")
        await _eventually(lambda: all(w.all_stored() for w in workers), "offsets are stored")

        await workers[1].abort()  # dies holding partition 1, without a last store
        survivors = (workers[0], workers[2])
        await _eventually(
            lambda: any(1 in w.active_partitions for w in survivors), "partition 1 is taken over"
        )
        await _publish(connection, super_stream, _ticks(200, 200))
        await _eventually(lambda: handled() == 400 * len(SYMBOLS), "the second batch is handled")
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
    assert _verdict(handlers, 400).ok, _verdict(handlers, 400).summary()


async def test_worker_killed_under_load_loses_nothing_and_redoes_only_unstored_ticks(
    config: Callable[..., WorkerConfig], connection: ConnectionSettings, super_stream: str
) -> None:
    handlers = [CountingHandler(), CountingHandler()]
    workers = [
        GroupWorker(config(f"w{i}", store_every_ticks=500), h) for i, h in enumerate(handlers)
    ]
    try:
        for worker in workers:
            await worker.start()
        publishing = asyncio.create_task(_publish(connection, super_stream, _ticks(0, 1000)))
        await _eventually(lambda: len(handlers[1]) > 2000, "the doomed worker handled some")
        await workers[1].abort()  # mid-stream: what it handled after its last store is redone
        await publishing
        await _eventually(lambda: _distinct(handlers) == 1000 * len(SYMBOLS), "all handled")
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
    verdict = _verdict(handlers, 1000, idempotent=True)
    assert verdict.ok, verdict.summary()
    redone = sum(len(h) for h in handlers) - _distinct(handlers)
    assert redone <= 500 + 1500  # unstored: under store_every_ticks plus one chunk


def _distinct(handlers: Sequence[CountingHandler]) -> int:
    return len({(p, o) for h in handlers for _, _, p, o in h.records})


async def test_restarted_worker_resumes_after_its_stored_offset(
    config: Callable[..., WorkerConfig], connection: ConnectionSettings, super_stream: str
) -> None:
    first = CountingHandler()
    async with GroupWorker(config("w"), first):
        await _publish(connection, super_stream, _ticks(0, 100))
        await _eventually(lambda: len(first) == 100 * len(SYMBOLS), "the first batch is handled")
    await _publish(connection, super_stream, _ticks(100, 100))

    second = CountingHandler()
    async with GroupWorker(config("w"), second):
        await _eventually(lambda: len(second) >= 100 * len(SYMBOLS), "the second batch is handled")
        await asyncio.sleep(0.3)  # anything re-delivered would arrive now

    assert {seq for _, seq, _, _ in second.records} == set(range(100, 200))
    assert _verdict([first, second], 200).ok, _verdict([first, second], 200).summary()


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
        await _publish(connection, super_stream, _ticks(0, 150))
        for handlers in groups.values():
            await _eventually(partial(_all_handled, handlers, 150), "each group handled all")
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
    for name, handlers in groups.items():
        assert _verdict(handlers, 150).ok, f"group {name}: {_verdict(handlers, 150).summary()}"


async def _write_raw(connection: ConnectionSettings, stream: str, message: bytes) -> None:
    confirmed = asyncio.Event()
    publisher = PartitionPublisher(
        connection, stream, f"{stream}-raw", lambda _ids: confirmed.set(), print, print
    )
    last = await publisher.start()
    publisher.write(encode_publish_frame(0, [(last + 1, message)]))
    await publisher.drain()
    await asyncio.wait_for(confirmed.wait(), 10)
    await publisher.stop()


async def _read_dead_letters(
    connection: ConnectionSettings, stream: str, count: int
) -> list[dict[str, Any]]:
    return [read_dead_letter(m) for m in await read_messages(connection, stream, count, 10)]


async def test_poison_message_is_dead_lettered_and_the_worker_keeps_going(
    config: Callable[..., WorkerConfig], connection: ConnectionSettings, super_stream: str
) -> None:
    handler = CountingHandler()
    async with GroupWorker(config("w"), handler) as worker:
        await _publish(connection, super_stream, _ticks(0, 50))
        await _eventually(lambda: len(handler) == 50 * len(SYMBOLS), "the first batch is handled")
        before = max(offset for _, _, partition, offset in handler.records if partition == 0)
        await _write_raw(connection, f"{super_stream}-0", b"not a tick")
        await _publish(connection, super_stream, _ticks(50, 50))
        await _eventually(lambda: len(handler) == 100 * len(SYMBOLS), "good ticks keep coming")
        assert worker.dead_letters == 1

    assert _verdict([handler], 100).ok
    [letter] = await _read_dead_letters(connection, f"{super_stream}-dlq", 1)
    assert letter["original"] == b"not a tick"
    assert letter["error"].startswith("DecodeError")
    assert letter["partition"] == 0
    assert letter["stream"] == f"{super_stream}-0"
    after = min(o for _, seq, p, o in handler.records if p == 0 and seq >= 50)
    assert before < letter["offset"] < after  # offsets are not dense: tracking chunks take some
    assert letter["group"] == f"{super_stream}-g"
    assert letter["worker"] == "w"


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
        await _publish(connection, super_stream, _ticks(0, 20))
        await _eventually(
            lambda: len(handler) == 20 * len(SYMBOLS) - 1 and worker.dead_letters == 1,
            "every other tick is handled and the bad one dead-lettered",
        )
    # 3 calls with the whole chunk, then 3 with the tick alone
    assert handler.calls_with_bad == 6
    [letter] = await _read_dead_letters(connection, f"{super_stream}-dlq", 1)
    assert letter["error"] == "RuntimeError: cannot handle this one"
    assert b'"symbol":"S03"' in letter["original"]
    assert b'"sequence_number":7,' in letter["original"]
