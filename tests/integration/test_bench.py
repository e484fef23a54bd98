"""The benchmark harnesses run end to end on small workloads, and what they report is checked
against what the broker holds (their speed figures are for `superticks bench`, never asserted
here). The fault scenarios of `bench failover` are specified in test_failover.py."""

from __future__ import annotations

import pytest

import bench.consume
import bench.publish
import cluster as cl
from bench.consume import run_consume_bench
from bench.filter import run_filter_bench
from bench.publish import run_publish_bench
from partitioning.simulator import MarketSimulator
from superticks.settings import ConnectionSettings
from superticks.streams import Admin

pytestmark = pytest.mark.cluster


@pytest.fixture
def stored_before_delete(
    monkeypatch: pytest.MonkeyPatch, connection: ConnectionSettings
) -> dict[str, dict[str, int]]:
    """What each super stream a harness deletes held just before: {super stream: {"stored":
    messages, "<group>": ...}}; the harness's own counts are checked against it."""
    seen: dict[str, dict[str, int]] = {}

    def wrap(module: object) -> None:
        original = module.delete_topology  # type: ignore[attr-defined]

        async def counting_delete(settings: ConnectionSettings, super_stream: str) -> bool:
            async with Admin(connection) as admin:
                streams = await admin.partitions(super_stream)
                ends = [await admin.last_offset(s) for s in streams]
                facts = {"stored": sum(end + 1 for end in ends)}
                group = f"{super_stream}-bench"
                stored = [await admin.stored_offset(s, group) for s in streams]
                facts["group_behind"] = sum(
                    end - (-1 if o is None else o) for end, o in zip(ends, stored, strict=True)
                )
            seen[super_stream] = facts
            result: bool = await original(settings, super_stream)
            return result

        monkeypatch.setattr(module, "delete_topology", counting_delete)

    wrap(bench.publish)
    wrap(bench.consume)
    return seen


async def test_publish_bench_rows_count_what_the_broker_stored(
    connection: ConnectionSettings,
    cluster: cl.Cluster,
    stored_before_delete: dict[str, dict[str, int]],
) -> None:
    result = await run_publish_bench(connection, count=3_000, naive_count=500, pika_count=50)

    stream_rows = [row.ticks for row in result.rows if "pika" not in row.name]
    assert sorted(f["stored"] for f in stored_before_delete.values()) == sorted(stream_rows)
    assert all(row.ticks_per_s > 0 for row in result.rows)


async def test_consume_bench_worker_consumed_the_whole_stream(
    connection: ConnectionSettings,
    cluster: cl.Cluster,
    stored_before_delete: dict[str, dict[str, int]],
) -> None:
    result = await run_consume_bench(connection, count=5_000)

    (facts,) = stored_before_delete.values()
    assert facts["stored"] == result.rows[0].ticks == 5_000
    assert facts["group_behind"] == 0  # the worker's stored offsets reach every partition's end
    assert result.rows[0].ticks_per_s > 0


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
