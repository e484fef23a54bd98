"""`superticks bench failover`: how long a partition goes unhandled when a worker or a node dies.

One run, on a fresh 3-partition super stream with a live feed (the producer in this process,
`rate` ticks/s) and a group of two worker *processes* (`superticks worker`, metrics on
loopback ports):

1. **worker kill**: SIGKILL the worker that is active on partition 0; measure the time until
   the other worker's `superticks_consumed_total{partition="0"}` moves again (its metrics are
   polled every 10 ms).
2. **node kill**: SIGKILL (`docker kill`) the node leading partition 1; measure the producer's
   longest confirm stall on any partition and the time until a worker's consumed count of
   partition 1 moves again; then start the node again.
3. **verdict**: the feed stops, the surviving worker catches up, and a replay of the whole
   super stream is judged against what the feed published: per symbol, sequence numbers
   0..n-1 exactly once (lost = duplicated = 0). The group's stored offsets must reach the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import cluster as cl
from bench.verdict import VerdictBuilder
from partitioning.model import StreamConfig
from partitioning.producer import Producer, ProducerConfig
from partitioning.router import Router
from partitioning.simulator import MarketSimulator
from partitioning.topology import create_topology, delete_topology
from superticks.settings import ConnectionSettings
from superticks.streams import Admin
from workers.replay import replay_all

__all__ = ["FailoverBench", "run_failover_bench"]

_PORTS = (19_901, 19_902)


@dataclass(frozen=True, slots=True)
class FailoverBench:
    worker_takeover_s: float
    node_killed: str
    node_takeover_s: float
    producer_max_stall_s: float
    published: int
    lost: int
    duplicated: int
    reordered: int
    group_caught_up: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scrape(port: int) -> dict[tuple[str, str], float]:
    """{(metric, partition): value} of a worker's /metrics; {} when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=0.5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    values: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("#") or "partition=" not in line:
            continue
        name = line.split("{", 1)[0]
        partition = line.split('partition="', 1)[1].split('"', 1)[0]
        values[(name, partition)] = float(line.rsplit(" ", 1)[1])
    return values


def _consumed(port: int, partition: int) -> float:
    return _scrape(port).get(("superticks_consumed_total", str(partition)), 0.0)


def _active(port: int, partition: int) -> bool:
    return _scrape(port).get(("superticks_partition_active", str(partition)), 0.0) == 1.0


async def _handled_beyond(port: int, partition: int, count: float, started: float) -> float:
    """Seconds from `started` until the worker on `port` has handled more than `count` ticks of
    `partition`: a tick published after `started` went all the way through."""
    while time.monotonic() < started + 60:
        if _consumed(port, partition) > count:
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    return float("inf")


async def run_failover_bench(
    settings: ConnectionSettings, cluster: cl.Cluster, *, rate: float = 5_000, symbols: int = 100
) -> FailoverBench:
    ss = f"bench-{uuid.uuid4().hex[:6]}-failover"
    group = f"{ss}-group"
    await create_topology(settings, StreamConfig(super_stream=ss, partitions=3))
    simulator = MarketSimulator(symbols, seed=11)
    published: dict[str, int] = {}
    per_partition = [0, 0, 0]
    router = Router(3)
    stop_feed = asyncio.Event()
    config = ProducerConfig(connection=settings, super_stream=ss, name=f"{ss}-feed")
    producer = Producer(config)
    await producer.start()

    async def feed() -> None:
        per_step = max(1, int(rate / 100))
        while not stop_feed.is_set():
            items = simulator.batch(per_step)
            for symbol, _ in items:
                published[symbol] = published.get(symbol, 0) + 1
                per_partition[router.route(symbol)] += 1
            await producer.send_batch(items)
            await asyncio.sleep(0.01)

    workers: dict[int, asyncio.subprocess.Process] = {}
    feeding = asyncio.create_task(feed())
    try:
        for index, port in enumerate(_PORTS):
            workers[port] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "superticks.cli.main", "worker", "--group", group,
                "--name", f"w{index}", "--handler", "count", "--super-stream", ss,
                "--metrics-port", str(port),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.sleep(1.0)  # registration order decides who is active where
        for _ in range(100):
            if any(_active(p, 0) for p in _PORTS) and all(_scrape(p) for p in _PORTS):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)

        # 1. worker kill
        victim = next(p for p in _PORTS if _active(p, 0))
        survivor = next(p for p in _PORTS if p != victim)
        # The survivor has handled nothing of partition 0: its first tick there is the takeover.
        workers[victim].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        worker_takeover = await _handled_beyond(survivor, 0, _consumed(survivor, 0), killed_at)
        await workers[victim].wait()

        # 2. node kill: the leader of partition 1
        async with Admin(settings) as admin:
            leader = (await admin.info(f"{ss}-1")).leader
        node = next(n for n in cl.NODES if leader.endswith(f":{n.stream_port}"))
        await asyncio.sleep(1.0)
        stall_before = producer.metrics.max_stall_s
        producer.metrics.max_stall_s = 0.0
        sent_before = per_partition[1]
        await asyncio.to_thread(cl.kill, cluster, node.name)
        killed_at = time.monotonic()
        node_takeover = await _handled_beyond(survivor, 1, sent_before, killed_at)
        max_stall = 0.0
        for _ in range(300):  # every partition confirming again, for 3 s
            max_stall = max(max_stall, producer.stall_s())
            await asyncio.sleep(0.01)
        max_stall = max(max_stall, producer.metrics.max_stall_s)
        producer.metrics.max_stall_s = max(stall_before, max_stall)
        await asyncio.to_thread(cl.restart, cluster, node.name)

        # 3. verdict
        stop_feed.set()
        await feeding
        await producer.flush(120)
        caught_up = await _group_caught_up(settings, ss, group)
        result = await replay_all(settings, ss)
        verdict = VerdictBuilder()
        for symbol, count in published.items():
            verdict.expect(symbol, count)
        for ticks in result.ticks.values():
            for tick in ticks:
                verdict.observe(tick.symbol, tick.sequence_number)
        judged = verdict.result()
    finally:
        stop_feed.set()
        with contextlib.suppress(BaseException):
            await feeding
        await producer.stop()
        for process in workers.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 30)
        await delete_topology(settings, ss)
        async with Admin(settings) as admin:
            await admin.delete_stream(f"{ss}-dlq")  # the workers' dead-letter stream
    return FailoverBench(
        worker_takeover_s=round(worker_takeover, 3),
        node_killed=node.name,
        node_takeover_s=round(node_takeover, 3),
        producer_max_stall_s=round(max_stall, 3),
        published=sum(published.values()),
        lost=judged.lost,
        duplicated=judged.duplicated,
        reordered=judged.reordered,
        group_caught_up=caught_up,
    )


async def _group_caught_up(settings: ConnectionSettings, ss: str, group: str) -> bool:
    """Whether the group's stored offset reaches each partition's end (within 30 s)."""
    async with Admin(settings) as admin:
        streams = await admin.partitions(ss)
        ends = {s: await admin.last_offset(s) for s in streams}
        for _ in range(300):
            stored = {s: await admin.stored_offset(s, group) for s in streams}
            # offset-tracking records sit in the stream too: the end may be a few past the last
            # tick, so "caught up" is within a handful of offsets of the end
            if all(v is not None and v >= ends[s] - 5 for s, v in stored.items()):
                return True
            await asyncio.sleep(0.1)
    return False
