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
The producer, the symbol reader and replay take a super stream's partitions through
`partition_streams`, which refuses one with such a gap the same way: routing by what is left
(`Router(len(streams))`) would put every symbol where no other client looks for it. A gap
shows in the names (``<super_stream>-<i>``); the last ones deleted leave none, and the broker
keeps no partition count (the bindings go with their streams): that looks like a super stream
made with fewer partitions, and only the operator who deleted them can tell.

Two creates of a new super stream at the same moment (two processes) can make RabbitMQ (4.3.6)
fail one (an internal error, or its connection closed) and, undoing it, delete the exchange
both made: the partition streams are left unbound, empty. A create that finds the super stream
without partitions deletes what is left (only streams that are empty: it never deletes a tick;
otherwise its error says what is left and what to do) and makes it anew, up to `_ATTEMPTS`
times, each after a random moment so that two creates fall apart.

The topology also holds the dead-letter stream ``<super_stream>-dlq``: the admin creates it
here, so the workers' least-privilege user needs no configure permission (cluster/users.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
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
    "missing_partitions",
    "partition_streams",
]


log = logging.getLogger(__name__)

_SETTLE_S = 1.0
"""How long (at least; up to twice, at random, so that two creates fall apart) a super stream
that exists without partitions is given to get them (another create under way binds them
within milliseconds) before it is taken for damaged."""

_ATTEMPTS = 3
"""How often a create tries again after finding the super stream without partitions."""

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
    missing: tuple[str, ...] = ()
    """Partition streams deleted on their own (a gap in our names: see `missing_partitions`);
    while any is missing, the producer and the readers refuse the super stream."""

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
        if existing and (len(existing) != config.partitions or missing_partitions(ss, existing)):
            raise TopologyMismatch(_mismatch(ss, existing, config))
        await admin.create_stream(config.dead_letter_stream(), DEAD_LETTER_ARGUMENTS)
        return created


async def _create(admin: Admin, config: StreamConfig) -> tuple[bool, list[str]]:
    """Create the super stream found without partitions: (True, []) once made (or made anew,
    see the module docstring), (False, its partitions) when another create made it meanwhile."""
    ss = config.super_stream
    names, arguments = config.partition_names(), config.stream_arguments()
    for _ in range(_ATTEMPTS):
        failure: StreamError | None = None
        try:
            if await admin.create_super_stream(ss, names, arguments):
                return True, []
        except PermissionDenied:
            raise
        except ConnectionFailed as exc:
            # two creates at once: RabbitMQ (4.3.6) may also close the connection of one (its
            # connection process fails formatting the error): see what is left on a new one
            failure = exc
            await admin.reconnect()
        except StreamError as exc:  # two creates at once: the broker fails one (InternalError)
            failure = exc
        # someone else's create under way (given a moment, apart from any other's), or what a
        # failed one left: an exchange alone, or its partition streams unbound
        await asyncio.sleep(_SETTLE_S * random.uniform(1.0, 2.0))
        existing = await admin.partitions(ss)
        if existing:  # another create made it meanwhile
            return False, existing
        log.warning(
            "super stream %r has no partition streams (%s): making it anew",
            ss,
            f"a create at the same time failed: {failure}"
            if failure is not None
            else "deleted on their own?",
        )
        await _clear(admin, ss, names)
    raise TopologyError(
        f"super stream {ss!r} could not be made in {_ATTEMPTS} attempts (creates of it at the "
        f"same time?): create it again, once"
    )


async def _clear(admin: Admin, ss: str, names: Sequence[str]) -> None:
    """Delete what a super stream without partitions left: its exchange, and its partition
    streams if they exist unbound and empty (a failed create's); a tick in one is never lost."""
    present = [name for name in names if await admin.stream_exists(name)]
    for name in present:
        if not await admin.is_empty(name):
            raise TopologyError(
                f"super stream {ss!r} has no partitions, but its partition stream {name} "
                f"exists unbound and holds data (two creates at the same time: RabbitMQ "
                f"(4.3.6) undoes the loser's by deleting the exchange both made). Keep what you "
                f"need of {', '.join(present)}, delete them (management UI or API) and create "
                f"the super stream again, once"
            )
    for name in present:
        await admin.delete_stream(name)
    await admin.delete_super_stream(ss)


