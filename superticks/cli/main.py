"""`superticks`: one console script for the cluster, the producer, the workers and the benches.

Each command group lives in its own module of this package and registers its sub-commands on
the parser; this module only parses, dispatches, and turns our errors into a clear message and
exit status 2 (bad input: 2 as well, from argparse, before anything starts).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from superticks.cli.stdio import whole_writes
from superticks.errors import SuperticksError

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """Every command's parser. Command modules import only argparse-level things at the top;
    what a command needs (pydantic, rstream, the cluster driver, ...) is imported when it runs,
    so `superticks --help` answers at once (tests/unit/test_cli_imports.py holds this)."""
    from superticks.cli import (
        aggregate,
        audit,
        bench,
        chaos,
        cluster,
        consume,
        dashboard,
        monitor,
        produce,
        replay,
        topology,
        verify,
        worker,
    )

    parser = argparse.ArgumentParser(
        prog="superticks",
        description=(
            "Market-data ticks on a RabbitMQ Super Stream: a three-node cluster, a lossless "
            "producer, single-active-consumer worker groups, and benchmarks. Connection settings "
            "come from SUPERTICKS_* environment variables (SUPERTICKS_NODES, "
            "SUPERTICKS_USERNAME, SUPERTICKS_PASSWORD, SUPERTICKS_CLUSTER=compose|external)."
        ),
    )
    conn = parser.add_argument_group(
        "connection (each overrides its SUPERTICKS_* environment variable)"
    )
    conn.add_argument(
        "--nodes", metavar="HOST:PORT,...", help="stream endpoints (SUPERTICKS_NODES)"
    )
    conn.add_argument("--username", help="SUPERTICKS_USERNAME (the password: SUPERTICKS_PASSWORD)")
    conn.add_argument("--vhost", help="SUPERTICKS_VHOST")
    conn.add_argument(
        "--cluster", choices=("compose", "external"), help="SUPERTICKS_CLUSTER (default compose)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        cluster,
        topology,
        produce,
        worker,
        consume,
        replay,
        audit,
        aggregate,
        monitor,
        dashboard,
        bench,
        verify,
        chaos,
    ):
        module.register(commands)
    return parser


def _apply_connection_flags(args: argparse.Namespace) -> None:
    """Flags win over the environment: they are written to it for this process, then every
    setting is validated once, before any command starts (a bad value fails here, exit 2)."""
    from superticks.settings import load_settings

    for flag in ("nodes", "username", "vhost", "cluster"):
        value = getattr(args, flag, None)
        if value is not None:
            os.environ[f"SUPERTICKS_{flag.upper()}"] = value
    load_settings()


def main(argv: Sequence[str] | None = None) -> int:
    whole_writes()  # a long write to a pipe is never cut short (see superticks.cli.stdio)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        _apply_connection_flags(args)
        return handler(args)
    except SuperticksError as exc:
        print(f"superticks: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
