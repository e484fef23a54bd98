"""The `ticks` super stream: declared idempotently, described, deleted.

A super stream is N partition streams (`ticks-0` .. `ticks-N-1`, binding keys "0".."N-1"),
each replicated on the cluster's nodes with the retention of `StreamConfig`. Declaring it again
with the same partition count does nothing; with another count it is a `TopologyMismatch`,
never a silent change (re-partitioning would move symbols and break per-symbol order).

A super stream whose partition streams were deleted on their own (through the management UI,
say) leaves its exchange behind. With none of them left (still none after `_SETTLE_S`, so
another create under way is not taken for one) there is nothing to lose: declaring it removes
the exchange and makes the super stream anew. With some left it is a
`TopologyMismatch` that names the missing ones: their symbols would have nowhere to go.

The topology also holds the dead-letter stream ``<super_stream>-dlq``: the admin creates it
here, so the workers' least-privilege user needs no configure permission (cluster/users.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from typing import Any

from partitioning.model import StreamConfig
from superticks.errors import (
    ConnectionFailed,
    PermissionDenied,
    StreamError,
    StreamNotFound,
    TopologyError,
    TopologyMismatch,
)
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


log = logging.getLogger(__name__)

_SETTLE_S = 1.0
"""How long a super stream that exists without partitions is given to get them (another
create under way binds them within milliseconds) before it is taken for damaged."""

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
    created (or made anew: see the module docstring), False if it already existed as asked."""
    ss = config.super_stream
    async with Admin(settings) as admin:
        existing = await admin.partitions(ss)
        created = False
        if not existing:
            created, existing = await _create(admin, config)
        if existing and len(existing) != config.partitions:
            raise TopologyMismatch(_mismatch(ss, existing, config))
        await admin.create_stream(config.dead_letter_stream(), DEAD_LETTER_ARGUMENTS)
        return created


async def _create(admin: Admin, config: StreamConfig) -> tuple[bool, list[str]]:
    """Create the super stream found without partitions: (True, []) once made (or made anew,
    see the module docstring), (False, its partitions) when another create made it meanwhile."""
    ss = config.super_stream
    names, arguments = config.partition_names(), config.stream_arguments()
    failure: StreamError | None = None
    try:
        if await admin.create_super_stream(ss, names, arguments):
            return True, []
    except (ConnectionFailed, PermissionDenied):
        raise
    except StreamError as exc:  # two creates at once: the broker fails one (InternalError)
        failure = exc
    # someone else's create under way, or an exchange left alone
    await asyncio.sleep(_SETTLE_S)
    existing = await admin.partitions(ss)
    if existing:  # another create made it meanwhile
        return False, existing
    if failure is not None:
        raise TopologyError(
            f"{failure}. If another `topology create` of {ss!r} ran at the same time: "
            f"RabbitMQ (4.3.6) undoes the loser's create by deleting the exchange both "
            f"made, leaving streams {', '.join(names)} unbound. Delete those streams "
            f"(management UI or API) and create the super stream again, once"
        ) from None
    log.warning(
        "super stream %r had no partition streams left (deleted on their own?): making it anew",
        ss,
    )
    await admin.delete_super_stream(ss)
    if not await admin.create_super_stream(ss, names, arguments):
        raise TopologyError(
            f"super stream {ss!r} exists without partitions and could not be made anew: delete "
            f"it (`superticks topology delete --super-stream {ss}`) and create it again"
        )
    return True, []


def _mismatch(super_stream: str, existing: list[str], config: StreamConfig) -> str:
    """What is wrong with a super stream of another partition count, and what to do."""
    ours = [f"{super_stream}-{i}" for i in range(max(len(existing), config.partitions) + 1)]
    if set(existing) <= set(ours) and existing != ours[: len(existing)]:
        # a gap in our own names: partition streams deleted on their own
        last = max(ours.index(name) for name in existing)
        missing = [name for name in ours[:last] if name not in existing]
        return (
            f"super stream {super_stream!r} has lost partition streams "
            f"{', '.join(missing)} (deleted on their own?): their symbols have nowhere to go. "
            f"Delete it (`superticks topology delete --super-stream {super_stream}`, losing "
            f"the data of {', '.join(existing)}) and create it again"
        )
    return (
        f"super stream {super_stream!r} exists with {len(existing)} partitions, "
        f"not {config.partitions}: use --partitions {len(existing)}, or delete it "
        f"(`superticks topology delete`) and lose its data"
    )


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