def missing_partitions(super_stream: str, streams: Sequence[str]) -> list[str]:
    """The partition streams missing from a super stream's `streams`: with every name one of
    ours (``<super_stream>-<i>``), those below the highest index that are not there. Names of
    another form (another tool's routing keys) say nothing: []."""
    indexes = [_index(super_stream, name) for name in streams]
    if not indexes or min(indexes) < 0:
        return []
    present = set(indexes)
    return [f"{super_stream}-{i}" for i in range(max(indexes)) if i not in present]


def _index(super_stream: str, name: str) -> int:
    """i for ``<super_stream>-<i>`` (digits, no leading zero), else -1."""
    tail = name.removeprefix(f"{super_stream}-")
    return int(tail) if tail.isdigit() and tail == str(int(tail)) else -1


def _lost(super_stream: str, streams: Sequence[str], missing: Sequence[str]) -> str:
    return (
        f"super stream {super_stream!r} has lost partition streams {', '.join(missing)} "
        f"(deleted on their own?): their symbols have nowhere to go, and routing by the "
        f"{len(streams)} left would move every other symbol too. Delete it (`superticks "
        f"topology delete --super-stream {super_stream}`, losing the data of "
        f"{', '.join(streams)}) and create it again"
    )


async def partition_streams(admin: Admin, super_stream: str, *, routed: bool = True) -> list[str]:
    """The super stream's partition streams in routing order (see the module docstring):
    `StreamNotFound` when it does not exist; when `routed` (symbols are routed by them),
    `TopologyMismatch` naming the partition streams deleted on their own when some left a gap.
    Not `routed`, what is left of them (reading all of them, as a replay of every symbol does,
    salvages what a gap left)."""
    streams = await admin.partitions(super_stream)
    if not streams:
        raise StreamNotFound(
            f"super stream {super_stream!r} does not exist: `superticks topology create`"
        )
    missing = missing_partitions(super_stream, streams) if routed else []
    if missing:
        raise TopologyMismatch(_lost(super_stream, streams, missing))
    return streams


def _mismatch(super_stream: str, existing: list[str], config: StreamConfig) -> str:
    """What is wrong with a super stream of another partition count, and what to do."""
    missing = missing_partitions(super_stream, existing)
    if missing:
        return _lost(super_stream, existing, missing)
    ours = [f"{super_stream}-{i}" for i in range(config.partitions)]
    message = (
        f"super stream {super_stream!r} exists with {len(existing)} partitions, "
        f"not {config.partitions}: use --partitions {len(existing)}, or delete it "
        f"(`superticks topology delete`) and lose its data"
    )
    if len(existing) < config.partitions and existing == ours[: len(existing)]:
        # the broker keeps no partition count: the last ones may have been deleted
        message += (
            f". If it had {config.partitions} and {', '.join(ours[len(existing) :])} were "
            f"deleted on their own, their symbols have nowhere to go: delete it and create it "
            f"again"
        )
    return message


async def describe_topology(settings: ConnectionSettings, super_stream: str) -> TopologyInfo:
    """Partitions with their leader, replicas and message count, and the partition streams
    missing from them (it describes a super stream with a gap; using one is refused)."""
    async with Admin(settings) as admin:
        streams = await partition_streams(admin, super_stream, routed=False)
        infos = [await admin.info(s) for s in streams]
        lasts = await asyncio.gather(*(admin.last_offset(s, timeout_s=1.0) for s in streams))
    return TopologyInfo(
        super_stream,
        tuple(
            PartitionInfo(i, s, info.leader, info.replicas, last + 1)
            for i, (s, info, last) in enumerate(zip(streams, infos, lasts, strict=True))
        ),
        tuple(missing_partitions(super_stream, streams)),
    )


async def delete_topology(settings: ConnectionSettings, super_stream: str) -> bool:
    """Delete the super stream, its partitions and its dead-letter stream; False if the super
    stream did not exist."""
    async with Admin(settings) as admin:
        deleted = await admin.delete_super_stream(super_stream)
        await admin.delete_stream(f"{super_stream}-dlq")
        return deleted
