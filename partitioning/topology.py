"""The `ticks` super stream: declared idempotently, described, deleted.

A super stream is N partition streams (`ticks-0` .. `ticks-N-1`, binding keys "0".."N-1"),
each replicated on the cluster's nodes with the retention of `StreamConfig`. Declaring it again
with the same partition count does nothing; with another count it is a `TopologyMismatch`,
never a silent change (re-partitioning would move symbols and break per-symbol order).

The topology also holds the dead-letter stream ``<super_stream>-dlq``: the admin creates it
here, so the workers' least-privilege user needs no configure permission (cluster/users.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from partitioning.model import StreamConfig
from superticks.errors import StreamNotFound, TopologyMismatch
from superticks.settings import ConnectionSettings
from superticks.streams import Admin

__all__ = [
    "DEAD_LETTER_ARGUMENTS",
    "PartitionInfo",
    "TopologyInfo",
    "create_topology",
    "delete_topology",
    "describe_topology",
]


DEAD_LETTER_ARGUMENTS: dict[str, Any] = {"max-length-bytes": 1_000_000_000, "max-age": "7D"}


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    index: int
    stream: str
    leader: str
    replicas: tuple[str, ...]
    next_offset: int  # the offset the next message will get (offset-tracking records count too)


@dataclass(frozen=True, slots=True)
class TopologyInfo:
    super_stream: str
    partitions: tuple[PartitionInfo, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def create_topology(settings: ConnectionSettings, config: StreamConfig) -> bool:
    """Declare the super stream and its dead-letter stream; True if the super stream was
    created, False if it already existed as asked."""
    async with Admin(settings) as admin:
        existing = await admin.partitions(config.super_stream)
        if existing:
            if len(existing) != config.partitions:
                raise TopologyMismatch(
                    f"super stream {config.super_stream!r} exists with {len(existing)} partitions, "
                    f"not {config.partitions}: use --partitions {len(existing)}, or delete it "
                    f"(`superticks topology delete`) and lose its data"
                )
            created = False
        else:
            created = await admin.create_super_stream(
                config.super_stream, config.partition_names(), config.stream_arguments()
            )
        await admin.create_stream(config.dead_letter_stream(), DEAD_LETTER_ARGUMENTS)
        return created


async def describe_topology(settings: ConnectionSettings, super_stream: str) -> TopologyInfo:
    """Partitions with their leader, replicas and message count."""
    async with Admin(settings) as admin:
        streams = await admin.partitions(super_stream)
        if not streams:
            raise StreamNotFound(
                f"super stream {super_stream!r} does not exist: `superticks topology create`"
            )
        infos = [await admin.info(s) for s in streams]
        lasts = await asyncio.gather(*(admin.last_offset(s, timeout_s=1.0) for s in streams))
    return TopologyInfo(
        super_stream,
        tuple(
            PartitionInfo(i, s, info.leader, info.replicas, last + 1)
            for i, (s, info, last) in enumerate(zip(streams, infos, lasts, strict=True))
        ),
    )


async def delete_topology(settings: ConnectionSettings, super_stream: str) -> bool:
    """Delete the super stream, its partitions and its dead-letter stream; False if the super
    stream did not exist."""
    async with Admin(settings) as admin:
        deleted = await admin.delete_super_stream(super_stream)
        await admin.delete_stream(f"{super_stream}-dlq")
        return deleted
