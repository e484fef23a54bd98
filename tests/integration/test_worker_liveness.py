"""A hung worker (SIGSTOP) is replaced within 10 s and rejoins as a standby when it wakes; a
worker whose handler is merely slow keeps its partition."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from partitioning.codec import Tick
from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from superticks.settings import ConnectionSettings
from workers.group import GroupWorker, WorkerConfig
from workers.handled import handled_path, read_handled_file
from workers.handlers import CountingHandler

pytestmark = pytest.mark.cluster

METRICS_PORT = 19_871


def _active_in_metrics(port: int, worker: str) -> bool | None:
    """What the worker's own /metrics says of partition 0 (None: no answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("superticks_partition_active{") and f'worker="{worker}"' in line:
            return line.rstrip().endswith(" 1.0")
    return None


async def _feed(connection: ConnectionSettings, ss: str, stop: asyncio.Event) -> None:
    simulator = MarketSimulator(20, seed=3)
    config = ProducerConfig(connection=connection, super_stream=ss, name=f"{ss}-feed")
    async with Producer(config) as producer:
        while not stop.is_set():
            await producer.send_batch(simulator.batch(50))
            await asyncio.sleep(0.05)


@pytest.fixture
async def one_partition(new_super_stream: Callable[[int], Awaitable[str]]) -> str:
    return await new_super_stream(1)


async def test_hung_worker_is_replaced_within_10_s_and_rejoins_as_standby(
    connection: ConnectionSettings, one_partition: str
) -> None:
    ss = one_partition
    hung = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "superticks",
        "worker",
        "--group",
        ss,
        "--name",
        "hung",
        "--handler",
        "count",
        "--super-stream",
        ss,
        "--metrics-port",
        str(METRICS_PORT),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    stop = asyncio.Event()
    feed = asyncio.create_task(_feed(connection, ss, stop))
    try:
        for _ in range(100):
            if _active_in_metrics(METRICS_PORT, "hung"):
                break
            await asyncio.sleep(0.1)
        assert _active_in_metrics(METRICS_PORT, "hung") is True
        standby = CountingHandler()
        config = WorkerConfig(
            connection=connection, super_stream=ss, group=ss, name="standby", lag_interval_s=0
        )
        async with GroupWorker(config, standby) as worker:
            await asyncio.sleep(1.0)
            assert worker.active_partitions == []
            os.kill(hung.pid, signal.SIGSTOP)
            stopped = time.monotonic()
            for _ in range(400):
                if worker.active_partitions == [0]:
                    break
                await asyncio.sleep(0.05)
            takeover = time.monotonic() - stopped
            assert worker.active_partitions == [0]
            assert takeover <= 10.0, f"takeover took {takeover:.1f} s"
            handled = len(standby)
            await asyncio.sleep(1.0)
            assert len(standby) > handled  # it handles the live feed
            os.kill(hung.pid, signal.SIGCONT)
            for _ in range(150):
                if _active_in_metrics(METRICS_PORT, "hung") is False:
                    break
                await asyncio.sleep(0.1)
            assert hung.returncode is None  # alive again
            assert _active_in_metrics(METRICS_PORT, "hung") is False  # a standby now
            assert worker.active_partitions == [0]
    finally:
        stop.set()
        await feed
        if hung.returncode is None:
            os.kill(hung.pid, signal.SIGCONT)
            hung.terminate()
        async with asyncio.timeout(30):
            await hung.wait()


class _SlowHandler(CountingHandler):
    """Takes 12 s over its first batch (awaiting, as an I/O-bound handler does)."""

    def __init__(self) -> None:
        super().__init__()
        self.slow_done = asyncio.Event()

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        if not self.slow_done.is_set():
            await asyncio.sleep(12)
            self.slow_done.set()
        await super().handle_batch(partition, offsets, ticks)


async def test_slow_handler_keeps_its_partition(
    connection: ConnectionSettings, one_partition: str
) -> None:
    ss = one_partition
    stop = asyncio.Event()
    feed = asyncio.create_task(_feed(connection, ss, stop))
    slow = _SlowHandler()
    base = {"connection": connection, "super_stream": ss, "group": ss, "lag_interval_s": 0}
    try:
        async with GroupWorker(WorkerConfig(name="slow", **base), slow) as first:
            for _ in range(50):
                if first.active_partitions == [0]:
                    break
                await asyncio.sleep(0.1)
            async with GroupWorker(WorkerConfig(name="other", **base), CountingHandler()) as other:
                async with asyncio.timeout(20):
                    await slow.slow_done.wait()
                assert first.active_partitions == [0]
                assert other.active_partitions == []
    finally:
        stop.set()
        await feed


@pytest.mark.parametrize("noticed_by", ["the worker", "the watchdog"])
async def test_a_chunk_held_through_a_freeze_is_left_to_the_successor(
    connection: ConnectionSettings, one_partition: str, tmp_path: Path, noticed_by: str
) -> None:
    """The process freezes (here: its event loop blocked) while it decodes a chunk; the broker
    drops it and activates the standby, which handles the chunk. Woken, the frozen worker must
    not hand that chunk to its handler as well, whether it notices the freeze itself or its
    subscription's watchdog runs first (the 5-minute chaos runs of seed 7 caught both)."""
    ss = one_partition
    stop = asyncio.Event()
    feed = asyncio.create_task(_feed(connection, ss, stop))
    handler = CountingHandler()
    config = WorkerConfig(
        connection=connection.model_copy(update={"heartbeat_s": 1}),
        super_stream=ss,
        group=ss,
        name="frozen",
        lag_interval_s=0,
    )
    frozen: list[range] = []
    standby: asyncio.subprocess.Process | None = None
    try:
        async with GroupWorker(config, handler) as worker:
            for _ in range(100):
                if worker.active_partitions == [0] and len(handler):
                    break
                await asyncio.sleep(0.1)
            assert worker.active_partitions == [0]
            standby = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "superticks", "worker", "--group", ss,
                "--name", "standby", "--handler", "verify", "--record-dir", str(tmp_path),
                "--super-stream", ss,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.sleep(3.0)  # it joins the group as a standby
            decode = worker._decode_each
            subscription = worker._partitions[0].subscription
            assert subscription is not None

            def freezing(messages: Sequence[bytes], first: int) -> Any:
                if not frozen:
                    frozen.append(range(first, first + len(messages)))
                    time.sleep(5.0)  # on purpose: this process is frozen
                    if noticed_by == "the watchdog":  # as its first run after the freeze does
                        assert subscription.stalled()
                return decode(messages, first)

            worker._decode_each = freezing  # type: ignore[method-assign]
            record = handled_path(tmp_path, "standby")
            for _ in range(300):
                handled_there = {
                    h.offset for h in read_handled_file(record)
                } if record.exists() else set()  # fmt: skip
                if frozen and set(frozen[0]) <= handled_there:
                    break
                await asyncio.sleep(0.1)
            assert frozen, "no chunk came to freeze on"
            assert set(frozen[0]) <= handled_there  # the successor handled it
            handled_here = {offset for *_, offset in handler.records}
            assert not handled_here & set(frozen[0])
            for _ in range(150):  # it joined the group again (a standby now): a quiet stop
                if subscription.reconnects:
                    break
                await asyncio.sleep(0.1)
            assert subscription.reconnects == 1
    finally:
        stop.set()
        await feed
        if standby is not None and standby.returncode is None:
            standby.terminate()
            async with asyncio.timeout(30):
                await standby.wait()
