"""`superticks bench failover --scenario S`: one fault under a live feed and a 3-worker group.

Each scenario is a `FaultRun` (a fresh super stream, the feed in this process, three
`superticks worker --handler verify` processes) in phases:

``steady``   the feed and the group run untouched (`steady_s`);
``fault``    the fault is injected (for a restart: the restart, until the cluster is whole);
``impact``   until every affected partition handled a tick created after the fault (and, for a
             node fault, the node's partitions got another leader), at most `impact_timeout_s`;
``heal``     the fault is undone (node started/unpaused/reconnected, worker continued or
             replaced) and the cluster is whole again;
``recovery`` until every partition handled a tick created after the heal, plus `recovery_s`.

``busy-handler`` makes the handler of every active worker busy on one chunk (awaited, 12 s by
default) and ``busy-handler-blocking`` likewise but blocking the worker's event loop (4 s): no
fault at all, so nothing may move: the coverage holds that each handler was busy that long and
that no partition changed hands from then until `BUSY_WATCH_S` after (no false failover).

``rolling-restart`` restarts each node in turn the way a planned restart is done
(``restart:rabbitN``: drain it, moving every stream leadership it holds to the other nodes
with `cluster.drain`, then restart it; ``recovery:rabbitN``: waiting for the node to rejoin and
every partition to be handled again; coverage: each node led no partition when it stopped);
``node-restart`` restarts one node leading a partition without draining it first;
``node-blip`` freezes the node leading the stream coordinator for `BLIP_S` (8 s) and thaws it:
a stall the cluster rides out without declaring the node down (a frozen node then applies
what its connections sent meanwhile: late store frames set a group's offset back, which the
workers must repair before a successor reads it; coverage: the node led the coordinator);
``all-nodes-restart`` restarts the three at once.

Figures, each from a record made while the run went on (never polled after the fact):
``handled_again_s`` (per affected partition: from the fault until a tick *created after the
fault* was handled there, by another worker than the victim for a worker fault; for a restart,
from the moment the restarted node(s) are back in the cluster),
``producer_max_gap_s`` (the longest wait of any partition for a confirm, from the producer's
own confirms), ``unavailability_s`` (the longest time any partition went without a handling),
per-phase figures, and the verdict of both sides (`bench.verify`), whose coverage says whether
the fault took effect: the node led a partition and the leader moved, the producer reconnected,
the worker was active and its partitions moved. `FailoverResult.timeline` holds each partition's
handled rate and lag over the run, and `marks` the faults, for plots (`--plot DIR`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cluster as cl
from bench.faultrun import FaultRun
from bench.phases import (
    Timeline,
    handled_again_s,
    handled_timeline,
    handover_times,
    longest_gap_s,
)
from bench.verdict import RunVerdict
from superticks.settings import ConnectionSettings
from workers.handled import Handled, read_handled

__all__ = ["SCENARIOS", "FailoverResult", "run_failover_bench", "run_scenario"]

SCENARIOS = (
    "worker-kill",
    "worker-hang",
    "node-kill",
    "node-pause",
    "node-blip",
    "node-partition",
    "node-restart",
    "rolling-restart",
    "all-nodes-restart",
    "busy-handler",
    "busy-handler-blocking",
)

BLIP_S = 8.0
"""How long ``node-blip`` freezes the node: shorter than the cluster takes to declare it down
(net_ticktime 10 s: 8-14 s), so no stream leader moves, but long enough for the other nodes to
elect another leader of the stream coordinator now and then (a VM stalled, a long GC)."""

BUSY_DEFAULT_MS = {"busy-handler": 12_000, "busy-handler-blocking": 4_000}
"""How long each active worker's handler is busy on one chunk, unless `busy_ms` says: awaited,
longer than every heartbeat limit (the broker's ~2-3 heartbeats, our watchdog's 3: 6-9 s); or
blocking the worker's event loop (no heartbeat goes out meanwhile), under 2 heartbeats (6 s)."""
BUSY_WATCH_S = 10.0
"""After the busy chunk, how long the group is watched for a handover (past every heartbeat
limit again)."""


