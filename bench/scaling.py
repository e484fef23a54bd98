"""`superticks bench scaling`: a fixed offered rate against 1, 2, 3 workers and 3, 6, 12 partitions.

For each (partitions, workers): a fresh super stream, `workers` separate `superticks worker
--handler vwap` processes of one group (CLI defaults; the feed starts once the group is active
on every partition), then the producer in this process offers `rate` ticks/s for `duration_s`
(paced, one batch per 10 ms). Every 0.5 s the bench samples what was published (confirmed) and
what the group handled (the offsets it stored, read from the broker: nothing is asked of the
workers), so lag = published - handled. When the feed stops, the backlog drains: the time until
the group's stored offsets reach every partition's last tick is the drain time.

Per configuration: handled rate during the feed, lag at its end (the backlog), drain seconds,
and each worker's CPU seconds: handled ticks per worker CPU-second is the per-core rate the
capacity model (docs/capacity.md) builds on. The workers' own JSON summaries must add up to
every published tick (`complete`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.cliworker import (
    CliWorker,
    active_partitions,
    cpu_seconds,
    free_port,
    stored_offsets,
)
from bench.report import Progress
from partitioning.model import StreamConfig
from partitioning.producer import Producer, ProducerConfig
from partitioning.router import Router
from partitioning.simulator import MarketSimulator
from partitioning.topology import create_topology, delete_topology
from superticks.settings import ConnectionSettings
from superticks.streams import Admin

__all__ = ["ScalingBench", "ScalingRun", "run_scaling_bench"]

_SAMPLE_S = 0.5
_TICK_S = 0.01


@dataclass(frozen=True, slots=True)
class ScalingRun:
    partitions: int
    workers: int
    offered_per_s: float
    published_per_s: float  # confirmed during the feed / its duration
    handled_per_s: float  # handled during the feed / its duration
    backlog: int  # sent but not handled when the feed stopped
    max_lag: int
    drain_s: float | None  # backlog to zero after the feed stopped (None: not within the limit)
    published: int
    handled: int  # the workers' own consumed totals (JSON summaries), summed
    worker_cpu_s: list[float]
    ticks_per_cpu_s: float  # handled / the workers' CPU seconds: the per-core rate
    series: list[tuple[float, int, int]]  # (seconds since the feed started, published, handled)

    @property
    def complete(self) -> bool:
        return self.handled == self.published > 0


@dataclass(frozen=True, slots=True)
class ScalingBench:
    rate: float
    duration_s: float
    runs: list[ScalingRun]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "duration_s": self.duration_s,
            "runs": [
                {
                    **{k: getattr(r, k) for k in ScalingRun.__dataclass_fields__},
                    "complete": r.complete,
                }
                for r in self.runs
            ],
        }


async def _wait_active(ports: Sequence[int], partitions: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await asyncio.gather(*(asyncio.to_thread(active_partitions, p) for p in ports))
        if sum(found) == partitions:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the group did not become active on all {partitions} partitions")


async def _one(
    settings: ConnectionSettings,
    partitions: int,
    workers: int,
    rate: float,
    duration_s: float,
    drain_limit_s: float,
    simulator: MarketSimulator,
) -> ScalingRun:
    ss = f"bench-{uuid.uuid4().hex[:6]}-scaling"
    group = f"{ss}-group"
    config = StreamConfig(super_stream=ss, partitions=partitions)
    await create_topology(settings, config)
    router = Router(partitions)
    per_partition = [0] * partitions
    group_workers: list[CliWorker] = []
    try:
        ports = [free_port() for _ in range(workers)]
        for i, port in enumerate(ports):
            worker = CliWorker(settings, ss, group, f"w{i}", extra=("--metrics-port", str(port)))
            await worker.start()
            group_workers.append(worker)
            await asyncio.sleep(0.5)  # registration order decides who is active where
        await _wait_active(ports, partitions)
        cpu_before = [cpu_seconds(w.pid) for w in group_workers]
        streams = config.partition_names()
        producer_config = ProducerConfig(connection=settings, super_stream=ss, name=f"{ss}-feed")
        series: list[tuple[float, int, int]] = []
        async with Admin(settings) as admin, Producer(producer_config) as producer:

            async def handled_now() -> int:
                stored = await stored_offsets(admin, streams, group)
                return sum(min(s + 1, n) for s, n in zip(stored, per_partition, strict=True))

            started = time.monotonic()
            next_sample = started
            sent = 0
            while (elapsed := time.monotonic() - started) < duration_s:
                due = int(rate * elapsed) - sent
                if due > 0:
                    batch = simulator.batch(due)
                    for symbol, _ in batch:
                        per_partition[router.route(symbol)] += 1
                    await producer.send_batch(batch)
                    sent += due
                if time.monotonic() >= next_sample:
                    series.append(
                        (round(elapsed, 2), producer.metrics.confirmed, await handled_now())
                    )
                    next_sample += _SAMPLE_S
                await asyncio.sleep(_TICK_S)
            feed_s = time.monotonic() - started
            confirmed_at_end = producer.metrics.confirmed
            handled_at_end = await handled_now()
            series.append((round(feed_s, 2), confirmed_at_end, handled_at_end))
            backlog = sent - handled_at_end
            await producer.flush(120)
            drain_s: float | None = None
            while time.monotonic() - started - feed_s < drain_limit_s:
                handled = await handled_now()
                now = time.monotonic() - started
                if now >= series[-1][0] + _SAMPLE_S:
                    series.append((round(now, 2), sent, handled))
                if handled >= sent:
                    drain_s = round(now - feed_s, 2)
                    series.append((round(now, 2), sent, handled))
                    break
                await asyncio.sleep(0.1)
        for worker in group_workers:
            if not worker.running:  # its CPU time is gone with it: the run is void
                summary = await worker.stop()
                failure = (summary or {}).get("failure") or "no summary printed"
                raise RuntimeError(
                    f"worker {worker.name} exited during the {partitions}-partition, "
                    f"{workers}-worker run ({failure}): re-run the bench"
                )
        cpu = [
            cpu_seconds(w.pid) - before for w, before in zip(group_workers, cpu_before, strict=True)
        ]
    finally:
        summaries = [await w.stop() for w in group_workers]
        await delete_topology(settings, ss)
        async with Admin(settings) as admin:
            await admin.delete_stream(f"{ss}-dlq")
    consumed = sum(int((s or {}).get("consumed", 0)) for s in summaries)
    return ScalingRun(
        partitions=partitions,
        workers=workers,
        offered_per_s=rate,
        published_per_s=round(confirmed_at_end / feed_s, 1),
        handled_per_s=round(handled_at_end / feed_s, 1),
        backlog=backlog,
        max_lag=max((p - h for _, p, h in series), default=0),
        drain_s=drain_s,
        published=sent,
        handled=consumed,
        worker_cpu_s=[round(c, 2) for c in cpu],
        ticks_per_cpu_s=round(consumed / sum(cpu), 1) if sum(cpu) > 0 else 0.0,
        series=series,
    )


async def run_scaling_bench(
    settings: ConnectionSettings,
    *,
    rate: float = 60_000.0,
    duration_s: float = 10.0,
    partitions: Sequence[int] = (3, 6, 12),
    workers: Sequence[int] = (1, 2, 3),
    drain_limit_s: float = 60.0,
    symbols: int = 200,
    seed: int = 0,
    show_progress: bool = False,
) -> ScalingBench:
    runs = []
    plan = [(p, w) for p in partitions for w in workers if w <= p]
    simulator = MarketSimulator(symbols, seed=seed, realtime=True)
    with Progress("scaling", len(plan), enabled=show_progress) as bar:
        for n, (p, w) in enumerate(plan):
            bar.update(n, f"{p} partitions, {w} workers")
            runs.append(await _one(settings, p, w, rate, duration_s, drain_limit_s, simulator))
    return ScalingBench(rate=rate, duration_s=duration_s, runs=runs)
