"""`superticks produce`: a simulated market feed published by the lossless producer."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from superticks.cli.args import (
    iso_time_us,
    linger_ms,
    name,
    port,
    positive_float,
    positive_int,
    rate,
    stream_name,
)
from superticks.cli.loop import run
from superticks.errors import ConfigError

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "produce",
        help="publish a simulated feed (lossless producer)",
        description=(
            "Publish simulated ticks to the super stream, every tick stored once. One live "
            "producer per --name and super stream: a second process started under a name in "
            "use is refused (exit 2) before it sends anything; a restart under the same name "
            "continues its publishing ids. SIGTERM/SIGINT: stop intake, wait up to "
            "--drain-timeout for the confirms of what was sent, print the summary, exit 0 "
            "(1 if ticks stayed unconfirmed)."
        ),
    )
    parser.add_argument("--symbols", type=positive_int, default=200, help="how many symbols")
    parser.add_argument("--rate", type=rate, default=None, help="ticks/s, or max (default)")
    limit = parser.add_mutually_exclusive_group(required=True)
    limit.add_argument("--count", type=positive_int, help="stop after N ticks")
    limit.add_argument("--duration", type=positive_float, help="stop after D seconds")
    parser.add_argument(
        "--exchanges",
        "--exchange",
        default="NYSE,NASDAQ,CBOE,IEX,ARCA",
        help="the ticks' exchanges (one: a venue's own feed)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--clock",
        choices=("wall", "sim"),
        default="wall",
        help="tick timestamps: the wall clock (default; lag in seconds and replay --from/--to "
        "with real times work) or the simulated clock (reproducible: from "
        "2026-11-25T14:30:00Z, a few us per tick)",
    )
    parser.add_argument(
        "--start-time",
        type=iso_time_us,
        default=None,
        help="the simulated clock from this ISO-8601 UTC instant (implies --clock sim)",
    )
    parser.add_argument("--super-stream", type=stream_name, default="ticks")
    parser.add_argument(
        "--name",
        type=name,
        default="superticks",
        help="producer name (default superticks): its publishing ids (deduplication) continue "
        "across restarts; one live producer per name, so give each concurrent feed its own",
    )
    parser.add_argument(
        "--name-wait",
        type=positive_float,
        default=3.0,
        metavar="S",
        help="seconds to wait for the name to be free before refusing (default 3)",
    )
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
        "--linger-ms",
        type=linger_ms,
        default=0.0,
        metavar="MS",
        help="a frame that is not full waits up to MS ms for more ticks (0: none; fewer, "
        "fuller frames cost the broker less per tick, each tick up to MS ms)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="after SIGTERM/SIGINT, wait at most S seconds for confirms (default 10)",
    )
    parser.add_argument(
        "--metrics-port", type=port, help="serve Prometheus metrics on 127.0.0.1:PORT"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")
    parser.set_defaults(handler=_produce)


def _produce(args: argparse.Namespace) -> int:
    exchanges = [e.strip() for e in args.exchanges.split(",") if e.strip()]
    if not exchanges:
        raise ConfigError("--exchanges needs at least one exchange name")
    import asyncio
    import signal

    from pydantic import ValidationError

    from partitioning.feed import run_feed
    from partitioning.producer import Producer, ProducerConfig
    from partitioning.simulator import MarketSimulator
    from superticks.settings import load_settings

    connection, _ = load_settings()
    connection = connection.for_role("producer")  # SUPERTICKS_PRODUCER_USERNAME, else admin
    try:
        config = ProducerConfig(
            connection=connection,
            super_stream=args.super_stream,
            name=args.name,
            name_wait_s=args.name_wait,
            sub_entry_size=args.sub_entry_size,
            compression=args.compression,
            linger_ms=args.linger_ms,
        )
    except ValidationError as exc:
        raise ConfigError(f"invalid producer options: {exc.errors()[0]['msg']}") from None
    simulator = MarketSimulator(
        args.symbols,
        exchanges=exchanges,
        seed=args.seed,
        realtime=args.clock == "wall" and args.start_time is None,
        start_timestamp_us=args.start_time,
    )

    producer = Producer(config)
    if args.metrics_port is not None:
        from partitioning.metrics import serve_producer_metrics

        try:
            serve_producer_metrics(producer, args.metrics_port)
        except OSError as exc:
            raise ConfigError(f"--metrics-port {args.metrics_port}: {exc.strerror}") from None

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    async def main() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)

        def stopping(sig: signal.Signals) -> None:
            if not stop.is_set():
                progress(f"produce: {sig.name}: intake stopped, draining what was sent")
            stop.set()

        for sig in signals:
            loop.add_signal_handler(sig, stopping, sig)
        try:
            await producer.start()
            try:
                result = await run_feed(
                    producer,
                    simulator,
                    count=args.count,
                    duration_s=args.duration,
                    rate=args.rate,
                    progress=progress,
                    stop=stop,
                    drain_timeout_s=args.drain_timeout,
                )
            finally:
                await producer.stop(timeout_s=0 if stop.is_set() else args.drain_timeout)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
        return result.to_dict()

    summary = run(main())
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        print(
            f"sent {summary['sent']:,}, confirmed {summary['confirmed']:,}, "
            f"re-sent {summary['resent']:,} in {summary['seconds']} s: "
            f"{summary['ticks_per_s']:,.0f} ticks/s"
            + (" (stopped by a signal, drained)" if summary["stopped"] else ""),
            flush=True,
        )
    if summary["unconfirmed"]:
        print(
            f"superticks: error: {summary['unconfirmed']:,} ticks still unconfirmed after "
            f"--drain-timeout {args.drain_timeout:g} s: they may not be stored",
            file=sys.stderr,
        )
        return 1
    return 0
