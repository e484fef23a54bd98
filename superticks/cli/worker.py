"""`superticks worker`: one member of a single-active-consumer group on the super stream."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

from superticks.cli.args import (
    name,
    non_negative_int,
    port,
    positive_float,
    positive_int,
    stream_name,
)
from superticks.cli.loop import run
from superticks.errors import ConfigError, SuperticksError

__all__ = ["register"]

HANDLERS = ("vwap", "print", "count", "verify", "strategy", "bbo")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "worker",
        help="consume the super stream as one worker of a consumer group (SAC per partition)",
        description=(
            "Join consumer group GROUP on every partition of the super stream: the broker makes "
            "one worker of the group active per partition and moves partitions when workers "
            "come and go. Offsets are stored under the group's name; undecodable ticks and "
            "ticks the handler keeps failing on go to <super-stream>-dlq. SIGTERM/SIGINT: stop "
            "intake, drain, store offsets, exit."
        ),
    )
    parser.add_argument(
        "--group", type=name, required=True, help="consumer group name (offset reference)"
    )
    parser.add_argument("--name", type=name, default=None, help="worker id (default: hostname-pid)")
    parser.add_argument(
        "--handler",
        dest="handler_name",
        choices=HANDLERS,
        default="vwap",
        help="what to do with ticks: per-symbol VWAP (default), print them, count them (per "
        "partition and symbol; counts only), or verify: record each handled (partition, "
        "offset, symbol, sequence) in RECORD_DIR/<name>.handled for `superticks verify`; "
        "strategy: the paper strategy (decisions to the audit log, see its options); bbo: the "
        "best bid and offer across venues",
    )
    strategy = parser.add_argument_group(
        "strategy (--handler strategy: mean reversion per symbol, orders to the audit log)"
    )
    strategy.add_argument(
        "--strategy-name",
        type=name,
        default=None,
        help="names its events, orders and audit producers (default: strategy-GROUP)",
    )
    strategy.add_argument("--window", type=positive_int, default=20, help="ticks in the mean (20)")
    strategy.add_argument(
        "--threshold-bps",
        type=positive_int,
        default=5,
        help="distance from the mean that trades (5)",
    )
    strategy.add_argument(
        "--quantity", type=positive_int, default=300, help="shares per order (300)"
    )
    strategy.add_argument(
        "--max-position", type=positive_int, default=900, help="largest position either way (900)"
    )
    strategy.add_argument(
        "--order-ttl", type=positive_int, default=3, help="ticks of its symbol an order rests (3)"
    )
    strategy.add_argument(
        "--audit-stream", type=stream_name, default="trading_audit_log", help="the audit log"
    )
    strategy.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=1_000_000,
        help="ticks of a partition between checkpoints of its state (in AUDIT-STREAM"
        "_checkpoints; a rebuild replays only the ticks after the latest; 0: none) (1000000)",
    )
    parser.add_argument(
        "--record-dir",
        default=None,
        help="where --handler verify writes its handled log (required with it)",
    )
    parser.add_argument(  # tests only: a deliberately broken handler that skips a tick
        "--drop-offset", type=int, default=None, help=argparse.SUPPRESS
    )
    parser.add_argument(  # benches only: a busy (awaiting) verifying handler, ms per chunk
        "--busy-ms", type=int, default=0, help=argparse.SUPPRESS
    )
    parser.add_argument(  # benches only: --busy-ms on the next chunk after each SIGUSR1 only
        "--busy-once", action="store_true", help=argparse.SUPPRESS
    )
    parser.add_argument(  # benches only: --busy-ms blocks the event loop (CPU-bound handler)
        "--busy-blocking", action="store_true", help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--super-stream", type=stream_name, default="ticks", help="super stream (default: ticks)"
    )
    parser.add_argument(
        "--start",
        choices=("first", "last", "next"),
        default="first",
        help="where to start on partitions the group has no stored offset for (default: first)",
    )
    parser.add_argument(
        "--store-every-ms",
        type=positive_int,
        default=None,
        help="store offsets at least this often (default 200; a crash re-handles up to this)",
    )
    parser.add_argument(
        "--store-every-ticks", type=positive_int, default=None, help="and every N ticks (10000)"
    )
    parser.add_argument(
        "--credits",
        type=positive_int,
        default=None,
        metavar="N",
        help="chunks the broker may send ahead per partition, 1-1000 (default 64; more lets a "
        "worker that fell behind catch up with fewer waits for credit, at the cost of memory: "
        "up to N chunks of up to ~1,000 ticks each per partition)",
    )
    parser.add_argument(
        "--exit-when-idle",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="stop gracefully (as on SIGTERM) when, after handling ticks, no tick came for "
        "SECONDS (batch runs)",
    )
    parser.add_argument(
        "--metrics-port", type=port, default=None, help="serve Prometheus metrics on this port"
    )
    parser.add_argument(
        "--give-up-after",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="exit (status 2) after this long without the cluster; default: never, the worker "
        "waits through any outage and rejoins its group",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON summary line on stdout at exit"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.handler_name == "verify" and args.record_dir is None:
        raise ConfigError("--handler verify needs --record-dir DIR (where its log goes)")
    if args.record_dir is not None and args.handler_name != "verify":
        raise ConfigError("--record-dir goes with --handler verify")
    from pydantic import ValidationError

    from superticks.settings import load_settings
    from workers.gc_tuning import tune_for_throughput
    from workers.group import GroupWorker, WorkerConfig, run_worker
    from workers.handled import VerifyingHandler
    from workers.handlers import (
        Closing,
        CountHandler,
        TickHandler,
        VwapHandler,
        handler_named,
    )
    from workers.metrics import SymbolCollector, WorkerMetrics
    from workers.vwap import COMPILED_FOLD

    connection, _ = load_settings()
    # SUPERTICKS_WORKER_USERNAME (a strategy: SUPERTICKS_STRATEGY_USERNAME), else the admin
    connection = connection.for_role("strategy" if args.handler_name == "strategy" else "worker")
    options: dict[str, Any] = {
        "connection": connection,
        "group": args.group,
        "super_stream": args.super_stream,
        "start": args.start,
        "give_up_after_s": args.give_up_after,
    }
    if args.name is not None:
        options["name"] = args.name
    if args.store_every_ms is not None:
        options["store_every_ms"] = args.store_every_ms
    if args.store_every_ticks is not None:
        options["store_every_ticks"] = args.store_every_ticks
    if args.credits is not None:
        options["credits"] = args.credits
    try:
        config = WorkerConfig(**options)
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid worker options: {problems}") from None

    handler: TickHandler
    if args.handler_name == "verify":
        handler = VerifyingHandler(
            args.record_dir,
            config.name,
            drop_offset=args.drop_offset,
            busy_s=max(0, args.busy_ms) / 1000,
            busy_once=args.busy_once,
            busy_blocking=args.busy_blocking,
        )
    elif args.handler_name == "strategy":
        from trading.strategy import StrategyHandler, StrategyParams

        try:
            params = StrategyParams(
                name=args.strategy_name or f"strategy-{config.group}",
                window=args.window,
                threshold_bps=args.threshold_bps,
                quantity=args.quantity,
                max_position=args.max_position,
                order_ttl=args.order_ttl,
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"invalid strategy options: {problems}") from None
        handler = StrategyHandler(
            connection,
            params,
            super_stream=config.super_stream,
            audit_stream=args.audit_stream,
            checkpoint_every=args.checkpoint_every,
        )
    elif args.handler_name == "bbo":
        from trading.venues import BboHandler

        handler = BboHandler()
    else:
        handler = handler_named(args.handler_name)

    metrics = WorkerMetrics(config.group, config.name)
    if isinstance(handler, VwapHandler):
        metrics.registry.register(SymbolCollector(config.group, handler))
        if not COMPILED_FOLD:
            print(
                "warning: workers/_fold.c is not compiled (no C compiler when the project was "
                "installed): the VWAP worker decodes in Python, about 3x slower; install a C "
                "compiler, then `uv sync --reinstall-package superticks`",
                file=sys.stderr,
            )
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        try:
            start_http_server(args.metrics_port, addr="127.0.0.1", registry=metrics.registry)
        except OSError as exc:
            raise ConfigError(f"--metrics-port {args.metrics_port}: {exc.strerror}") from None

    idle = {"consumed": -1.0, "since": time.monotonic()}

    def progress(worker: GroupWorker) -> None:
        if args.exit_when_idle is not None:
            now = time.monotonic()
            if worker.consumed != idle["consumed"] or not worker.consumed:
                idle["consumed"], idle["since"] = worker.consumed, now
            elif now - idle["since"] >= args.exit_when_idle:
                os.kill(os.getpid(), signal.SIGTERM)  # run_worker's graceful stop
        parts = " ".join(
            f"p{p['partition']}:{'A' if p['active'] else '-'}:{p['consumed']}"
            for p in worker.status()["partitions"]
        )
        print(
            f"worker {config.name} group {config.group}: consumed={worker.consumed} "
            f"dup={worker.duplicates} dlq={worker.dead_letters} [{parts}]",
            file=sys.stderr,
            flush=True,
        )

    tune_for_throughput()  # after the imports: start-up objects out of every GC pass
    every = 2.0 if args.exit_when_idle is None else min(2.0, max(0.2, args.exit_when_idle / 4))

    async def main() -> GroupWorker:
        if isinstance(handler, VerifyingHandler) and args.busy_once:
            import asyncio

            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, handler.arm)
        try:
            return await run_worker(
                config, handler, progress=progress, metrics=metrics, progress_every_s=every
            )
        finally:
            if isinstance(handler, Closing):
                await handler.close()

    try:
        worker = run(main())
    except SuperticksError as exc:
        if args.json:
            failure = f"{type(exc).__name__}: {exc}"
            print(json.dumps({"worker": config.name, "state": "failed", "failure": failure}))
        raise
    summary = worker.status()
    if isinstance(handler, VwapHandler):
        summary["symbols"] = len(handler.vwap)
    elif isinstance(handler, CountHandler):
        summary["counted"] = handler.total
        summary["symbols"] = len(handler.per_symbol)
    handler_summary = getattr(handler, "summary", None)
    if callable(handler_summary):
        summary["handler"] = handler_summary()
    if args.json:
        print(json.dumps(summary), flush=True)
    return 0
