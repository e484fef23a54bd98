"""`superticks dashboard`: the live Streamlit dashboard on 127.0.0.1 (monitoring/dashboard.py)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from superticks.cli.args import port
from superticks.cli.loop import run
from superticks.errors import ConfigError, ConnectionFailed, StreamNotFound

__all__ = ["register", "streamlit_command"]


def _url(text: str) -> str:
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL")
    return text


def _optional_url(text: str) -> str | None:
    return None if text == "none" else _url(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds in (0, 3600], not {text!r}")
    return value


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "dashboard",
        help="the live dashboard (Streamlit, 127.0.0.1:8501): partitions, lag, rates, alerts",
        description=(
            "Serve the superticks dashboard on 127.0.0.1:PORT: the partition map (leaders, "
            "replicas, each group's active worker and status), lag per group and partition, "
            "publish and handle rates, firing alerts, node health, producer confirm latency, "
            "per-symbol counts, VWAP and prices, per-consumer throughput. It reads Prometheus' "
            "HTTP API and the lag exporter's /metrics (directly, so figures show before "
            "Prometheus has history), refreshing every second. Runs until interrupted."
        ),
    )
    parser.add_argument("--port", type=port, default=8501, help="port on 127.0.0.1 (8501)")
    parser.add_argument(
        "--prometheus",
        type=_url,
        default="http://127.0.0.1:9090",
        metavar="URL",
        help="Prometheus' base URL (default http://127.0.0.1:9090)",
    )
    parser.add_argument(
        "--exporter",
        type=_optional_url,
        default="http://127.0.0.1:9110/metrics",
        metavar="URL",
        help="the lag exporter's /metrics, read directly (default "
        "http://127.0.0.1:9110/metrics; 'none': Prometheus only)",
    )
    parser.add_argument(
        "--scrape",
        type=_url,
        action="append",
        default=[],
        metavar="URL",
        help="another /metrics page to read directly, e.g. a worker's "
        "http://127.0.0.1:9101/metrics (repeatable)",
    )
    parser.add_argument(
        "--super-stream",
        default=None,
        help="show only this super stream's partitions and groups (default: every one)",
    )
    parser.add_argument(
        "--refresh", type=_seconds, default=1.0, metavar="S", help="seconds between refreshes (1)"
    )
    parser.set_defaults(handler=_run)


def streamlit_command(port: int) -> list[str]:
    """The command that serves monitoring/dashboard.py headless on 127.0.0.1:`port`."""
    import monitoring

    script = Path(monitoring.__file__).with_name("dashboard.py")
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.headless=true",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--global.developmentMode=false",
        "--client.toolbarMode=viewer",
        "--theme.base=light",
    ]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _check_super_stream(name: str) -> None:
    """Exit 2 on a super stream the cluster does not have; start anyway when no node answers
    (the dashboard then shows what Prometheus has)."""
    import asyncio

    from partitioning.topology import describe_topology
    from superticks.settings import load_settings

    connection, _ = load_settings()

    async def describe() -> None:
        async with asyncio.timeout(15):
            await describe_topology(connection, name)

    try:
        run(describe())
    except StreamNotFound:
        raise ConfigError(
            f"--super-stream {name}: no such super stream "
            "(`superticks topology describe --super-stream NAME` checks a name)"
        ) from None
    except (ConnectionFailed, TimeoutError):
        print(
            f"superticks dashboard: no node answers, --super-stream {name} not checked",
            file=sys.stderr,
        )


def _run(args: argparse.Namespace) -> int:
    from monitoring.sources import ENV_VAR, DashboardConfig

    if importlib.util.find_spec("streamlit") is None:
        raise ConfigError(
            "the dashboard needs Streamlit: `uv sync` (dev) or "
            "`pip install 'superticks[dashboard]'` installs it"
        )
    if not _port_free(args.port):
        raise ConfigError(f"--port {args.port}: 127.0.0.1:{args.port} is already in use")
    if args.super_stream is not None:
        _check_super_stream(args.super_stream)
    config = DashboardConfig(
        prometheus=args.prometheus,
        exporter=args.exporter,
        scrape=tuple(args.scrape),
        super_stream=args.super_stream,
        refresh_s=args.refresh,
    )
    env = {**os.environ, ENV_VAR: config.model_dump_json()}
    print(f"superticks dashboard: http://127.0.0.1:{args.port}", flush=True)
    command = streamlit_command(args.port)
    os.execve(command[0], command, env)  # signals go straight to Streamlit
