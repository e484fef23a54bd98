"""`superticks bench failover`: every fault as a scenario, measured and judged (exit 1 when a
verdict fails or a fault did not take effect)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from superticks.cli.args import add_run_options, fault_target, positive_float
from superticks.cli.loop import run
from superticks.cli.reporting import emit

__all__ = ["SCENARIO_NAMES", "register"]

SCENARIO_NAMES = (
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


def _scenarios(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if names == ["all"]:
        return list(SCENARIO_NAMES)
    unknown = [n for n in names if n not in SCENARIO_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown) or text!r}: choose from "
            f"{', '.join(SCENARIO_NAMES)} (comma-separated) or all"
        )
    return names


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "failover",
        help="each fault under a live feed and a 3-worker group: time to handle again, verdict",
        description=(
            "Run fault scenarios against a fresh super stream, a live feed and a group of "
            "three `superticks worker --handler verify` processes, in phases (steady, fault, "
            "impact, heal, recovery). Prints per scenario: time until every affected partition "
            "handled a tick created after the fault, the producer's longest wait for a confirm, "
            "the longest time a partition went unhandled, per-phase figures, and the verdict "
            "of both sides (`superticks verify`). Exit 1 when a verdict fails or a fault did "
            "not take effect. Faults are undone at the end, whatever happens."
        ),
    )
    parser.add_argument(
        "--scenario",
        type=_scenarios,
        default=list(SCENARIO_NAMES),
        help=f"comma-separated, or all (default): {', '.join(SCENARIO_NAMES)}",
    )
    parser.add_argument("--rate", type=positive_float, default=2_000.0, help="feed ticks/s")
    parser.add_argument("--steady", type=positive_float, default=5.0, help="steady seconds")
    parser.add_argument(
        "--recovery", type=positive_float, default=5.0, help="seconds after recovery"
    )
    parser.add_argument(
        "--busy-ms",
        type=int,
        default=0,
        help="each handler call awaits this many ms more (a busy handler: no false failover); "
        "for busy-handler(-blocking): how long its one busy chunk takes (default 12000, 4000)",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="DIR",
        default=None,
        help="write PNG plots into DIR: per scenario, each partition's lag and handled rate "
        "over time, faults marked (<scenario>-lag.png, <scenario>-handled.png)",
    )
    add_run_options(parser, "keep each run's logs here (default: temp)")
    parser.set_defaults(handler=_failover)


def _failover(args: argparse.Namespace) -> int:
    from bench.failover import FailoverResult, ScenarioOptions, run_failover_bench

    connection, target, root = fault_target("bench failover", args.run_dir, "superticks-failover-")
    options = ScenarioOptions(
        rate=args.rate,
        steady_s=args.steady,
        recovery_s=args.recovery,
        keep_streams=args.keep_streams,
        busy_ms=max(0, args.busy_ms),
    )

    def progress(result: FailoverResult) -> None:
        if args.plot is not None:
            for path in plot_result(result, args.plot):
                print(f"plot: {path}", file=sys.stderr)
        if not args.json:
            print_result(result)
        else:
            print(f"{result.scenario}: {'OK' if result.ok else 'FAIL'}", file=sys.stderr)

    results = run(run_failover_bench(connection, target, args.scenario, root, options, progress))
    params = {k: getattr(args, k) for k in ("scenario", "rate", "steady", "recovery", "busy_ms")}
    emit(args, "failover", params, {"scenarios": [r.to_dict() for r in results]})
    if not args.json:
        print_table(results)
    return 0 if all(r.ok for r in results) else 1


def plot_result(result: Any, directory: Path) -> list[Path]:
    """Write the scenario's lag and handled-rate plots (faults marked) into `directory`."""
    from bench.report import plot_lines

    timeline = result.timeline
    if timeline is None:
        return []
    marks = result.marks
    name = result.scenario
    return [
        plot_lines(
            directory / f"{name}-lag.png",
            f"bench failover {name}: lag per partition (newest handled tick's age)",
            "seconds since the run started",
            "lag (s)",
            {f"p{p}": series for p, series in timeline.lag.items()},
            marks=marks,
        ),
        plot_lines(
            directory / f"{name}-handled.png",
            f"bench failover {name}: handled ticks/s per partition ({timeline.bin_s:g} s bins)",
            "seconds since the run started",
            "ticks/s",
            {f"p{p}": series for p, series in timeline.rate.items()},
            marks=marks,
        ),
    ]


def print_table(results: list[Any]) -> None:
    """One line per scenario: the figures the targets are about, and the verdict."""
    width = max(len(name) for name in SCENARIO_NAMES)
    print(
        f"{'scenario':{width}} {'handled again':>13} {'producer gap':>12} {'unavailable':>11} "
        f"{'lost/dup/reord/unknown':>22} {'twice crash/other':>17} {'coverage':>8}  verdict"
    )
    for r in results:
        v = r.verdict
        counts = f"{v.stream.lost}/{v.stream.duplicated}/{v.stream.reordered}/{v.unknown}"
        twice = f"{v.handled_twice_crash}/{v.handled_twice_other}"
        coverage = "yes" if v.coverage and all(v.coverage.values()) else "NO"
        print(
            f"{r.scenario:{width}} {_s(r.handled_again_max_s):>13} {r.producer_max_gap_s:>10.3f} s "
            f"{r.unavailability_s:>9.3f} s {counts:>22} {twice:>17} {coverage:>8}  "
            f"{'OK' if r.ok else 'FAIL'}"
        )


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.3f} s"


def print_result(result: Any) -> None:
    """A scenario's figures, phases and verdict, for people."""
    print(f"== {result.scenario} ({result.target}): {'OK' if result.ok else 'FAIL'}")
    again = ", ".join(f"p{p} {_s(v)}" for p, v in result.handled_again_s.items())
    print(f"  handled again        {_s(result.handled_again_max_s)}  [{again}]")
    print(f"  producer max gap     {result.producer_max_gap_s:.3f} s")
    print(f"  unavailability       {result.unavailability_s:.3f} s (longest unhandled)")
    print(f"  producer reconnects  {result.producer_reconnects}")
    print(
        f"  {'phase':22} {'seconds':>8} {'prod gap':>9} {'unhandled':>10} {'handled':>9} "
        f"{'handovers':>9}"
    )
    for p in result.phases:
        print(
            f"  {p['phase']:22} {p['seconds']:>8.2f} {p['producer_max_gap_s']:>9.3f} "
            f"{p['unhandled_max_s']:>10.3f} {p['handled']:>9,} {p['handovers']:>9}"
        )
    print(f"  verdict: {result.verdict.summary()}")
    for failure in result.verdict.failures():
        print(f"    FAILED: {failure}")
    print(f"  run dir: {result.run_dir}")