@dataclass(frozen=True)
class FailoverResult:
    scenario: str
    target: str
    verdict: RunVerdict
    handled_again_s: dict[int, float | None]
    producer_max_gap_s: float
    unavailability_s: float
    phases: list[dict[str, Any]]
    faults: list[dict[str, Any]]
    run_dir: str
    producer_reconnects: int
    extra: dict[str, Any] = field(default_factory=dict)
    timeline: Timeline | None = field(default=None, repr=False, compare=False)
    """Handled rate and lag per partition over the run (for `--plot`; not in the JSON)."""
    marks: list[tuple[float, str]] = field(default_factory=list, repr=False, compare=False)
    """(seconds from the run's start, label): each fault, and where healing began."""

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    @property
    def handled_again_max_s(self) -> float | None:
        """The time until every affected partition was handled again (None: one never was)."""
        values = list(self.handled_again_s.values())
        if not values or any(v is None for v in values):
            return None
        return max(v for v in values if v is not None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, strict: a partition never handled again is null, never Infinity."""
        return {
            "scenario": self.scenario,
            "ok": self.ok,
            "target": self.target,
            "handled_again_max_s": self.handled_again_max_s,
            "handled_again_s": {str(p): v for p, v in self.handled_again_s.items()},
            "producer_max_gap_s": self.producer_max_gap_s,
            "unavailability_s": self.unavailability_s,
            "producer_reconnects": self.producer_reconnects,
            "verdict": self.verdict.to_dict(),
            "phases": self.phases,
            "faults": self.faults,
            "run_dir": self.run_dir,
            **self.extra,
        }


@dataclass(frozen=True)
class ScenarioOptions:
    rate: float = 2_000.0
    steady_s: float = 3.0
    impact_timeout_s: float = 45.0
    recovery_s: float = 2.0
    partitions: int = 3
    workers: int = 3
    node: str | None = None
    """Node faults: this node instead of partition 0's leader; "non-leader": a node leading no
    partition (tests: a fault without effect)."""
    worker: str | None = None
    """Worker faults: "idle" picks a worker active on no partition (tests)."""
    drop_offset: int | None = None
    """Tests: the handlers skip the tick at this offset (a broken handler)."""
    busy_ms: int = 0
    """Each handler call awaits this long more (a busy handler: the steady phase must show no
    handover, i.e. no false failover). For the busy-handler scenarios: how long the one busy
    chunk takes (0: `BUSY_DEFAULT_MS`)."""
    keep_streams: bool = False
    """Keep each run's super stream (`superticks verify --run DIR` can judge it again)."""


async def run_scenario(
    settings: ConnectionSettings,
    cluster: cl.Cluster,
    scenario: str,
    run_dir: Path,
    options: ScenarioOptions | None = None,
) -> FailoverResult:
    """Run one scenario (see the module docstring) and judge it."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
    opts = options or ScenarioOptions()
    busy = scenario in BUSY_DEFAULT_MS
    run = FaultRun(
        settings,
        cluster,
        run_dir,
        rate=opts.rate,
        partitions=opts.partitions,
        workers=opts.workers,
        drop_offset=opts.drop_offset,
        busy_ms=(opts.busy_ms or BUSY_DEFAULT_MS[scenario]) if busy else opts.busy_ms,
        busy_once=busy,
        busy_blocking=scenario == "busy-handler-blocking",
        label=scenario.replace("-", ""),
        keep_streams=opts.keep_streams,
    )
    async with run:
        await asyncio.sleep(opts.steady_s)
        body = _WORKER_FAULTS.get(scenario) or _NODE_FAULTS.get(scenario) or _BUSY.get(scenario)
        if body is not None:
            target, fault_ns, affected, not_by = await body(run, opts)
        elif scenario == "rolling-restart":
            target, fault_ns, affected, not_by = await _rolling_restart(run, opts)
        else:
            target, fault_ns, affected, not_by = await _all_nodes_restart(run, opts)
        run.mark("recovery")
        await asyncio.sleep(opts.recovery_s)
        verdict, figures = await run.finish()
    handled = figures.pop("handled")
    again = {p: handled_again_s(handled, p, fault_ns, not_by) for p in affected}
    run_phases = [p for p in run.phases if p.name != "drain"]
    end_ns = max((p.end_ns for p in run_phases), default=time.time_ns())
    marks = [(f["at_s"], f"{f['kind']} {f['target']}") for f in run.faults]
    marks += [
        (round((p.start_ns - run.started_ns) / 1e9, 3), p.name)
        for p in run_phases
        if p.name == "heal"
    ]
    return FailoverResult(
        scenario=scenario,
        target=target,
        verdict=verdict,
        handled_again_s={p: None if v is None else round(v, 3) for p, v in again.items()},
        producer_max_gap_s=figures["producer_max_gap_s"],
        unavailability_s=figures["unavailability_s"],
        phases=figures["phases"],
        faults=run.faults,
        run_dir=str(run_dir),
        producer_reconnects=figures["producer_reconnects"],
        timeline=handled_timeline(handled, run.started_ns, max(end_ns, run.started_ns + 1)),
        marks=sorted(marks),
    )


Outcome = tuple[str, int, list[int], str | None]
"""(target, fault time ns, partitions that must be handled again, worker excluded)."""


# -- worker faults -----------------------------------------------------------------------------
def _pick_worker(run: FaultRun, opts: ScenarioOptions) -> tuple[str, list[int]]:
    run.workers.tail.poll()
    active = {w: run.workers.tail.active_on(w) for w in run.workers.running()}
    if opts.worker == "idle":
        idle = [w for w, parts in active.items() if not parts]
        victim = idle[0] if idle else next(iter(active))
    else:
        victim = next((w for w, parts in active.items() if 0 in parts), None) or max(
            active, key=lambda w: len(active[w])
        )
    return victim, active[victim]


async def _worker_fault(run: FaultRun, opts: ScenarioOptions, hang: bool) -> Outcome:
    victim, partitions = _pick_worker(run, opts)
    run.coverage["worker_was_active"] = bool(partitions)
    fault = run.mark("fault")
    if hang:
        fault = await run.freeze_worker(victim)
    else:
        fault = await run.kill_worker(victim)
    run.log_fault("worker-hang" if hang else "worker-kill", victim, fault, partitions=partitions)
    run.mark("impact")
    moved = await run.wait_handled_again(
        fault, partitions, not_by=victim, timeout_s=opts.impact_timeout_s
    )
    run.coverage["partitions_moved"] = bool(partitions) and moved
    run.mark("heal")
    if hang:
        run.thaw_worker(victim)
    else:
        await run.replace_worker()
    await run.wait_handled_again(time.time_ns(), timeout_s=opts.impact_timeout_s)
    return victim, fault, partitions, victim


async def _worker_kill(run: FaultRun, opts: ScenarioOptions) -> Outcome:
    return await _worker_fault(run, opts, hang=False)


async def _worker_hang(run: FaultRun, opts: ScenarioOptions) -> Outcome:
    return await _worker_fault(run, opts, hang=True)


# -- a busy handler: no fault, nothing may move ------------------------------------------------
async def _busy_handler(run: FaultRun, opts: ScenarioOptions) -> Outcome:
    run.workers.tail.poll()
    active = {w: run.workers.tail.active_on(w) for w in run.workers.running()}
    busy = {w: parts for w, parts in active.items() if parts}
    run.coverage["worker_was_active"] = bool(busy)
    busy_s = run.workers.busy_ms / 1000
    fault = run.mark("fault")
    for worker in busy:
        run.workers.make_busy(worker)
    run.log_fault(
        "busy-handler-blocking" if run.workers.busy_blocking else "busy-handler",
        ",".join(busy),
        fault,
        busy_s=busy_s,
    )
    run.mark("impact")
    await asyncio.sleep(busy_s + BUSY_WATCH_S)
    end = time.time_ns()
    handled = await asyncio.to_thread(read_handled, run.workers.handled_dir)
    was_busy = busy_gaps(handled, busy, fault, end)
    run.coverage["handler_was_busy"] = bool(busy) and all(
        gap >= 0.9 * busy_s for gap in was_busy.values()
    )
    moved = [t for times in handover_times(handled).values() for t in times if fault <= t <= end]
    run.coverage["no_handover_while_busy"] = not moved
    run.mark("heal")
    every = list(range(run.partitions))
    await run.wait_handled_again(fault, every, timeout_s=opts.impact_timeout_s)
    return ",".join(busy), fault, every, None


def busy_gaps(
    handled: list[Handled], busy: dict[str, list[int]], start_ns: int, end_ns: int
) -> dict[str, float]:
    """Per busy worker, its longest pause (s) in [start_ns, end_ns) on the partitions it was
    active on: a handler busy on one chunk for S seconds pauses its partition for about S."""
    out = {}
    for worker, parts in busy.items():
        out[worker] = max(
            longest_gap_s(
                sorted(h.at_ns for h in handled if h.worker == worker and h.partition == p),
                start_ns,
                end_ns,
            )
            for p in parts
        )
    return out


_BUSY = {"busy-handler": _busy_handler, "busy-handler-blocking": _busy_handler}


# -- node faults -------------------------------------------------------------------------------
async def _pick_node(run: FaultRun, opts: ScenarioOptions) -> tuple[str, dict[int, str]]:
    leaders = await run.leaders()
    if opts.node == "non-leader":
        node = next(n.name for n in cl.NODES if n.name not in leaders.values())
    else:
        node = opts.node or leaders.get(0) or cl.NODES[0].name
    return node, leaders


async def _leader_moved(run: FaultRun, node: str, led: list[int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while led and time.monotonic() < deadline:
        now = await run.leaders()
        if now and all(now.get(p) not in (None, node) for p in led):
            return True
        await asyncio.sleep(0.5)
    return False


def _node_fault(kind: str, inject: Callable[[FaultRun, str], Coroutine[Any, Any, None]]) -> Any:
    async def body(run: FaultRun, opts: ScenarioOptions) -> Outcome:
        node, leaders = await _pick_node(run, opts)
        led = [p for p, n in leaders.items() if n == node]
        run.coverage["node_led_a_partition"] = bool(led)
        reconnects = run.feed.reconnects
        stored = await run.stored_offsets()
        run.mark("fault")
        await inject(run, node)
        fault = run.mark("impact")  # the fault is in place once the docker command returned
        run.node_crash_windows(fault, stored, f"{kind} {node}")
        run.log_fault(kind, node, fault, led=led)
        every = list(range(run.partitions))
        moved, _ = await asyncio.gather(
            _leader_moved(run, node, led, opts.impact_timeout_s),
            run.wait_handled_again(fault, every, timeout_s=opts.impact_timeout_s),
        )
        run.coverage["leader_moved"] = moved
        run.coverage["producer_reconnected"] = run.feed.reconnects > reconnects
        run.mark("heal")
        await run.heal_node(node)
        return node, fault, every, None

    return body


async def _rolling_restart(run: FaultRun, opts: ScenarioOptions) -> Outcome:
    first_fault = 0
    reconnects = run.feed.reconnects
    moved_any = False
    for node in cl.NODES:
        leaders = await run.leaders()
        led = [p for p, n in leaders.items() if n == node.name]
        stored = await run.stored_offsets()
        run.mark(f"restart:{node.name}")
        fault = time.time_ns()
        first_fault = first_fault or fault
        drain = await run.drain_node(node.name)
        drained = time.time_ns()
        run.coverage[f"{node.name}_led_no_partition_when_stopped"] = await _leader_moved(
            run, node.name, list(range(run.partitions)), 5.0
        )
        down = await run.restart_node(node.name)
        run.node_crash_windows(down, stored, f"restart {node.name}")
        # as a planned restart does: the next node only once this one's replicas run again
        missing = await asyncio.to_thread(cl.await_members, run.cluster)
        run.log_fault(
            "node-restart",
            node.name,
            fault,
            led=led,
            drained=[stream for _, stream, _ in drain.moves],
            not_drained=[stream for _, stream in drain.stuck],
            drained_after_s=_after(fault, drained),
            down_after_s=_after(fault, down),
            members_missing=missing,
            members_after_s=_after(fault, time.time_ns()),
        )
        if led:
            moved_any = moved_any or await _leader_moved(run, node.name, led, 5.0)
        run.mark(f"recovery:{node.name}")
        rejoined = await run.wait_handled_again(time.time_ns(), timeout_s=opts.impact_timeout_s)
        run.coverage[f"{node.name}_rejoined_and_handled"] = rejoined
    run.coverage["producer_reconnected"] = run.feed.reconnects > reconnects
    run.coverage["a_leader_moved"] = moved_any
    return "rabbit1,rabbit2,rabbit3", first_fault, list(range(run.partitions)), None


async def _node_blip(run: FaultRun, opts: ScenarioOptions) -> Outcome:
    coordinator = await asyncio.to_thread(cl.coordinator_leader, run.cluster)
    leaders = await run.leaders()
    node = opts.node or coordinator or leaders.get(0) or cl.NODES[0].name
    if opts.node == "non-leader":  # tests: a node that leads neither the coordinator nor data
        node = next((n.name for n in cl.NODES if n.name not in (*leaders.values(), coordinator)),
                    node)  # fmt: skip
    led = [p for p, n in leaders.items() if n == node]
    run.coverage["node_led_the_stream_coordinator"] = node == coordinator
    stored = await run.stored_offsets()
    run.mark("fault")
    await run.pause_node(node)
    fault = run.mark("impact")
    run.node_crash_windows(fault, stored, f"node-blip {node}")
    run.log_fault("node-blip", node, fault, led=led, coordinator=coordinator, pause_s=BLIP_S)
    await asyncio.sleep(BLIP_S)
    run.mark("heal")
    await run.heal_node(node)
    every = list(range(run.partitions))
    handled = await run.wait_handled_again(time.time_ns(), every, timeout_s=opts.impact_timeout_s)
    run.coverage["every_partition_handled_again"] = handled
    return node, fault, every, None


async def _leader_left(run: FaultRun, node: str, led: list[int], timeout_s: float) -> bool:
    """Whether every partition in `led` was seen led by another node than `node`, or by none,
    within `timeout_s`. A node restarted within seconds may lead its partitions again after
    they went without a leader (the broker had not yet elected another): the fault took
    effect all the same."""
    left: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while led and time.monotonic() < deadline:
        now = await run.leaders_or_none()
        left.update(p for p in led if p in now and now[p] != node)
        if left.issuperset(led):
            return True
        await asyncio.sleep(0.2)
    return False


async def _node_restart(run: FaultRun, opts: ScenarioOptions) -> Outcome:
    node, leaders = await _pick_node(run, opts)
    led = [p for p, n in leaders.items() if n == node]
    run.coverage["node_led_a_partition"] = bool(led)
    reconnects = run.feed.reconnects
    stored = await run.stored_offsets()
    run.mark("fault")
    fault = time.time_ns()
    left = asyncio.create_task(_leader_left(run, node, led, opts.impact_timeout_s))
    down = await run.restart_node(node)
    back = run.mark("impact")
    run.node_crash_windows(down, stored, f"node-restart {node}")
    run.log_fault(
        "node-restart",
        node,
        fault,
        led=led,
        down_after_s=_after(fault, down),
        back_after_s=_after(fault, back),
    )
    await run.wait_handled_again(back, timeout_s=opts.impact_timeout_s)
    run.coverage["its_partitions_lost_their_leader"] = await left
    run.coverage["producer_reconnected"] = run.feed.reconnects > reconnects
    return node, back, list(range(run.partitions)), None


async def _all_nodes_restart(run: FaultRun, opts: ScenarioOptions) -> Outcome:
    reconnects = run.feed.reconnects
    stored = await run.stored_offsets()
    run.mark("fault")
    fault = time.time_ns()
    downs = await asyncio.gather(*(run.restart_node(n.name) for n in cl.NODES))
    back = run.mark("impact")
    for node, down in zip(cl.NODES, downs, strict=True):
        run.node_crash_windows(down, stored, f"all-nodes-restart {node.name}")
    run.log_fault(
        "all-nodes-restart",
        "rabbit1,rabbit2,rabbit3",
        fault,
        down_after_s=[_after(fault, d) for d in downs],
        back_after_s=_after(fault, back),
    )
    handled = await run.wait_handled_again(back, timeout_s=opts.impact_timeout_s)
    run.coverage["every_partition_handled_again"] = handled
    run.coverage["producer_reconnected"] = run.feed.reconnects > reconnects
    return "rabbit1,rabbit2,rabbit3", back, list(range(run.partitions)), None


def _after(start_ns: int, end_ns: int) -> float:
    return round((end_ns - start_ns) / 1e9, 3)


_WORKER_FAULTS = {"worker-kill": _worker_kill, "worker-hang": _worker_hang}
_NODE_FAULTS = {
    "node-kill": _node_fault("node-kill", FaultRun.kill_node),
    "node-pause": _node_fault("node-pause", FaultRun.pause_node),
    "node-partition": _node_fault("node-partition", FaultRun.cut_node),
    "node-blip": _node_blip,
    "node-restart": _node_restart,
}


async def run_failover_bench(
    settings: ConnectionSettings,
    cluster: cl.Cluster,
    scenarios: list[str],
    run_root: Path,
    options: ScenarioOptions | None = None,
    progress: Callable[[FailoverResult], None] | None = None,
) -> list[FailoverResult]:
    """Run each scenario in turn (each in ``run_root/<scenario>``; a scenario named again runs
    in ``run_root/<scenario>-2``, ``-3``, ...)."""
    results = []
    seen: dict[str, int] = {}
    for scenario in scenarios:
        seen[scenario] = seen.get(scenario, 0) + 1
        name = scenario if seen[scenario] == 1 else f"{scenario}-{seen[scenario]}"
        result = await run_scenario(settings, cluster, scenario, run_root / name, options)
        results.append(result)
        if progress is not None:
            progress(result)
    return results
