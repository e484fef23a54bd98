"""`superticks bench ...`: benchmarks with JSON out (speed targets live here, not in tests)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from superticks.cli import failover
from superticks.cli.args import positive_int
from superticks.errors import ConfigError

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("bench", help="benchmarks (JSON out)")
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    publish = sub.add_parser("publish", help="superticks' producer vs naive rstream, pika, ceiling")
    publish.add_argument("--count", type=positive_int, default=200_000)
    publish.add_argument("--naive-count", type=positive_int, default=50_000, help="<= --count")
    publish.add_argument("--pika-count", type=positive_int, default=2_000, help="<= --count")
    publish.add_argument("--symbols", type=positive_int, default=200)
    publish.add_argument("--seed", type=int, default=0)
    publish.add_argument("--json", action="store_true")
    publish.set_defaults(handler=_publish)
    consume = sub.add_parser("consume", help="one superticks worker (decode+VWAP) vs RbFly")
    consume.add_argument("--count", type=positive_int, default=300_000)
    consume.add_argument("--symbols", type=positive_int, default=200)
    consume.add_argument("--seed", type=int, default=0)
    consume.add_argument("--json", action="store_true")
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


def _publish(args: argparse.Namespace) -> int:
    for flag in ("naive_count", "pika_count"):
        if getattr(args, flag) > args.count:
            raise ConfigError(
                f"--{flag.replace('_', '-')} {getattr(args, flag)} is more than --count "
                f"{args.count} (it times the first ticks of the same run)"
            )
    import uvloop

    from bench.publish import run_publish_bench
    from superticks.settings import load_settings

    connection, _ = load_settings()
    result = uvloop.run(
        run_publish_bench(
            connection,
            count=args.count,
            naive_count=args.naive_count,
            pika_count=args.pika_count,
            symbols=args.symbols,
            seed=args.seed,
        )
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    _print_rows(result.rows)
    print(
        f"superticks / naive rstream = {result.vs_naive}x; / per-message-id ceiling = "
        f"{result.vs_ceiling}x; / sub-entry limit = {result.vs_subentry}x"
    )
    return 0


def _consume(args: argparse.Namespace) -> int:
    import uvloop

    from bench.consume import run_consume_bench
    from superticks.settings import load_settings

    connection, _ = load_settings()
    result = uvloop.run(
        run_consume_bench(connection, count=args.count, symbols=args.symbols, seed=args.seed)
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    _print_rows(result.rows)
    if result.vs_rbfly is not None:
        print(f"superticks worker / RbFly = {result.vs_rbfly}x")
    else:
        print("RbFly not installed (`uv sync --group compare`): no comparison row")
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


def _print_rows(rows: Sequence[Any]) -> None:
    """A contender table: name, ticks, seconds, ticks/s (publish and consume rows alike)."""
    print(f"{'contender':40} {'ticks':>9} {'seconds':>8} {'ticks/s':>10}")
    for row in rows:
        print(f"{row.name:40} {row.ticks:>9,} {row.seconds:>8.2f} {row.ticks_per_s:>10,.0f}")
