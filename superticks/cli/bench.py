"""`superticks bench ...`: benchmarks with JSON out (speed targets live here, not in tests)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvloop

from superticks.settings import load_settings

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("bench", help="benchmarks (JSON out)")
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    publish = sub.add_parser("publish", help="superticks' producer vs naive rstream, pika, ceiling")
    publish.add_argument("--count", type=int, default=200_000)
    publish.add_argument("--naive-count", type=int, default=50_000)
    publish.add_argument("--pika-count", type=int, default=2_000)
    publish.add_argument("--symbols", type=int, default=200)
    publish.add_argument("--seed", type=int, default=0)
    publish.add_argument("--json", action="store_true")
    publish.set_defaults(handler=_publish)
    consume = sub.add_parser("consume", help="one superticks worker (decode+VWAP) vs RbFly")
    consume.add_argument("--count", type=int, default=300_000)
    consume.add_argument("--symbols", type=int, default=200)
    consume.add_argument("--seed", type=int, default=0)
    consume.add_argument("--json", action="store_true")
    consume.set_defaults(handler=_consume)
    failover = sub.add_parser(
        "failover", help="a killed worker's and a killed node's partition: time to handle again"
    )
    failover.add_argument("--rate", type=float, default=5_000.0, help="feed ticks/s")
    failover.add_argument("--json", action="store_true")
    failover.set_defaults(handler=_failover)


def _publish(args: argparse.Namespace) -> int:
    from bench.publish import run_publish_bench

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
    print(f"{'contender':40} {'ticks':>9} {'seconds':>8} {'ticks/s':>10}")
    for row in result.rows:
        print(f"{row.name:40} {row.ticks:>9,} {row.seconds:>8.2f} {row.ticks_per_s:>10,.0f}")
    print(f"superticks / naive rstream = {result.vs_naive}x; / ceiling = {result.vs_ceiling}x")
    return 0


def _consume(args: argparse.Namespace) -> int:
    from bench.consume import run_consume_bench

    connection, _ = load_settings()
    result = uvloop.run(
        run_consume_bench(connection, count=args.count, symbols=args.symbols, seed=args.seed)
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(f"{'contender':40} {'ticks':>9} {'seconds':>8} {'ticks/s':>10}")
    for row in result.rows:
        print(f"{row.name:40} {row.ticks:>9,} {row.seconds:>8.2f} {row.ticks_per_s:>10,.0f}")
    if result.vs_rbfly is not None:
        print(f"superticks worker / RbFly = {result.vs_rbfly}x")
    else:
        print("RbFly not installed (`uv sync --group compare`): no comparison row")
    return 0


def _failover(args: argparse.Namespace) -> int:
    import cluster as cl
    from bench.failover import run_failover_bench

    connection, cluster_settings = load_settings()
    target = cl.Cluster(cluster_settings, connection)
    result = uvloop.run(run_failover_bench(connection, target, rate=args.rate))
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    for key, value in result.to_dict().items():
        print(f"{key:22} {value}")
    return 0
