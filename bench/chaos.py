"""`superticks chaos`: random faults, seeded, while a live feed and a worker group run.

Every `every_s` seconds one fault drawn from `faults` (with `random.Random(seed)`: the same seed
gives the same faults on the same targets) hits a random node or a random running worker, is
held for `hold_s`, then undone (the node started, unpaused or reconnected and the cluster whole
again; a frozen worker continued; a killed worker replaced). One fault at a time: the cluster
never loses its majority. Each fault is logged with its times. At the end the feed stops, the
group catches up, and the verdict of both sides is taken (`bench.verify`), with the worst
unavailability (the longest time a partition went unhandled) and the producer's longest wait
for a confirm.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cluster as cl
from bench.faultrun import FaultRun
from bench.verdict import RunVerdict
from superticks.settings import ConnectionSettings

__all__ = ["FAULTS", "ChaosResult", "describe_gap", "draw", "run_chaos"]

FAULTS = ("kill", "pause", "partition", "restart", "worker-kill", "worker-hang")
NODE_FAULTS = ("kill", "pause", "partition", "restart")


@dataclass(frozen=True)
class ChaosResult:
    seed: int
    duration_s: float
    verdict: RunVerdict
    faults: list[dict[str, Any]]
    unavailability_s: float
    producer_max_gap_s: float
    producer_reconnects: int
    phases: list[dict[str, Any]]
    run_dir: str
    worst_gap: dict[str, Any] = field(default_factory=dict)
    """Where the worst unavailability was: ``partition``, ``from_s``, ``to_s`` (from the run's
    start) and the ``faults`` held or healing meanwhile (`bench.phases.faults_during`)."""

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seed": self.seed,
            "duration_s": self.duration_s,
            "worst_unavailability_s": self.unavailability_s,
            "worst_gap": self.worst_gap,
            "producer_max_gap_s": self.producer_max_gap_s,
            "producer_reconnects": self.producer_reconnects,
            "faults": self.faults,
            "verdict": self.verdict.to_dict(),
            "phases": self.phases,
            "run_dir": self.run_dir,
        }


def describe_gap(gap: dict[str, Any]) -> str:
    """`ChaosResult.worst_gap` in words: "partition 1, 261.8-294.0 s: pause rabbit1 at
    261.7 s, worker-hang w3 at 281.9 s" (or "no fault held or healing")."""
    if not gap:
        return ""
    faults = ", ".join(f"{f['kind']} {f['target']} at {f['at_s']:.1f} s" for f in gap["faults"])
    return (
        f"partition {gap['partition']}, {gap['from_s']:.1f}-{gap['to_s']:.1f} s: "
        f"{faults or 'no fault held or healing'}"
    )


async def run_chaos(
    settings: ConnectionSettings,
    cluster: cl.Cluster,
    run_dir: Path,
    *,
    duration_s: float,
    faults: list[str],
    every_s: float,
    seed: int,
    rate: float = 2_000.0,
    hold_s: float | None = None,
    progress: Callable[[str], None] | None = None,
    keep_streams: bool = False,
) -> ChaosResult:
    """Run random faults for `duration_s` (see the module docstring) and judge the run."""
    unknown = [f for f in faults if f not in FAULTS]
    if unknown or not faults:
        raise ValueError(f"unknown faults {unknown}: choose from {', '.join(FAULTS)}")
    rng = random.Random(seed)
    hold = hold_s if hold_s is not None else min(15.0, every_s * 0.6)
    say = progress or (lambda _line: None)
    run = FaultRun(settings, cluster, run_dir, rate=rate, label="chaos", keep_streams=keep_streams)
    async with run:
        started = time.monotonic()
        next_at = started + every_s
        reconnects = run.feed.reconnects
        hit_active: list[bool] = []
        number = 0
        while next_at < started + duration_s:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            number += 1
            kind, target = draw(rng, faults, run.workers.running())
            run.mark(f"fault{number}:{kind}")
            if kind in NODE_FAULTS:
                entry = await _node_fault(run, kind, target, hold)
            else:
                entry = await _worker_fault(run, kind, target, hold)
                hit_active.append(bool(entry["partitions"]))
            run.mark("steady")
            say(
                f"{entry['at_s']:>8.1f} s  {kind:12} {target:8} held {entry['held_s']:.1f} s, "
                f"healed after {entry['healed_after_s']:.1f} s"
            )
            next_at = max(next_at + every_s, time.monotonic())
        run.mark("recovery")
        await run.wait_handled_again(time.time_ns(), timeout_s=60.0)
        run.coverage["faults_injected"] = number > 0
        if any(f["kind"] in NODE_FAULTS for f in run.faults):
            run.coverage["producer_reconnected"] = run.feed.reconnects > reconnects
        if hit_active:
            run.coverage["a_worker_fault_hit_an_active_worker"] = any(hit_active)
        verdict, figures = await run.finish()
    figures.pop("handled")
    return ChaosResult(
        seed=seed,
        duration_s=duration_s,
        verdict=verdict,
        faults=run.faults,
        unavailability_s=figures["unavailability_s"],
        producer_max_gap_s=figures["producer_max_gap_s"],
        producer_reconnects=figures["producer_reconnects"],
        phases=figures["phases"],
        run_dir=str(run_dir),
        worst_gap=figures["worst_gap"],
    )


def draw(rng: random.Random, faults: Sequence[str], workers: Iterable[str]) -> tuple[str, str]:
    """The next fault and its target: a node for a node fault, one of `workers` (by name,
    sorted) for a worker fault. The same generator state gives the same draw."""
    kind = rng.choice(list(faults))
    if kind in NODE_FAULTS:
        return kind, rng.choice(cl.NODES).name
    return kind, rng.choice(sorted(workers))


async def _node_fault(run: FaultRun, kind: str, node: str, hold: float) -> dict[str, Any]:
    leaders = await run.leaders()
    led = [p for p, n in leaders.items() if n == node]
    stored = await run.stored_offsets()
    at = time.time_ns()
    if kind == "restart":
        down = await run.restart_node(node)
        run.node_crash_windows(down, stored, f"restart {node}")
    else:
        inject = {"kill": run.kill_node, "pause": run.pause_node, "partition": run.cut_node}
        await inject[kind](node)
        run.node_crash_windows(time.time_ns(), stored, f"{kind} {node}")
        await asyncio.sleep(hold)
    held = time.time_ns()
    await run.heal_node(node)
    healed = time.time_ns()
    run.log_fault(
        kind,
        node,
        at,
        led=led,
        held_s=round((held - at) / 1e9, 3),
        healed_after_s=round((healed - at) / 1e9, 3),
    )
    return run.faults[-1]


async def _worker_fault(run: FaultRun, kind: str, worker: str, hold: float) -> dict[str, Any]:
    run.workers.tail.poll()
    partitions = run.workers.tail.active_on(worker)
    if kind == "worker-kill":
        at = await run.kill_worker(worker)
    else:
        at = await run.freeze_worker(worker)
    await asyncio.sleep(hold)
    held = time.time_ns()
    if kind == "worker-kill":
        await run.replace_worker()
    else:
        run.thaw_worker(worker)
    healed = time.time_ns()
    run.log_fault(
        kind,
        worker,
        at,
        partitions=partitions,
        held_s=round((held - at) / 1e9, 3),
        healed_after_s=round((healed - at) / 1e9, 3),
    )
    return run.faults[-1]
