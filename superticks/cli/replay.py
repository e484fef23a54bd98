"""`superticks replay`: read back a time range / symbols of the super stream, with VWAPs."""

from __future__ import annotations

import argparse
import json
from typing import Any

from superticks.cli.args import iso_time_us, positive_float, stream_name, symbol_list
from superticks.cli.loop import run
from superticks.errors import ConfigError

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "replay", help="replay stored ticks by time range and symbols (definite end)"
    )
    parser.add_argument("--from", dest="start", type=iso_time_us, help="first tick time (incl.)")
    parser.add_argument("--to", dest="end", type=iso_time_us, help="last tick time (excl.)")
    parser.add_argument("--symbols", type=symbol_list, help="comma-separated symbols (default all)")
    parser.add_argument("--super-stream", type=stream_name, default="ticks")
    parser.add_argument(
        "--timeout", type=positive_float, default=120.0, help="seconds (default 120)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")
    parser.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from superticks.settings import load_settings
    from workers.replay import replay

    if args.start is not None and args.end is not None and args.end <= args.start:
        raise ConfigError("--to must be after --from")
    connection, _ = load_settings()
    connection = connection.for_role("worker")  # SUPERTICKS_WORKER_USERNAME, else admin
    result = run(
        replay(
            connection,
            args.super_stream,
            start_us=args.start,
            end_us=args.end,
            symbols=args.symbols,
            timeout_s=args.timeout,
        )
    )
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        result.print_summary()
    return 0
