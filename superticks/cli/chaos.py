"""`superticks chaos`: random seeded faults while a feed and a worker group run; the verdict."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from superticks.cli.args import add_run_options, fault_target, positive_float
from superticks.cli.loop import run

__all__ = ["FAULT_NAMES", "duration_s", "fault_list", "register"]

FAULT_NAMES = ("kill", "pause", "partition", "restart", "worker-kill", "worker-hang")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_s(text: str) -> float:
    """Seconds of `90`, `20s`, `5m`, `1h`, `500ms`."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected a duration > 0 like 90, 20s, 5m or 1h, not {text!r}"
        )
    return float(match.group(1)) * _UNIT[match.group(2) or "s"]


def fault_list(text: str) -> list[str]:
    names = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [n for n in names if n not in FAULT_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown fault {', '.join(unknown) or text!r}: choose from {', '.join(FAULT_NAMES)}"
        )
    return names


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "chaos",
        help="random seeded faults under a live feed and a worker group, then the verdict",
        description=(
            "On a fresh super stream, with a live feed and three `superticks worker --handler "
            "verify` processes: every EVERY one fault drawn from FAULTS (seeded: the same "
            "--seed gives the same faults and targets) hits a random node or worker, is held, "
            "then undone; each is logged with its time. Then the verdict of both sides "
            "(`superticks verify`), the worst unavailability and the producer's longest wait "
            "for a confirm. Exit 1 when the verdict fails; 2 on bad input (before anything "
            "starts). Faults: kill, pause, partition, restart (a node), worker-kill, "
            "worker-hang (SIGSTOP, then SIGCONT)."
        ),
    )
    parser.add_argument("--duration", type=duration_s, default=300.0, help="e.g. 5m (default)")
    parser.add_argument(
        "--faults",
        type=fault_list,
        default=["kill", "pause", "partition", "worker-kill", "worker-hang"],
        help="comma-separated (default: kill,pause,partition,worker-kill,worker-hang)",
    )
    parser.add_argument("--every", type=duration_s, default=20.0, help="e.g. 20s (default)")
    parser.add_argument(
        "--hold",
        type=duration_s,
        default=None,
        help="how long a fault lasts (default: 0.6 x --every, at most 15 s)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=positive_float, default=2_000.0, help="feed ticks/s")
    add_run_options(parser, "keep the run's logs here")
    parser.set_defaults(handler=_chaos)


def _chaos(args: argparse.Namespace) -> int:
    from bench.chaos import describe_gap, run_chaos
    from bench.report import strict_json

    connection, target, run_dir = fault_target("chaos", args.run_dir, "superticks-chaos-")
    result = run(
        run_chaos(
            connection,
            target,
            run_dir,
            duration_s=args.duration,
            faults=args.faults,
            every_s=args.every,
            seed=args.seed,
            rate=args.rate,
            hold_s=args.hold,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
            keep_streams=args.keep_streams,
        )
    )
    if args.json:
        print(strict_json(result.to_dict()))
    else:
        print(f"chaos seed {result.seed}, {result.duration_s:.0f} s, {len(result.faults)} faults")
        print(f"  worst unavailability  {result.unavailability_s:.3f} s (longest unhandled)")
        if result.worst_gap:
            print(f"    {describe_gap(result.worst_gap)}")
        print(f"  producer max gap      {result.producer_max_gap_s:.3f} s")
        print(f"  verdict: {result.verdict.summary()}")
        for failure in result.verdict.failures():
            print(f"    FAILED: {failure}")
        print(f"  run dir: {result.run_dir}")
    return 0 if result.ok else 1
