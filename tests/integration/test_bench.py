"""The benchmark harnesses run end to end on small workloads, and what they report is checked
against what the broker holds (their speed figures are for `superticks bench`, never asserted
here). The fault scenarios of `bench failover` are specified in test_failover.py."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

import cluster as cl
from bench.cliworker import stored_offsets
from bench.consume import run_consume_bench
from bench.filter import run_filter_bench
from bench.latency import LatencyBench, _Probe, run_latency_bench
from bench.publish import run_publish_bench
from bench.scaling import run_scaling_bench
from bench.trading import bench_aggregate
from partitioning.simulator import MarketSimulator
from superticks.settings import ConnectionSettings
from superticks.streams import Admin

pytestmark = pytest.mark.cluster


async def test_publish_bench_gives_every_contender_the_same_ticks_and_reads_them_back(
    connection: ConnectionSettings, cluster: cl.Cluster
) -> None:
    result = await run_publish_bench(connection, count=2_000, warmup=300, rounds=2)
    names = [row.name.split(" ")[0] for row in result.rows]
    assert names[:2] == ["ceiling:", "superticks"]
    assert {"limit:", "naive"} <= set(names)
    # what each contender's streams hold in every round, counted by a reader: warm-up + timed
    assert [row.stored for row in result.rows] == [2_300] * len(result.rows)
    assert all(row.ticks == 2_000 and row.ticks_per_s > 0 for row in result.rows)
    # every contender ran in both rounds, and the ratio pairs them
    assert all(len(row.rates) == 2 and min(row.rates) > 0 for row in result.rows)
    assert len(result.vs_ceiling_rounds) == 2
    assert result.vs_ceiling > 0


async def test_consume_bench_reads_every_tick_with_each_reader(
    connection: ConnectionSettings, cluster: cl.Cluster
) -> None:
    result = await run_consume_bench(connection, count=5_000, rounds=2)
    names = [row.name.split(" ")[0] for row in result.rows]
    assert names[:4] == ["raw", "superticks", "parse", "worker"]
    # counts read back in every round (the worker joined a fresh group each round): the
    # readers' own tallies, the worker process's JSON summary
    assert [row.ticks for row in result.rows] == [5_000] * len(result.rows)
    assert all(len(row.rates) == 2 and min(row.rates) > 0 for row in result.rows)
    worker = result.worker
    assert worker.startup_s is not None
    assert worker.startup_s > 0
    assert result.worker_vs_raw > 0
    assert result.parse_vs_raw > 0
    assert result.machinery_vs_raw > 0


async def test_latency_bench_times_every_tick_it_created_at_the_worker(
    connection: ConnectionSettings, cluster: cl.Cluster
) -> None:
    result = await _short_latency_run(connection, plain_reader=True)
    assert result.max_rate > 0
    (step,) = result.steps
    # the probe worker recorded exactly the ticks the feed created in the window
    assert step.sent > 0
    assert step.handled == step.sent
    assert step.confirm_ms["count"] == step.sent
    assert 0 < step.end_to_end_ms["p50"] <= step.end_to_end_ms["p99"]
    # every recorded tick's time split into the probe's three stages
    assert list(step.stages_ms) == ["to leader", "leader to worker", "in worker"]
    assert all(stage["count"] == step.sent for stage in step.stages_ms.values())
    assert step.clock_skewed == 0  # the compose nodes share this host's clock
    assert step.worker_loop_lag_ms["count"] > 0  # the worker's event loop, watched meanwhile
    # and its CPU (Linux' scheduler statistics): it ran, and waited for a core or not
    assert step.worker_ran is not None
    assert step.worker_ran > 0
    assert step.worker_waited is not None
    assert step.worker_waited >= 0
    # the plain reader timed the window's chunks too (by the chunks' timestamps: the ticks
    # made at the window's edges may fall into chunks stamped on the other side of them)
    assert 0.5 * step.sent <= step.plain_reader_ms["count"] <= 1.5 * step.sent
    # and how the whole machine's CPU went in the window (the feed and the cluster ran: busy)
    assert step.machine_cpu is not None
    assert step.machine_cpu["busy"] > 0
    assert sum(step.machine_cpu.values()) == pytest.approx(1, abs=0.01)


async def test_latency_bench_with_sub_entry_batches_times_every_tick_too(
    connection: ConnectionSettings, cluster: cl.Cluster
) -> None:
    (step,) = (await _short_latency_run(connection, sub_entry_size=50)).steps
    # the worker read each batch's ticks and their stamps, every one of them once
    assert step.sent > 0
    assert step.handled == step.sent
    assert all(stage["count"] == step.sent for stage in step.stages_ms.values())


async def _short_latency_run(connection: ConnectionSettings, **options: Any) -> LatencyBench:
    """The latency bench in short: a 3,000-tick flood, then one step at 50% of its max."""
    return await run_latency_bench(
        connection,
        duration_s=1.0,
        warmup_s=0.5,
        flood=3_000,
        shares=(0.5,),
        fixed_rates=(),
        **options,
    )


async def test_the_latency_probe_runs_in_its_own_session_and_stops_when_its_owner_is_gone(
    connection: ConnectionSettings, super_stream: str
) -> None:
    probe = _Probe(connection, super_stream)
    await probe.start()
    try:
        async with asyncio.timeout(60):
            await probe.ready.wait()
        assert probe.process is not None
        assert os.getsid(probe.process.pid) == probe.process.pid  # a session of its own
        assert probe.process.stdin is not None
        probe.process.stdin.close()  # as when the bench dies: the probe's stdin ends
        async with asyncio.timeout(30):
            assert await probe.process.wait() == 0  # stopped gracefully
        assert probe._reader is not None
        async with asyncio.timeout(5):
            await probe._reader
        assert probe.final is not None  # with its final report
    finally:
        await probe.stop()


async def test_the_benches_offset_reader_reconnects_when_its_connection_is_gone(
    connection: ConnectionSettings, stream: str, unique: str
) -> None:
    async with Admin(connection) as admin:
        await admin.store_offset(stream, unique, 7)
        await admin.stop()  # as when a node restarts under a bench: the connection is gone
        assert await stored_offsets(admin, [stream], unique, retry_s=10) == [7]


async def test_scaling_bench_drains_and_the_workers_handled_every_tick(
    connection: ConnectionSettings, cluster: cl.Cluster
) -> None:
    result = await run_scaling_bench(
        connection, rate=2_000, duration_s=1.0, partitions=(3,), workers=(2,)
    )
    (run,) = result.runs
    assert run.published > 0
    assert run.handled == run.published  # the two worker processes' own JSON summaries
    assert run.drain_s is not None
    assert len(run.worker_cpu_s) == 2


async def test_filter_bench_the_filter_saves_messages_and_delivers_every_match(
    connection: ConnectionSettings, cluster: cl.Cluster
) -> None:
    items = MarketSimulator(50, seed=0, zipf_s=0.0).batch(5_000)  # what the bench publishes
    symbol = items[0][0]
    matching = sum(1 for s, _ in items if s == symbol)

    result = await run_filter_bench(connection, count=5_000)

    unfiltered, filtered = (read.received for read in result.reads)
    assert (result.symbol, result.matching) == (symbol, matching)
    assert unfiltered == result.partition_ticks  # without the filter: the whole partition
    assert filtered < unfiltered  # with it: strictly fewer
    assert all(read.delivered == matching for read in result.reads)


async def test_aggregate_bench_forwards_every_fed_tick_and_times_each_stage(
    connection: ConnectionSettings,
) -> None:
    result = await bench_aggregate(connection, venues=2, rate=1_000, seconds=2.0, symbols=10)
    # `forwarded` is what the unified super stream holds, counted from its partitions' offsets
    assert result["sent"] >= 2 * 1_000 * 2 * 0.9
    assert result["forwarded"] == result["sent"]
    assert result["lossless"] is True
    for stage in ("lag_s", "forward_s", "feed_confirm_s"):
        figures = result[stage]
        assert figures["p50"] is not None, stage
        assert 0 <= figures["p50"] <= figures["p99"] <= figures["max"], stage
    # the lag runs from the tick's creation, so it includes the feed's own confirm
    assert result["lag_s"]["max"] >= result["feed_confirm_s"]["p50"]
