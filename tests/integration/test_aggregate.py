"""The aggregator SIGKILLed mid-stream and restarted: the unified super stream holds every
venue's ticks once, each (venue, symbol) in order, with the venue and a received-at time."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable

import pytest

from partitioning.codec import decode_body, split_message
from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from superticks.errors import StreamError
from superticks.settings import ConnectionSettings
from superticks.streams import Admin
from trading.reading import read_to_end

pytestmark = pytest.mark.cluster

VENUES = ("NYSE", "CBOE")
BACKLOG = 21_000  # per venue, stored before the aggregator starts: it drains them flat out
# (both counts are multiples of 300, the feed's batch)
LIVE = 12_000  # per venue, at 3,000 ticks/s each: 4 s
RATE = 3_000
KILL_AT = 1_500  # forwarded ticks: mid-backlog, with many chunks in flight


async def feed(
    connection: ConnectionSettings,
    super_stream: str,
    simulator: MarketSimulator,
    ticks: int,
    rate: float | None = None,
    sub_entry_size: int = 1,
) -> None:
    config = ProducerConfig(
        connection=connection,
        super_stream=super_stream,
        name="venue-feed",
        sub_entry_size=sub_entry_size,
    )
    async with Producer(config) as producer:
        for _ in range(ticks // 300):
            await producer.send_batch(simulator.batch(300))
            if rate is not None:
                await asyncio.sleep(300 / rate)
        await producer.flush(30)


async def stored(connection: ConnectionSettings, super_stream: str) -> int:
    """Messages in the super stream now (0 while a node restarts)."""
    try:
        async with Admin(connection) as admin:
            return await count_in(admin, await admin.partitions(super_stream))
    except StreamError:
        return 0


async def count_in(admin: Admin, partitions: list[str]) -> int:
    """Messages in `partitions` now, asked on an open connection."""
    return sum([await admin.last_offset(partition) + 1 for partition in partitions])


def aggregator(target: str, sources: dict[str, str], group: str, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "superticks", "aggregate", "--venues",
               ",".join(VENUES), "--target", target, "--group", group, *extra]  # fmt: skip
    for venue, stream in sources.items():
        command += ["--source", f"{venue}={stream}"]
    return command


@pytest.mark.parametrize(
    ("batch", "then"),
    [(1, 1), (100, 100), (100, 1)],
    ids=["a-message-per-tick", "sub-entry-batches", "batches-then-a-message-per-tick"],
)
async def test_an_aggregator_killed_and_restarted_loses_and_duplicates_nothing(
    connection: ConnectionSettings,
    unique: str,
    new_super_stream: Callable[[int], Awaitable[str]],
    batch: int,
    then: int,
) -> None:
    # with sub-entry batches (the venue feeds' and the aggregator's), a re-forwarded chunk's
    # batches need not be the first's: each is kept or dropped whole by its last tick's id.
    # `then`: the restarted aggregator's batches (the ids go on either way)
    batching = ("--sub-entry-size", str(batch))
    target = await new_super_stream(3)
    sources = {venue: await new_super_stream(2) for venue in VENUES}
    simulators = {
        v: MarketSimulator(15, exchanges=[v], seed=i) for i, v in enumerate(VENUES, start=1)
    }
    total = len(VENUES) * (BACKLOG + LIVE)
    for venue, stream in sources.items():
        await feed(connection, stream, simulators[venue], BACKLOG, sub_entry_size=batch)
    # the first aggregator never stores its source offsets (until it stops): its successor
    # forwards again everything it forwarded, and deduplication must drop all of it
    lazy = ("--store-every-ms", "600000", "--store-every-ticks", "1000000", *batching)
    first = await asyncio.create_subprocess_exec(
        *aggregator(target, sources, f"{unique}-agg", *lazy),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    second = None
    live = None
    try:
        async with Admin(connection) as admin:  # one connection, open before: polls ms apart
            partitions = await admin.partitions(target)
            for _ in range(600):  # until the first aggregator forwards
                if await count_in(admin, partitions) > 0:
                    break
                await asyncio.sleep(0.01)
            live = asyncio.gather(
                *(feed(connection, s, simulators[v], LIVE, RATE, batch) for v, s in sources.items())
            )
            for _ in range(6000):
                if (before_kill := await count_in(admin, partitions)) >= KILL_AT:
                    break
                await asyncio.sleep(0.001)
        assert not live.done(), "the feeds ended before the kill: not mid-stream"
        os.kill(first.pid, signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        second = await asyncio.create_subprocess_exec(
            *aggregator(target, sources, f"{unique}-agg", "--sub-entry-size", str(then)),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await live
        live = None
        for _ in range(900):
            if await stored(connection, target) >= total:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # anything more would be a duplicate: give it time to show
        second.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await second.wait() == 0
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()
        if live is not None:
            await asyncio.gather(live, return_exceptions=True)
    assert KILL_AT <= before_kill < len(VENUES) * BACKLOG, f"killed after {before_kill} forwarded"

    seen: dict[tuple[str, str], list[int]] = {}
    count = 0

    def on_messages(_first: int, messages: list[bytes]) -> None:
        nonlocal count
        for message in messages:
            properties, body = split_message(message)
            tick = decode_body(body)
            assert properties["venue"] == tick.exchange
            assert str(properties["received_at"]).endswith("Z")
            seen.setdefault((tick.exchange, tick.symbol), []).append(tick.sequence_number)
            count += 1

    async with Admin(connection) as admin:
        partitions = await admin.partitions(target)
    for partition in partitions:
        await read_to_end(connection, partition, on_messages)
    assert count == total  # nothing lost, nothing twice
    for (venue, symbol), sequence in seen.items():  # each (venue, symbol) whole and in order
        assert sequence == list(range(len(sequence))), (venue, symbol)
    assert {venue for venue, _ in seen} == set(VENUES)
