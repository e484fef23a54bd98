"""`superticks monitor`: the lag exporter, serving Prometheus text on /metrics."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from superticks.cli.args import port, positive_float, positive_int
from superticks.cli.loop import run
from superticks.errors import ConfigError

__all__ = ["register"]


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected one or more names separated by commas")
    return names


def _urls(text: str) -> list[str]:
    urls = _names(text)
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise argparse.ArgumentTypeError(f"expected http://HOST:PORT URLs, not {url!r}")
    return urls


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "monitor",
        help="lag exporter: every group's broker-side lag and status, for Prometheus",
        description=(
            "Poll the cluster every --interval seconds and serve, on http://HOST:PORT/metrics, "
            "for every super stream and every consumer group with a stored offset (both "
            "discovered): end offsets, stored offsets, lag in ticks and in seconds, the active "
            "consumer, partitions without one, a Burrow-style status per partition and group "
            "(OK, WARN, STALL, STOP, ERR), leaders and replicas. Nodes or management APIs that "
            "do not answer are reported as metrics (superticks_exporter_up)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default loopback)")
    parser.add_argument("--port", type=port, default=9110, help="listen port (9110)")
    parser.add_argument(
        "--interval", type=positive_float, default=5.0, help="seconds between polls (5)"
    )
    parser.add_argument(
        "--window", type=positive_int, default=6, help="samples the status rules judge (6)"
    )
    parser.add_argument(
        "--super-stream",
        type=_names,
        default=[],
        help="only these super streams (comma-separated; default: every one found)",
    )
    parser.add_argument(
        "--group", type=_names, default=[], help="only these groups (default: every one found)"
    )
    parser.add_argument(
        "--management",
        type=_urls,
        default=None,
        help="management API URLs, tried in turn (default http://127.0.0.1:15672..15674)",
    )
    parser.add_argument(
        "--once", action="store_true", help="poll once, print the metrics text and exit"
    )
    parser.set_defaults(handler=_monitor)


def _quiet_logs() -> None:
    """One line per problem on stderr: the monitor's own warnings (each failure is also a
    metric); rstream's logged tracebacks of dropped connections are silenced (the adapter
    turns those failures into our errors, which the monitor reports)."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    logging.getLogger("rstream").setLevel(logging.CRITICAL + 1)
    logging.getLogger("superticks.streams").setLevel(logging.ERROR)


def _monitor(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from monitoring.exporter import DEFAULT_MANAGEMENT_URLS, Monitor, MonitorConfig, render, serve
    from superticks.settings import load_settings

    _quiet_logs()
    connection, _ = load_settings()
    try:
        config = MonitorConfig(
            connection=connection,
            management_urls=tuple(args.management or DEFAULT_MANAGEMENT_URLS),
            super_streams=tuple(args.super_stream),
            groups=tuple(args.group),
            interval_s=args.interval,
            window=args.window,
        )
    except ValidationError as exc:
        raise ConfigError(f"invalid monitor options: {exc.errors()[0]['msg']}") from None

    async def main() -> int:
        monitor = Monitor(config)
        try:
            for warning in await monitor.check_names():
                print(f"superticks monitor: {warning}", file=sys.stderr)
            if args.once:
                if monitor.polls == 0:
                    await monitor.poll()
                print(render(monitor), end="")
                return 0
            try:
                serve(monitor, args.host, args.port)
            except OSError as exc:
                raise ConfigError(
                    f"--host/--port {args.host}:{args.port}: {exc.strerror}"
                ) from None
            print(
                f"superticks monitor: http://{args.host}:{args.port}/metrics "
                f"(polling every {args.interval:g} s)",
                file=sys.stderr,
            )
            await monitor.run()
        finally:
            await monitor.stop()
        return 0

    return run(main())
