"""Every bench's JSON report, one shape: machine (with how its CPU went while the bench ran),
versions, parameters, results (`bench.report.Report`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from superticks.cli.loop import run

__all__ = ["emit", "measured"]


def measured(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """`handler` with the machine's CPU times read as it starts (`args.cpu_at_start`, for
    `emit`): parsing the command line reads nothing and imports no bench module."""

    def run_measured(args: argparse.Namespace) -> int:
        from bench.report import cpu_times

        args.cpu_at_start = cpu_times()
        return handler(args)

    return run_measured


def emit(args: argparse.Namespace, bench: str, params: dict[str, Any], results: Any) -> None:
    """Print the JSON report when asked (the table is the caller's)."""
    from bench.report import Report, cpu_shares, cpu_times

    if args.json:
        cpu = cpu_shares(getattr(args, "cpu_at_start", None), cpu_times())  # the whole bench
        report = Report(bench, params, results, broker=_broker_version(), cpu=cpu)
        print(report.to_json(), flush=True)


def _broker_version() -> str | None:
    from superticks.errors import SuperticksError
    from superticks.settings import load_settings
    from superticks.streams import Admin

    async def ask() -> str | None:
        connection, _ = load_settings()
        async with Admin(connection) as admin:
            return admin.broker_version

    try:
        version: str | None = run(ask())
    except SuperticksError:
        return None
    return version
