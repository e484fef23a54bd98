"""`superticks replay`: read back a time range / symbols of the super stream, with VWAPs."""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvloop

from partitioning.model import parse_timestamp_us
from superticks.errors import ConfigError
from superticks.settings import load_settings

__all__ = ["register"]


def _timestamp(text: str) -> int:
    try:
        return parse_timestamp_us(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 UTC time like 2026-11-25T14:30:00Z, not {text!r}"
        ) from None


def _symbols(text: str) -> list[str]:
    symbols = [s.strip() for s in text.split(",") if s.strip()]
    if not symbols:
        raise argparse.ArgumentTypeError("--symbols needs at least one symbol")
    return symbols


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "replay", help="replay stored ticks by time range and symbols (definite end)"
    )
    parser.add_argument("--from", dest="start", type=_timestamp, help="first tick time (incl.)")
    parser.add_argument("--to", dest="end", type=_timestamp, help="last tick time (excl.)")
    parser.add_argument("--symbols", type=_symbols, help="comma-separated symbols (default all)")
    parser.add_argument("--super-stream", default="ticks")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    parser.add_argument("--json", action="store_true", help="print one JSON summary line")
    parser.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from workers.replay import replay

    if args.start is not None and args.end is not None and args.end <= args.start:
        raise ConfigError("--to must be after --from")
    connection, _ = load_settings()
    result = uvloop.run(
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
