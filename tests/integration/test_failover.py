"""Every fault scenario of `superticks bench failover`, in a short form, judged on both sides;
and deliberately broken runs that the verdict must fail (a handler that skips a tick, a fault
that did not take effect). Speed targets are `superticks bench failover`'s, never asserted here:
these tests assert the verdict and that the fault took effect."""

from __future__ import annotations

from pathlib import Path

import pytest

import cluster as cl
from bench.chaos import run_chaos
from bench.failover import (
    BUSY_DEFAULT_MS,
    SCENARIOS,
    FailoverResult,
    ScenarioOptions,
    run_scenario,
)
from superticks.settings import ConnectionSettings

pytestmark = [pytest.mark.cluster, pytest.mark.chaos]

SHORT = ScenarioOptions(rate=1_500, steady_s=1.0, recovery_s=1.0, impact_timeout_s=40.0)


def _explain(result: FailoverResult) -> str:
    return f"{result.verdict.summary()} (run dir {result.run_dir})"


# In `make test`: every fault scenario of the issue, in short form (20-40 s each for a node
# fault: the node's restart and the cluster forming again dominate). `make test-long` adds the
# busy-handler scenarios (no false failover while a handler is busy; `make test` covers that
# with test_worker_liveness's slow handler) and the chaos run.
LONG = tuple(BUSY_DEFAULT_MS)


@pytest.mark.parametrize(
    "scenario",
    [pytest.param(s, marks=pytest.mark.long) if s in LONG else s for s in SCENARIOS],
)
async def test_scenario_loses_nothing_and_its_fault_took_effect(
    scenario: str, connection: ConnectionSettings, cluster: cl.Cluster, tmp_path: Path
) -> None:
    result = await run_scenario(connection, cluster, scenario, tmp_path, SHORT)

    assert result.verdict.coverage, "a scenario always reports whether its fault took effect"
    assert result.ok, _explain(result)
    assert result.handled_again_max_s is not None
    assert result.phases[0]["phase"] == "steady"


async def test_a_handler_that_skips_a_tick_fails_the_verdict(
    connection: ConnectionSettings, cluster: cl.Cluster, tmp_path: Path
) -> None:
    options = ScenarioOptions(rate=1_000, steady_s=1.0, recovery_s=0.5, drop_offset=5)

    result = await run_scenario(connection, cluster, "worker-kill", tmp_path, options)

    assert not result.ok
    assert result.verdict.unhandled == 3  # offset 5 of each partition
    assert result.verdict.stream.ok


async def test_killing_a_worker_that_is_active_nowhere_is_a_fault_without_effect(
    connection: ConnectionSettings, cluster: cl.Cluster, tmp_path: Path
) -> None:
    options = ScenarioOptions(rate=1_000, steady_s=1.0, recovery_s=0.5, workers=4, worker="idle")

    result = await run_scenario(connection, cluster, "worker-kill", tmp_path, options)

    assert result.verdict.coverage["worker_was_active"] is False
    assert not result.ok


@pytest.mark.parametrize(
    ("scenario", "took_effect"),
    [
        ("node-kill", "node_led_a_partition"),  # killing a node that leads no partition
        # freezing one that leads no coordinator (`make test-long`: the kill above and the
        # idle worker's test already show a fault without effect failing the verdict)
        pytest.param("node-blip", "node_led_the_stream_coordinator", marks=pytest.mark.long),
    ],
)
async def test_a_node_fault_on_a_node_that_leads_nothing_is_a_fault_without_effect(
    scenario: str, took_effect: str, connection: ConnectionSettings, cluster: cl.Cluster,
    tmp_path: Path,
) -> None:  # fmt: skip
    # one partition: at least one of the three nodes leads neither it nor the coordinator
    options = ScenarioOptions(
        rate=500, steady_s=0.5, recovery_s=0.5, partitions=1, node="non-leader"
    )

    result = await run_scenario(connection, cluster, scenario, tmp_path, options)

    assert result.verdict.coverage[took_effect] is False
    assert not result.ok


@pytest.mark.long
async def test_a_short_chaos_run_logs_each_fault_and_judges_both_sides(
    connection: ConnectionSettings, cluster: cl.Cluster, tmp_path: Path
) -> None:
    result = await run_chaos(
        connection,
        cluster,
        tmp_path,
        duration_s=10.0,
        faults=["worker-kill", "worker-hang"],
        every_s=3.0,
        hold_s=1.0,
        seed=0,  # draws worker-hang, then worker-kill
        rate=1_000,
    )

    assert [f["kind"] for f in result.faults][:2] == ["worker-hang", "worker-kill"]
    assert all("at_s" in f and "held_s" in f for f in result.faults)
    assert result.verdict.coverage["faults_injected"]
    assert result.verdict.stream.ok, result.verdict.summary()
    assert result.verdict.unhandled == 0, result.verdict.summary()
    assert result.verdict.handled_twice_other == 0, result.verdict.summary()
