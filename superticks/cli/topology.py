"""`superticks topology create|describe|delete`: the super stream of ticks."""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from typing import Any

from superticks.cli.args import positive_float, positive_int, stream_name
from superticks.cli.loop import run
from superticks.errors import ConfigError

__all__ = ["register"]


def register(commands: Any) -> None:
    parser = commands.add_parser("topology", help="create, describe or delete the super stream")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="declare the super stream (idempotent)")
    create.add_argument("--super-stream", type=stream_name, default="ticks")
    create.add_argument("--partitions", type=positive_int, default=3, help="1-64 (default 3)")
    create.add_argument("--max-age-hours", type=positive_float, default=24.0)
    create.add_argument("--max-length-bytes", type=positive_int, default=20_000_000_000)
    create.add_argument("--max-segment-size-bytes", type=positive_int, default=500_000_000)
    create.set_defaults(handler=_create)
    describe = sub.add_parser("describe", help="partitions, leaders, replicas, next offsets")
    describe.add_argument("--super-stream", type=stream_name, default="ticks")
    describe.add_argument("--json", action="store_true")
    describe.set_defaults(handler=_describe)
    delete = sub.add_parser("delete", help="delete the super stream and all its ticks")
    delete.add_argument("--super-stream", type=stream_name, default="ticks")
    delete.set_defaults(handler=_delete)


def _create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from partitioning.model import StreamConfig
    from partitioning.topology import create_topology
    from superticks.settings import load_settings

    try:
        config = StreamConfig(
            super_stream=args.super_stream,
            partitions=args.partitions,
            max_age=timedelta(hours=args.max_age_hours),
            max_length_bytes=args.max_length_bytes,
            max_segment_size_bytes=args.max_segment_size_bytes,
        )
    except ValidationError as exc:
        raise ConfigError(f"invalid topology: {exc.errors()[0]['msg']}") from None
    connection, _ = load_settings()
    created = run(create_topology(connection, config))
    state = "created" if created else "already exists"
    print(f"super stream {config.super_stream} ({config.partitions} partitions): {state}")
    return 0


def _describe(args: argparse.Namespace) -> int:
    from partitioning.topology import describe_topology
    from superticks.settings import load_settings

    connection, _ = load_settings()
    info = run(describe_topology(connection, args.super_stream))
    if args.json:
        print(json.dumps(info.to_dict()))
        return 0
    print(f"super stream {info.super_stream}: {len(info.partitions)} partitions")
    for p in info.partitions:
        replicas = ",".join(p.replicas) or "-"
        print(
            f"  {p.stream:16} leader {p.leader:16} replicas {replicas:34} "
            f"next offset {p.next_offset:,}"
        )
    if info.missing:
        print(
            f"  missing: {', '.join(info.missing)} (deleted on their own?): producers and "
            f"readers refuse this super stream; delete it and create it again"
        )
    return 0


def _delete(args: argparse.Namespace) -> int:
    from partitioning.topology import delete_topology
    from superticks.settings import load_settings

    connection, _ = load_settings()
    deleted = run(delete_topology(connection, args.super_stream))
    print(f"super stream {args.super_stream}: {'deleted' if deleted else 'did not exist'}")
    return 0
