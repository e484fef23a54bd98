"""`superticks bench ...`: benchmarks with JSON out (speed targets live here, not in tests)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from superticks.cli import failover
from superticks.cli.args import linger_ms, positive_float, positive_int
from superticks.cli.loop import run
from superticks.cli.reporting import emit, measured
from superticks.errors import ConfigError

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
    _rounds_flag(publish)
    _report_flags(publish)
    publish.set_defaults(handler=_publish)
    consume = sub.add_parser(
        "consume",
        help="raw delivery vs `superticks worker` (CLI defaults, vwap) vs RbFly, same ticks",
    )
    consume.add_argument(
        "--count", type=positive_int, default=1_000_000, help="ticks stored and read (1,000,000)"
    )
    consume.add_argument("--partitions", type=positive_int, default=3)
    consume.add_argument("--symbols", type=positive_int, default=200)
    consume.add_argument("--seed", type=int, default=0)
    _rounds_flag(consume)
    _report_flags(consume)
    consume.set_defaults(handler=_consume)
    latency = sub.add_parser(
        "latency",
        help="end-to-end latency (tick creation to handler) at 10/50/90%% of the max rate",
    )
    latency.add_argument(
        "--duration", type=positive_float, default=10.0, help="recorded seconds per rate"
    )
    latency.add_argument(
        "--warmup", type=positive_float, default=1.0, help="unrecorded seconds per rate"
    )
    latency.add_argument(
        "--flood", type=positive_int, default=150_000, help="ticks sent flat out for the max"
    )
    latency.add_argument(
        "--rate",
        dest="fixed_rates",
        metavar="R",
        type=positive_float,
        action="append",
        default=None,
        help="also measure at R ticks/s (repeatable; default 20000, the guide's target)",
    )
    latency.add_argument("--partitions", type=positive_int, default=3)
    latency.add_argument("--symbols", type=positive_int, default=200)
    latency.add_argument("--seed", type=int, default=0)
    latency.add_argument(
        "--linger-ms",
        type=linger_ms,
        default=0.0,
        help="the producer's linger_ms: how long a frame not full waits for more ticks (0)",
    )
    latency.add_argument(
        "--sub-entry-size",
        type=positive_int,
        default=1,
        metavar="N",
        help="the producer's sub_entry_size: up to N ticks in one sub-entry batch (1: a message "
        "per tick, the default, which every client reads; the official JS client cannot read "
        "sub-entry batches)",
    )
    latency.add_argument(
        "--plain-reader",
        action="store_true",
        help="also time the chunks at a reader that does nothing with them (the broker's share)",
    )
    _report_flags(latency)
    latency.set_defaults(handler=_latency)
    scaling = sub.add_parser(
        "scaling",
        help="a fixed rate against 1-3 worker processes and 3/6/12 partitions: lag, drain",
    )
    scaling.add_argument(
        "--rate", type=positive_float, default=60_000.0, help="offered ticks/s (default 60000)"
    )
    scaling.add_argument("--duration", type=positive_float, default=10.0, help="feed seconds")
    scaling.add_argument(
        "--partitions", type=_int_list, default=[3, 6, 12], help="comma list (default 3,6,12)"
    )
    scaling.add_argument(
        "--workers", type=_int_list, default=[1, 2, 3], help="comma list (default 1,2,3)"
    )
    scaling.add_argument("--symbols", type=positive_int, default=200)
    scaling.add_argument("--seed", type=int, default=0)
    _report_flags(scaling)
    scaling.set_defaults(handler=_scaling)
    filtering = sub.add_parser(
        "filter", help="messages a one-symbol reader receives with/without server-side filtering"
    )
    filtering.add_argument("--count", type=positive_int, default=100_000, help="ticks to publish")
    filtering.add_argument("--symbols", type=positive_int, default=50)
    filtering.add_argument("--batch", type=positive_int, default=2_000, help="ticks per send_batch")
    filtering.add_argument("--seed", type=int, default=0)
    _json_flag(filtering)
    filtering.set_defaults(handler=_filter)
    failover.register(sub)
    monitor = sub.add_parser(
        "monitor", help="one poll of the lag exporter: 3 partitions x N groups (target < 200 ms)"
    )
    monitor.add_argument("--groups", type=positive_int, default=10)
    monitor.add_argument("--polls", type=positive_int, default=20)
    monitor.add_argument("--count", type=positive_int, default=60_000, help="ticks to publish")
    _json_flag(monitor)
    monitor.set_defaults(handler=_monitor)
    audit = sub.add_parser(
        "audit",
        help="audit-log rebuild: write N events to a fresh log, time `audit replay` of it",
    )
    audit.add_argument("--count", type=positive_int, default=1_000_000, help="events (1M)")
    audit.add_argument("--symbols", type=positive_int, default=200)
    audit.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        help="time the fold alone and the rebuild from the log this many times, in turns; "
        "figures are medians (default 3)",
    )
    _json_flag(audit)
    audit.set_defaults(handler=_audit)
    aggregate = sub.add_parser(
        "aggregate", help="venue feeds merged by a `superticks aggregate` process: rate and lag"
    )
    aggregate.add_argument("--venues", type=positive_int, default=3, help="venue feeds (3)")
    aggregate.add_argument(
        "--rate", type=positive_float, default=30_000.0, help="ticks/s per venue (30000)"
    )
    aggregate.add_argument(
        "--duration", type=positive_float, default=10.0, help="seconds of feed (10)"
    )
    aggregate.add_argument(
        "--linger-ms",
        type=linger_ms,
        default=None,
        help="the aggregator's --linger-ms (default: its own default, 20)",
    )
    aggregate.add_argument(
        "--sub-entry-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="the aggregator's --sub-entry-size (default: its own default, 1)",
    )
    aggregate.add_argument(
        "--feed-sub-entry-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="the venue feeds' --sub-entry-size (default 100, as the README recommends for "
        "venue feeds: the venue streams' only reader is the aggregator, so the JS client's "
        "limit does not apply to them; 1: a message per tick)",
    )
    aggregate.add_argument(
        "--feed-linger-ms",
        type=linger_ms,
        default=None,
        metavar="MS",
        help="the venue feeds' --linger-ms (default 50, as the README recommends for venue "
        "feeds: fewer, fuller chunks; 0: a frame per partition every 10 ms batch)",
    )
    aggregate.add_argument(
        "--feed-compression",
        choices=["none", "gzip", "zstd"],
        default=None,
        help="the venue feeds' --compression (default none; zstd writes fewer bytes for "
        "long runs, at some CPU)",
    )
    _json_flag(aggregate)
    aggregate.set_defaults(handler=_aggregate)
    for bench in sub.choices.values():  # every bench's report says how the machine's CPU went
        bench.set_defaults(handler=measured(bench.get_default("handler")))


def _publish(args: argparse.Namespace) -> int:
    from bench.publish import CEILING_TARGET, RBFLY_TARGET, run_publish_bench
    from bench.report import plot_bars, table
    from superticks.settings import load_settings

    connection, _ = load_settings()
    params = {
        k: getattr(args, k)
        for k in ("count", "warmup", "partitions", "symbols", "seed", "pika", "rounds")
    }
    result = run(run_publish_bench(connection, **params, show_progress=not args.json))
    emit(args, "publish", params, result.to_dict())
    if args.plot:
        rates = {r.name: r.ticks_per_s for r in result.rows}
        plot_bars(args.plot / "publish.png", "bench publish: confirmed ticks/s", "ticks/s", rates)
    if not args.json:
        headers = [
            "contender", "ticks", "seconds", "ticks/s", "each round", "read back",
            "client CPU us/tick", "broker CPU us/tick",
        ]  # fmt: skip
        rows = [
            [
                r.name, r.ticks, r.seconds, r.ticks_per_s, _each(r.rates), r.stored,
                r.client_cpu_us_per_tick, r.broker_cpu_us_per_tick,
            ]
            for r in result.rows
        ]  # fmt: skip
        print(f"{result.rounds} round(s), the order rotated each round; medians, ratios of rounds")
        print(table(headers, rows))
        print(f"superticks / ceiling per round: {_each(result.vs_ceiling_rounds)}")
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
    from bench.consume import WORKER_TARGET, run_consume_bench
    from bench.report import plot_bars, table
    from superticks.settings import load_settings

    connection, _ = load_settings()
    result = run(
        run_consume_bench(
            connection,
            count=args.count,
            partitions=args.partitions,
            symbols=args.symbols,
            seed=args.seed,
            rounds=args.rounds,
            show_progress=not args.json,
        )
    )
    params = {k: getattr(args, k) for k in ("count", "partitions", "symbols", "seed", "rounds")}
    emit(args, "consume", params, result.to_dict())
    if args.plot:
        rates = {r.name: r.ticks_per_s for r in result.rows}
        plot_bars(
            args.plot / "consume.png", "bench consume: ticks/s (steady state)", "ticks/s", rates
        )
    if not args.json:
        headers = [
            "reader", "ticks read", "seconds", "ticks/s", "each round", "CPU us/tick",
            "start-up s",
        ]  # fmt: skip
        rows = [
            [
                r.name, r.ticks, r.seconds, r.ticks_per_s, _each(r.rates), r.cpu_us_per_tick,
                r.startup_s,
            ]
            for r in result.rows
        ]  # fmt: skip
        print(f"{result.rounds} round(s), the order rotated each round; medians, ratios of rounds")
        print(table(headers, rows))
        rbfly = (
            f"; / RbFly = {result.worker_vs_rbfly}x (target >= 2x)"
            if result.worker_vs_rbfly is not None
            else "; RbFly not installed (`uv sync --group compare`)"
        )
        print(
            f"worker / raw delivery = {result.worker_vs_raw}x (target >= {WORKER_TARGET}x; "
            f"per round {_each(result.worker_vs_raw_rounds)}){rbfly}; parse only / raw delivery "
            f"= {result.parse_vs_raw}x (the bound of any reader that parses every body); "
            f"worker machinery / raw delivery = {result.machinery_vs_raw}x (the worker before "
            f"it decodes)"
        )
    return 0


def _refuse_big_sub_entries(flag: str, size: int) -> None:
    """A producer's sub-entry size over its limit, refused before anything starts."""
    from partitioning.producer import SUB_ENTRY_SIZE_MAX

    if size > SUB_ENTRY_SIZE_MAX:
        raise ConfigError(f"{flag}: at most {SUB_ENTRY_SIZE_MAX}")


