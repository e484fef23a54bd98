"""`superticks bench ...`: benchmarks with JSON out (speed targets live here, not in tests)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from superticks.cli import failover
from superticks.cli.args import positive_int

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("bench", help="benchmarks (JSON out)")
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    publish = sub.add_parser(
        "publish",
        help="superticks' producer vs a pre-encoded ceiling, RbFly, sub-entry, naive rstream",
    )
    publish.add_argument("--count", type=positive_int, default=100_000, help="timed ticks")
    publish.add_argument(
        "--warmup", type=positive_int, default=2_000, help="ticks each contender sends untimed"
    )
    publish.add_argument("--partitions", type=positive_int, default=3)
    publish.add_argument("--symbols", type=positive_int, default=200)
    publish.add_argument("--seed", type=int, default=0)
    publish.add_argument(
        "--pika", action="store_true", help="add pika's row (~1k ticks/s: slow at large counts)"
    )
    _report_flags(publish)
    publish.set_defaults(handler=_publish)
    consume = sub.add_parser(
        "consume",
        help="raw delivery vs `superticks worker` (CLI defaults, vwap) vs RbFly, same ticks",
    )
    consume.add_argument("--count", type=positive_int, default=300_000)
    consume.add_argument("--partitions", type=positive_int, default=3)
    consume.add_argument("--symbols", type=positive_int, default=200)
    consume.add_argument("--seed", type=int, default=0)
    _report_flags(consume)
    consume.set_defaults(handler=_consume)
    filtering = sub.add_parser(
        "filter", help="messages a one-symbol reader receives with/without server-side filtering"
    )
    filtering.add_argument("--count", type=positive_int, default=100_000, help="ticks to publish")
    filtering.add_argument("--symbols", type=positive_int, default=50)
    filtering.add_argument("--batch", type=positive_int, default=2_000, help="ticks per send_batch")
    filtering.add_argument("--seed", type=int, default=0)
    filtering.add_argument("--json", action="store_true")
    filtering.set_defaults(handler=_filter)
    failover.register(sub)
    monitor = sub.add_parser(
        "monitor", help="one poll of the lag exporter: 3 partitions x N groups (target < 200 ms)"
    )
    monitor.add_argument("--groups", type=positive_int, default=10)
    monitor.add_argument("--polls", type=positive_int, default=20)
    monitor.add_argument("--count", type=positive_int, default=60_000, help="ticks to publish")
    monitor.add_argument("--json", action="store_true")
    monitor.set_defaults(handler=_monitor)


def _publish(args: argparse.Namespace) -> int:
    import uvloop

    from bench.publish import CEILING_TARGET, RBFLY_TARGET, run_publish_bench
    from bench.report import plot_bars, table
    from superticks.settings import load_settings

    connection, _ = load_settings()
    params = {
        k: getattr(args, k) for k in ("count", "warmup", "partitions", "symbols", "seed", "pika")
    }
    result = uvloop.run(run_publish_bench(connection, **params, show_progress=not args.json))
    _emit(args, "publish", params, result.to_dict())
    if args.plot:
        rates = {r.name: r.ticks_per_s for r in result.rows}
        plot_bars(args.plot / "publish.png", "bench publish: confirmed ticks/s", "ticks/s", rates)
    if not args.json:
        headers = ["contender", "ticks", "seconds", "ticks/s", "read back"]
        rows = [[r.name, r.ticks, r.seconds, r.ticks_per_s, r.stored] for r in result.rows]
        print(table(headers, rows))
        rbfly = (
            f"; / RbFly = {result.vs_rbfly}x (target >= {RBFLY_TARGET}x)"
            if result.vs_rbfly is not None
            else "; RbFly not installed (`uv sync --group compare`)"
        )
        print(
            f"superticks / ceiling = {result.vs_ceiling}x (target >= {CEILING_TARGET}x){rbfly}; "
            f"/ sub-entry limit = {result.vs_subentry}x; / naive rstream = {result.vs_naive}x"
        )
    return 0


def _consume(args: argparse.Namespace) -> int:
    import uvloop

    from bench.consume import WORKER_TARGET, run_consume_bench
    from bench.report import plot_bars, table
    from superticks.settings import load_settings

    connection, _ = load_settings()
    result = uvloop.run(
        run_consume_bench(
            connection,
            count=args.count,
            partitions=args.partitions,
            symbols=args.symbols,
            seed=args.seed,
            show_progress=not args.json,
        )
    )
    params = {k: getattr(args, k) for k in ("count", "partitions", "symbols", "seed")}
    _emit(args, "consume", params, result.to_dict())
    if args.plot:
        rates = {r.name: r.ticks_per_s for r in result.rows}
        plot_bars(
            args.plot / "consume.png", "bench consume: ticks/s (steady state)", "ticks/s", rates
        )
    if not args.json:
        headers = ["reader", "ticks read", "seconds", "ticks/s", "CPU us/tick", "start-up s"]
        rows = [
            [r.name, r.ticks, r.seconds, r.ticks_per_s, r.cpu_us_per_tick, r.startup_s]
            for r in result.rows
        ]
        print(table(headers, rows))
        rbfly = (
            f"; / RbFly = {result.worker_vs_rbfly}x (target >= 2x)"
            if result.worker_vs_rbfly is not None
            else "; RbFly not installed (`uv sync --group compare`)"
        )
        print(
            f"worker / raw delivery = {result.worker_vs_raw}x (target >= {WORKER_TARGET}x){rbfly}"
        )
    return 0


def _filter(args: argparse.Namespace) -> int:
    import uvloop

    from bench.filter import run_filter_bench
    from superticks.settings import load_settings

    connection, _ = load_settings()
    result = uvloop.run(
        run_filter_bench(
            connection, count=args.count, symbols=args.symbols, batch=args.batch, seed=args.seed
        )
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(
        f"{result.ticks:,} ticks of {result.symbols} symbols (batches of {result.batch:,}); "
        f"reading {result.symbol}: {result.matching:,} of its partition's "
        f"{result.partition_ticks:,}"
    )
    print(f"{'reader':40} {'received':>9} {'delivered':>9} {'chunks':>7} {'seconds':>8}")
    for row in result.reads:
        print(
            f"{row.name:40} {row.received:>9,} {row.delivered:>9,} {row.chunks:>7,} "
            f"{row.seconds:>8.2f}"
        )
    print(
        f"server-side filtering saves {result.saving:.0%} of the messages; the client receives "
        f"{result.received_share:.1%} of the partition (a perfect filter: {result.ideal_share:.1%})"
    )
    return 0


def _monitor(args: argparse.Namespace) -> int:
    import uvloop

    from bench.monitor import run_monitor_bench
    from superticks.settings import load_settings

    connection, _ = load_settings()
    result = uvloop.run(
        run_monitor_bench(connection, groups=args.groups, polls=args.polls, count=args.count)
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    for key, value in result.to_dict().items():
        print(f"{key:16} {value}")
    return 0


def _report_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print one JSON report (machine, versions, results)"
    )
    parser.add_argument(
        "--plot", type=Path, metavar="DIR", default=None, help="write PNG plots into DIR"
    )


def _emit(args: argparse.Namespace, bench: str, params: dict[str, Any], results: Any) -> None:
    """Print the JSON report when asked (the table is the caller's)."""
    from bench.report import Report

    if args.json:
        print(Report(bench, params, results, broker=_broker_version()).to_json(), flush=True)


def _broker_version() -> str | None:
    import uvloop

    from superticks.errors import SuperticksError
    from superticks.settings import load_settings
    from superticks.streams import Admin

    async def ask() -> str | None:
        connection, _ = load_settings()
        async with Admin(connection) as admin:
            return admin.broker_version

    try:
        version: str | None = uvloop.run(ask())
    except SuperticksError:
        return None
    return version
