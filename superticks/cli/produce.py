"""`superticks produce`: a simulated market feed published by the lossless producer."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import uvloop
from pydantic import ValidationError

from partitioning.feed import run_feed
from partitioning.producer import Producer, ProducerConfig
from superticks.cli.args import positive_int, rate
from superticks.errors import ConfigError
from superticks.settings import load_settings

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("produce", help="publish a simulated feed (lossless producer)")
    parser.add_argument("--symbols", type=positive_int, default=200, help="how many symbols")
    parser.add_argument("--rate", type=rate, default=None, help="ticks/s, or max (default)")
    limit = parser.add_mutually_exclusive_group(required=True)
    limit.add_argument("--count", type=positive_int, help="stop after N ticks")
    limit.add_argument("--duration", type=float, help="stop after D seconds")
    parser.add_argument("--exchanges", default="NYSE,NASDAQ,CBOE,IEX,ARCA")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--clock",
        choices=("wall", "sim"),
        default="wall",
        help="tick timestamps: the wall clock (default; lag in seconds and replay --from/--to "
        "with real times work) or the simulated clock (reproducible: from "
        "2026-11-25T14:30:00Z, a few us per tick)",
    )
    parser.add_argument("--super-stream", default="ticks")
    parser.add_argument("--name", default="superticks", help="producer name (deduplication)")
    parser.add_argument(
        "--sub-entry-size",
        type=positive_int,
        default=1,
        help="ticks per sub-entry batch (default 1: one message per tick, readable by every "
        "client; >1 is smaller but the official JS client cannot read it)",
    )
    parser.add_argument(
        "--compression",
        choices=("none", "gzip", "zstd"),
        default="none",
        help="compress sub-entry batches (needs --sub-entry-size > 1)",
    )
    parser.add_argument(
        "--metrics-port", type=positive_int, help="serve Prometheus metrics on 127.0.0.1:PORT"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")
    parser.set_defaults(handler=_produce)


def _produce(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration must be > 0, not {args.duration}")
    exchanges = [e.strip() for e in args.exchanges.split(",") if e.strip()]
    if not exchanges:
        raise ConfigError("--exchanges needs at least one exchange name")
    from partitioning.simulator import MarketSimulator

    connection, _ = load_settings()
    try:
        config = ProducerConfig(
            connection=connection,
            super_stream=args.super_stream,
            name=args.name,
            sub_entry_size=args.sub_entry_size,
            compression=args.compression,
        )
    except ValidationError as exc:
        raise ConfigError(f"invalid producer options: {exc.errors()[0]['msg']}") from None
    simulator = MarketSimulator(
        args.symbols, exchanges=exchanges, seed=args.seed, realtime=args.clock == "wall"
    )

    producer = Producer(config)
    if args.metrics_port is not None:
        from partitioning.metrics import serve_producer_metrics

        try:
            serve_producer_metrics(producer, args.metrics_port)
        except OSError as exc:
            raise ConfigError(f"--metrics-port {args.metrics_port}: {exc.strerror}") from None

    async def main() -> dict[str, Any]:
        async with producer:
            result = await run_feed(
                producer,
                simulator,
                count=args.count,
                duration_s=args.duration,
                rate=args.rate,
                progress=lambda line: print(line, file=sys.stderr),
            )
        return result.to_dict()

    summary = uvloop.run(main())
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"sent {summary['sent']:,}, confirmed {summary['confirmed']:,}, "
            f"re-sent {summary['resent']:,} in {summary['seconds']} s: "
            f"{summary['ticks_per_s']:,.0f} ticks/s"
        )
    return 0