def _latency(args: argparse.Namespace) -> int:
    from bench.latency import P99_TARGET_MS, run_latency_bench
    from bench.report import plot_lines, table
    from superticks.settings import load_settings

    _refuse_big_sub_entries("--sub-entry-size", args.sub_entry_size)
    connection, _ = load_settings()
    params: dict[str, Any] = {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "flood": args.flood,
        "fixed_rates": args.fixed_rates or [20_000.0],
        "partitions": args.partitions,
        "symbols": args.symbols,
        "seed": args.seed,
        "linger_ms": args.linger_ms,
        "sub_entry_size": args.sub_entry_size,
        "plain_reader": args.plain_reader,
    }
    result = run(run_latency_bench(connection, **params, show_progress=not args.json))
    emit(args, "latency", params, result.to_dict())
    steps = sorted(result.steps, key=lambda s: s.achieved_per_s)
    if args.plot:
        xs = [s.achieved_per_s for s in steps]
        series = {
            f"end-to-end {q}": (xs, [float(s.end_to_end_ms[q]) for s in steps])
            for q in ("p50", "p99", "p99.9")
        }
        series["confirm p99"] = (xs, [float(s.confirm_ms["p99"]) for s in steps])
        if xs:
            series[f"target p99 {P99_TARGET_MS:g} ms"] = ([min(xs), max(xs)], [P99_TARGET_MS] * 2)
        plot_lines(
            args.plot / "latency.png",
            f"bench latency (max {result.max_rate:,.0f} ticks/s)",
            "ticks/s",
            "ms",
            series,
            log_y=True,
            markers=True,
        )
    if not args.json:
        print(
            f"max rate {result.max_rate:,.0f} ticks/s (worker handled "
            f"{result.max_handled_per_s:,.0f}/s, producer published "
            f"{result.max_published_per_s:,.0f}/s)"
        )
        headers = [
            "rate", "ticks/s", "ticks", "handled", "e2e p50", "p99", "p99.9", "max",
            "confirm p50", "p99", "p99.9", "feed stall",
        ]  # fmt: skip
        rows = [
            [
                s.name, s.achieved_per_s, s.sent, s.handled, s.end_to_end_ms["p50"],
                s.end_to_end_ms["p99"], s.end_to_end_ms["p99.9"], s.end_to_end_ms["max"],
                s.confirm_ms["p50"], s.confirm_ms["p99"], s.confirm_ms["p99.9"], s.feed_late_ms,
            ]
            for s in steps
        ]  # fmt: skip
        print(table(headers, rows))
        print("(latencies in ms)")
        stages = [name for name in steps[0].stages_ms] if steps else []
        if stages:
            print("where the end-to-end time went (ms, p50 / p99 per stage):")
            plain = any(s.plain_reader_ms for s in steps)
            headers = ["rate", *stages, "worker loop lag", "worker ran / waited"]
            headers += ["plain reader"] if plain else []
            headers += ["machine busy / steal"]
            cells = []
            for s in steps:
                p = s.plain_reader_ms
                lag = s.worker_loop_lag_ms
                cpu = (
                    f"{s.worker_ran:.0%} / {s.worker_waited:.0%}"
                    if s.worker_ran is not None and s.worker_waited is not None
                    else "-"
                )
                cells.append(
                    [s.name]
                    + [f"{s.stages_ms[n]['p50']} / {s.stages_ms[n]['p99']}" for n in stages]
                    + [f"{lag.get('p50', '-')} / {lag.get('p99', '-')}", cpu]
                    + ([f"{p.get('p50', '-')} / {p.get('p99', '-')}"] if plain else [])
                    + [
                        f"{s.machine_cpu['busy']:.0%} / {s.machine_cpu['steal']:.0%}"
                        if s.machine_cpu is not None
                        else "-"
                    ]
                )
            print(table(headers, cells))
            print(
                "(worker ran / waited: of each step's time, the worker process ran, and it was "
                "ready to run but waited for a core"
                + (
                    "; plain reader: leader to a reader of the same chunks that does nothing "
                    "else, the broker's share of leader to worker"
                    if plain
                    else ""
                )
                + "; machine busy / steal: of the machine's CPU time in the recorded window, "
                "busy, and taken by the hypervisor for other guests)"
            )
            skewed = sum(s.clock_skewed for s in steps)
            if skewed:
                print(
                    f"{skewed:,} ticks' chunk timestamps were off this host's clock: the broker "
                    "is not on this host's clock, the stage split above is not to be trusted"
                )
        for target, met in result.meets.items():
            print(f"{target}: {'met' if met else 'NOT met'} (target p99 <= {P99_TARGET_MS} ms)")
    return 0


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,2,3, not {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected numbers >= 1 like 1,2,3, not {text!r}")
    return values


def _scaling(args: argparse.Namespace) -> int:
    from bench.report import plot_lines, table
    from bench.scaling import run_scaling_bench
    from superticks.settings import load_settings

    connection, _ = load_settings()
    params: dict[str, Any] = {
        "rate": args.rate,
        "duration_s": args.duration,
        "partitions": args.partitions,
        "workers": args.workers,
        "symbols": args.symbols,
        "seed": args.seed,
    }
    result = run(run_scaling_bench(connection, **params, show_progress=not args.json))
    emit(args, "scaling", params, result.to_dict())
    if args.plot:
        lag = {}
        rate = {}
        for one in result.runs:
            key = f"{one.partitions}p/{one.workers}w"
            ts = [t for t, _, _ in one.series]
            lag[key] = (ts, [p - h for _, p, h in one.series])
            pairs = list(zip(one.series, one.series[1:], strict=False))
            rate[key] = (
                [b[0] for a, b in pairs],
                [(b[2] - a[2]) / (b[0] - a[0]) if b[0] > a[0] else 0.0 for a, b in pairs],
            )
        marks = [(result.duration_s, "feed stops")]
        plot_lines(
            args.plot / "scaling-lag.png", f"lag at {result.rate:,.0f} ticks/s offered",
            "seconds", "lag (ticks)", lag, marks=marks,
        )  # fmt: skip
        plot_lines(
            args.plot / "scaling-handled.png", "handled rate", "seconds", "ticks/s", rate,
            marks=marks,
        )  # fmt: skip
    if not args.json:
        headers = [
            "partitions", "workers", "offered/s", "published/s", "handled/s", "max lag",
            "backlog", "drain s", "handled", "published", "ticks/CPU-s",
        ]  # fmt: skip
        rows = [
            [
                str(r.partitions), r.workers, r.offered_per_s, r.published_per_s,
                r.handled_per_s, r.max_lag, r.backlog, r.drain_s, r.handled, r.published,
                r.ticks_per_cpu_s,
            ]
            for r in result.runs
        ]  # fmt: skip
        print(table(headers, rows))
    return 0


def _filter(args: argparse.Namespace) -> int:
    from bench.filter import run_filter_bench
    from superticks.settings import load_settings

    connection, _ = load_settings()
    result = run(
        run_filter_bench(
            connection, count=args.count, symbols=args.symbols, batch=args.batch, seed=args.seed
        )
    )
    params = {k: getattr(args, k) for k in ("count", "symbols", "batch", "seed")}
    emit(args, "filter", params, result.to_dict())
    if args.json:
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


def _audit(args: argparse.Namespace) -> int:
    from bench.trading import bench_rebuild
    from superticks.settings import load_settings

    connection, _ = load_settings()
    result = run(
        bench_rebuild(
            connection, args.count, args.symbols, rounds=args.rounds, show_progress=not args.json
        )
    )
    params = {k: getattr(args, k) for k in ("count", "symbols", "rounds")}
    emit(args, "audit", params, result)
    if not args.json:
        log = result["from_log"]
        print(
            f"rebuilt {log['events_read']:,} of {result['events']:,} events from the log in "
            f"{log['seconds']} s ({log['events_per_s']:,.0f} events/s; "
            f"{log['events_per_cpu_s']:,.0f} per CPU second; the fold alone "
            f"{result['fold_only']['events_per_cpu_s']:,.0f} per CPU second; target "
            f"{result['target_events_per_s']:,}); same as in memory: "
            f"{result['same_as_in_memory']}"
        )
        print(
            f"{result['rounds']} round(s), medians; per CPU second each round: from the log "
            f"{_each(log['events_per_cpu_s_rounds'])}, the fold alone "
            f"{_each(result['fold_only']['events_per_cpu_s_rounds'])}"
        )
    return 0


def _aggregate(args: argparse.Namespace) -> int:
    from bench.trading import bench_aggregate
    from superticks.settings import load_settings
    from trading.venues import SUB_ENTRY_MAX

    if args.venues > 8:
        raise ConfigError("--venues: at most 8")
    if args.sub_entry_size is not None and args.sub_entry_size > SUB_ENTRY_MAX:
        raise ConfigError(f"--sub-entry-size: at most {SUB_ENTRY_MAX} (the aggregator's limit)")
    if args.feed_sub_entry_size is not None:
        _refuse_big_sub_entries("--feed-sub-entry-size", args.feed_sub_entry_size)
    feeds: dict[str, Any] = {}  # given: else bench_aggregate's defaults (the README's advice)
    if args.feed_sub_entry_size is not None:
        feeds["feed_sub_entry_size"] = args.feed_sub_entry_size
    if args.feed_linger_ms is not None:
        feeds["feed_linger_ms"] = args.feed_linger_ms
    if args.feed_compression is not None:
        if args.feed_compression != "none" and args.feed_sub_entry_size == 1:
            raise ConfigError(
                "--feed-compression: applies to sub-entry batches, not to --feed-sub-entry-size 1"
            )
        feeds["feed_compression"] = args.feed_compression
    connection, _ = load_settings()
    result = run(
        bench_aggregate(
            connection,
            venues=args.venues,
            rate=args.rate,
            seconds=args.duration,
            linger_ms=args.linger_ms,
            sub_entry_size=args.sub_entry_size,
            show_progress=not args.json,
            **feeds,
        )
    )
    params = {
        k: getattr(args, k) for k in ("venues", "rate", "duration", "linger_ms", "sub_entry_size")
    } | feeds
    emit(args, "aggregate", params, result)
    if not args.json:
        print(
            f"{result['venues']} venues at {result['fed_ticks_per_s_per_venue']:,.0f} ticks/s "
            f"each (offered {result['offered_ticks_per_s_per_venue']:,.0f}): forwarded "
            f"{result['forwarded']:,} of {result['sent']:,}, lag {result['lag_s']}, "
            f"kept up: {result['kept_up']}"
        )
    return 0


def _monitor(args: argparse.Namespace) -> int:
    from bench.monitor import run_monitor_bench
    from superticks.settings import load_settings

    connection, _ = load_settings()
    result = run(
        run_monitor_bench(connection, groups=args.groups, polls=args.polls, count=args.count)
    )
    params = {k: getattr(args, k) for k in ("groups", "polls", "count")}
    emit(args, "monitor", params, result.to_dict())
    if args.json:
        return 0
    for key, value in result.to_dict().items():
        print(f"{key:16} {value}")
    return 0


def _rounds_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=3,
        help="run every contender this many times, the order rotated each round; rows show "
        "medians, ratios are medians of the rounds' ratios (default 3)",
    )


def _each(values: Any) -> str:
    """Per-round figures as one table cell."""
    return "/".join(f"{v:,.0f}" if v >= 100 else f"{v:g}" for v in values)


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON report (machine, versions, parameters, results)",
    )


def _report_flags(parser: argparse.ArgumentParser) -> None:
    _json_flag(parser)
    parser.add_argument(
        "--plot", type=Path, metavar="DIR", default=None, help="write PNG plots into DIR"
    )
