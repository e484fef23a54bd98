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


async def test_publish_bench_reports_every_contender(
    connection: ConnectionSettings, cluster: cl.Cluster
) -> None:
    result = await run_publish_bench(connection, count=3_000, naive_count=500, pika_count=50)
    assert [row.ticks for row in result.rows] == [3_000, 500, 50, 3_000, 3_000]
    assert all(row.ticks_per_s > 0 for row in result.rows)


async def test_consume_bench_times_a_worker_over_every_tick(
    connection: ConnectionSettings, cluster: cl.Cluster
) -> None:
    result = await run_consume_bench(connection, count=5_000)
    assert result.rows[0].ticks == 5_000
    assert result.rows[0].ticks_per_s > 0


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
