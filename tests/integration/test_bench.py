"""The benchmark harnesses run end to end on small workloads and judge losslessly (their speed
figures are for `superticks bench`, never asserted here)."""

from __future__ import annotations

import pytest

import cluster as cl
from bench.consume import run_consume_bench
from bench.failover import run_failover_bench
from bench.filter import run_filter_bench
from bench.publish import run_publish_bench
from superticks.settings import ConnectionSettings

pytestmark = pytest.mark.cluster


async def test_publish_bench_gives_every_contender_the_same_ticks_and_reads_them_back(
    connection: ConnectionSettings, cluster: cl.Cluster
) -> None:
    result = await run_publish_bench(connection, count=2_000, warmup=300)
    names = [row.name.split(" ")[0] for row in result.rows]
    assert names[:2] == ["ceiling:", "superticks"]
    assert {"limit:", "naive"} <= set(names)
    # what each contender's streams hold, counted by a reader: warm-up + timed ticks
    assert [row.stored for row in result.rows] == [2_300] * len(result.rows)
    assert all(row.ticks == 2_000 and row.ticks_per_s > 0 for row in result.rows)
    assert result.vs_ceiling > 0


async def test_consume_bench_reads_every_tick_with_each_reader(
    connection: ConnectionSettings, cluster: cl.Cluster
) -> None:
    result = await run_consume_bench(connection, count=5_000)
    names = [row.name.split(" ")[0] for row in result.rows]
    assert names[:2] == ["raw", "superticks"]
    # counts read back: the readers' own tallies, the worker process's JSON summary
    assert [row.ticks for row in result.rows] == [5_000] * len(result.rows)
    worker = result.worker
    assert worker.startup_s is not None
    assert worker.startup_s > 0
    assert result.worker_vs_raw > 0


async def test_filter_bench_receives_no_more_with_the_filter_than_without(
    connection: ConnectionSettings, cluster: cl.Cluster
) -> None:
    result = await run_filter_bench(connection, count=5_000)
    unfiltered, filtered = (read.received for read in result.reads)
    assert filtered <= unfiltered
    assert all(read.delivered == result.matching for read in result.reads)


@pytest.mark.chaos
async def test_failover_bench_loses_and_duplicates_nothing(
    connection: ConnectionSettings, cluster: cl.Cluster
) -> None:
    result = await run_failover_bench(connection, cluster, rate=2_000)
    assert (result.lost, result.duplicated, result.reordered) == (0, 0, 0)
    assert result.group_caught_up
    assert result.worker_takeover_s != float("inf")
    assert result.node_takeover_s != float("inf")
