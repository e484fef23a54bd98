"""`superticks aggregate`: per-venue super streams merged into the unified one."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from superticks.cli.args import linger_ms, name, positive_int, stream_name
from superticks.cli.loop import run
from superticks.errors import ConfigError

__all__ = ["register"]


def _venues(text: str) -> list[str]:
    venues = [v.strip() for v in text.split(",") if v.strip()]
    if not venues:
        raise argparse.ArgumentTypeError("--venues needs at least one venue")
    if len(set(venues)) != len(venues):
        raise argparse.ArgumentTypeError(f"--venues names a venue twice: {text!r}")
    return venues


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "aggregate",
        help="republish per-venue feeds (market_data_<venue>) into the unified super stream",
        description=(
            "Consume each venue's super stream (market_data_<venue>, as `superticks produce "
            "--exchange NYSE --super-stream market_data_nyse` writes it) as consumer group "
            "--group, and republish every tick into --target with two more application "
            "properties, venue and received_at. Per (venue, symbol) order holds; across "
            "restarts nothing is lost or duplicated (stored source offsets, publishing ids "
            "derived from them, broker deduplication). SIGTERM/SIGINT: drain, store, exit."
        ),
    )
    parser.add_argument("--venues", type=_venues, required=True, help="e.g. NYSE,NASDAQ,CBOE")
    parser.add_argument(
        "--target", type=stream_name, default="ticks", help="unified super stream (default ticks)"
    )
    parser.add_argument(
        "--group", type=name, default="aggregate", help="consumer group (default aggregate)"
    )
    parser.add_argument(
        "--name", type=name, default=None, help="worker name prefix (default hostname-pid)"
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="VENUE=SUPER_STREAM",
        help="a venue's super stream when it is not market_data_<venue> (repeatable)",
    )
    parser.add_argument(
        "--store-every-ms",
        type=positive_int,
        default=200,
        help="store source offsets this often (200)",
    )
    parser.add_argument(
        "--store-every-ticks", type=positive_int, default=1000, help="and every N ticks (1000)"
    )
    parser.add_argument(
        "--linger-ms",
        type=linger_ms,
        default=20.0,
        help="a republished frame that is not full waits this long for more ticks: fewer, "
        "fuller chunks for the nodes to store (0-1000, default 20)",
    )
    parser.add_argument(
        "--sub-entry-size",
        type=positive_int,
        default=1,
        metavar="N",
        help="republish up to N ticks of a target partition as one sub-entry batch (1-1000, "
        "default 1: one message per tick). The nodes then do about a third of the work per "
        "tick, but the official JS client cannot read the unified stream and consumers "
        "cannot filter it by symbol",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary at exit")
    parser.set_defaults(handler=_aggregate)


def _aggregate(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from trading.venues import Aggregator, AggregatorConfig

    sources: dict[str, str] = {}
    for item in args.source:
        venue, sep, stream = item.partition("=")
        if not sep or venue not in args.venues or not stream:
            raise ConfigError(
                f"--source {item!r}: expected VENUE=SUPER_STREAM for a --venues venue"
            )
        sources[venue] = stream
    from superticks.settings import load_settings

    connection, _ = load_settings()
    connection = connection.for_role("aggregator")  # SUPERTICKS_AGGREGATOR_USERNAME, else admin
    try:
        config = AggregatorConfig(
            connection=connection,
            venues=tuple(args.venues),
            target=args.target,
            group=args.group,
            name=args.name,
            sources=sources,
            store_every_ms=args.store_every_ms,
            store_every_ticks=args.store_every_ticks,
            linger_ms=args.linger_ms,
            sub_entry_size=args.sub_entry_size,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        flag = "--" + str(error["loc"][0]).replace("_", "-") if error["loc"] else "options"
        raise ConfigError(f"invalid aggregate option {flag}: {error['msg']}") from None

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        aggregator = Aggregator(config)
        try:
            await aggregator.start()
            while not stop.is_set() and aggregator.failure() is None:
                try:
                    async with asyncio.timeout(2.0):
                        await stop.wait()
                except TimeoutError:
                    status = aggregator.status()
                    venues = " ".join(f"{v}:{s['forwarded']}" for v, s in status["venues"].items())
                    print(
                        f"aggregate: forwarded {status['forwarded']:,} [{venues}] "
                        f"lag p99 {status['lag_s']['p99']} s",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            await aggregator.stop()
        failure = aggregator.failure()
        if failure is not None:
            raise failure
        return aggregator.status()

    summary = run(main())
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0
