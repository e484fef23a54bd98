"""A plain reader of a super stream: no group, no stored offsets, its own start position.

`TickReader` subscribes to every partition of a super stream (or, given `symbols`, only to the
partitions those symbols route to) starting at one `Offset`, applied to each partition:

* `Offset.first()`: everything the partition holds;
* `Offset.last()`: the partition's last chunk onwards (so some already stored ticks, then new);
* `Offset.next()`: only ticks stored after the subscription was made;
* `Offset.at(n)`: from offset `n` of each partition (nothing until a partition reaches `n`);
* `Offset.since(ms)`: from the first chunk the broker stored at or after `ms` (the broker's
  chunk timestamp, not the tick's own timestamp).

Readers are independent: nothing is stored on the broker, so any number of them read the same
partitions, each at its own pace, without affecting each other or a consumer group.

Symbol filtering happens twice. The broker filters whole chunks: the producer gives every
message a filter value (its symbol) and the broker keeps a Bloom filter of them per chunk, so
it sends only chunks that may hold one of the wanted symbols. A sent chunk still holds other
symbols' ticks (and a Bloom filter has false positives), so the reader post-filters each decoded
tick by `tick.symbol`. `ReaderMetrics.received` counts messages that reached the client and
`delivered` the ticks handed on; their ratio is what the server-side filter could not save.
The saving depends on how the producer lays ticks out: grouped by symbol inside each batch
(what `Producer` does) most chunks hold few symbols, and most of them are never sent.

A message that is not a tick is counted in `undecodable` and skipped (a plain reader does not
dead-letter: it has no group to answer for it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from partitioning.codec import Tick, decode_numbered
from partitioning.router import Router
from partitioning.topology import partition_streams
from superticks.settings import ConnectionSettings
from superticks.streams import Admin, Chunk, Offset, Subscription

__all__ = [
    "OnTicks",
    "ReaderMetrics",
    "ReaderState",
    "TickReader",
    "decode_chunk",
    "plan_partitions",
]

log = logging.getLogger("superticks.reader")

OnTicks = Callable[[str, list[int], list[Tick]], Awaitable[None]]
"""`on_ticks(partition, offsets, ticks)`: one chunk's (kept) ticks and their stream offsets."""


class ReaderState(StrEnum):
    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"  # on_ticks raised: nothing more is delivered; call stop()
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(slots=True)
class ReaderMetrics:
    """What a reader received and handed on (counters only grow)."""

    received: int = 0  # messages that reached the client (from the start offset on)
    delivered: int = 0  # ticks passed to on_ticks
    undecodable: int = 0  # messages that were not ticks (skipped, counted)
    chunks: int = 0  # chunks the broker sent
    per_symbol: dict[str, int] = field(default_factory=dict)  # delivered ticks per symbol
    next_offsets: dict[str, int] = field(default_factory=dict)  # partition -> next offset

    @property
    def filtered_out(self) -> int:
        """Messages that reached the client and were dropped by the client-side filter."""
        return self.received - self.delivered - self.undecodable


def _wanted(symbols: Iterable[str] | None) -> frozenset[str] | None:
    if symbols is None:
        return None
    wanted = frozenset(symbols)
    if not wanted:
        raise ValueError("symbols: give at least one symbol (or None: all symbols)")
    if "" in wanted:
        raise ValueError("symbols: a symbol must not be empty")
    return wanted


def plan_partitions(
    partitions: Sequence[str], symbols: Iterable[str] | None
) -> dict[str, tuple[str, ...] | None]:
    """Which partitions to read and with which filter values: all partitions unfiltered
    (None) without `symbols`, else only the partitions the symbols route to, each filtered by
    the symbols routed to it (sorted). Raises `ValueError` for no symbols or an empty one."""
    wanted = _wanted(symbols)
    if wanted is None:
        return dict.fromkeys(partitions)
    router = Router(len(partitions))
    routed: dict[int, list[str]] = {}
    for symbol in sorted(wanted):
        routed.setdefault(router.route(symbol), []).append(symbol)
    return {partitions[i]: tuple(routed[i]) for i in sorted(routed)}


def decode_chunk(
    first_offset: int, messages: Sequence[bytes], wanted: frozenset[str] | None
) -> tuple[list[int], list[Tick], int]:
    """(offsets, ticks, undecodable) of a chunk's messages numbered from `first_offset`:
    the ticks whose symbol is in `wanted` (None: all), in offset order, and how many
    messages were not ticks. Decoded as the worker decodes a chunk (`decode_numbered`)."""
    offsets, ticks, errors = decode_numbered(first_offset, messages)
    if wanted is None:
        return list(offsets), ticks, len(errors)
    kept = [(o, t) for o, t in zip(offsets, ticks, strict=True) if t.symbol in wanted]
    return [o for o, _ in kept], [t for _, t in kept], len(errors)


class TickReader:
    """Reads a super stream's ticks from `offset`, optionally only `symbols` (see module doc).

    `on_ticks(partition, offsets, ticks)` is awaited once per delivered chunk that kept at
    least one tick, in offset order within each partition (partitions are independent: their
    calls interleave). While it runs, that partition's next chunk waits (credit is granted after
    it returns), so a slow callback slows the broker down instead of filling memory.

    With `symbols`, the broker filters by them unless `server_filter=False` (then every chunk
    of the symbols' partitions is sent and only the client filters: for comparison);
    `match_unfiltered` also gets chunks of messages that carry no filter value.

    If `on_ticks` raises, the reader records the exception in `failure`, moves to FAILED,
    calls `on_failure` (if given), and delivers nothing more; the owner then calls `stop()`.
    `stop()` closes every subscription; a running `on_ticks` is cancelled with its
    subscription's connection. Safe to call twice (and before `start()`). Not restartable.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        on_ticks: OnTicks,
        *,
        offset: Offset,
        super_stream: str = "ticks",
        symbols: Iterable[str] | None = None,
        match_unfiltered: bool = False,
        server_filter: bool = True,
        name: str = "reader",
        on_failure: Callable[[BaseException], None] | None = None,
        initial_credit: int = 8,
    ) -> None:
        self._settings = settings
        self._on_ticks = on_ticks
        self.offset = offset
        self.super_stream = super_stream
        self.symbols = _wanted(symbols)  # bad symbols fail here, not in start()
        self._match_unfiltered = match_unfiltered
        self._server_filter = server_filter
        self._name = name
        self._on_failure = on_failure
        self._credit = initial_credit
        self.state = ReaderState.NEW
        self.metrics = ReaderMetrics()
        self.failure: BaseException | None = None
        self.partitions: dict[str, tuple[str, ...] | None] = {}  # read -> its filter values
        self._subscriptions: list[Subscription] = []
        self._stopped = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Find the partitions and subscribe to each. Raises `StreamNotFound` if the super
        stream does not exist, `TopologyMismatch` if partition streams of it were deleted on
        their own and `symbols` are routed to the rest (see `partitioning.topology`),
        `ConnectionFailed`/`StreamError` if a subscription fails (the ones already made are
        closed again). Cancelling it closes them too."""
        if self.state is not ReaderState.NEW:
            raise RuntimeError(f"a reader starts once (it is {self.state})")
        self.state = ReaderState.STARTING
        try:
            await self._subscribe()
        except BaseException:
            await self._close()
            raise
        if self.state is ReaderState.STARTING:
            self.state = ReaderState.RUNNING
        elif self.state in (ReaderState.STOPPING, ReaderState.STOPPED):
            # stop() ran while subscribing: close what was made after it looked
            await asyncio.gather(*(sub.stop() for sub in self._subscriptions))

    async def _subscribe(self) -> None:
        async with Admin(self._settings) as admin:
            streams = await partition_streams(
                admin, self.super_stream, routed=self.symbols is not None
            )
        self.partitions = plan_partitions(streams, self.symbols)
        self._subscriptions = [
            Subscription(
                self._settings,
                stream,
                self._reader(stream),
                self.offset,
                name=f"{self._name}-{stream}",
                on_failure=self._fail,
                initial_credit=self._credit,
                filter_values=values if self._server_filter else None,
                match_unfiltered=self._match_unfiltered,
            )
            for stream, values in self.partitions.items()
        ]
        results = await asyncio.gather(
            *(sub.start() for sub in self._subscriptions), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def stop(self) -> None:
        """Close every subscription (cancelling a running `on_ticks`); idempotent. A second
        call while the first is still closing waits for it."""
        if self.state in (ReaderState.STOPPING, ReaderState.STOPPED):
            await self._stopped.wait()
            return
        if self.state is ReaderState.NEW:
            self.state = ReaderState.STOPPED
            self._stopped.set()
            return
        await self._close()

    async def _close(self) -> None:
        self.state = ReaderState.STOPPING
        try:
            await asyncio.gather(*(sub.stop() for sub in self._subscriptions))
        finally:
            self.state = ReaderState.STOPPED
            self._stopped.set()

    async def __aenter__(self) -> TickReader:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # -- delivery --------------------------------------------------------------------------
    def _reader(self, stream: str) -> Callable[[Chunk], Awaitable[None]]:
        wanted = self.symbols
        metrics = self.metrics
        on_ticks = self._on_ticks

        async def on_chunk(chunk: Chunk) -> None:
            if self.state is not ReaderState.RUNNING and self.state is not ReaderState.STARTING:
                return  # failed or stopping: deliver nothing more
            count = len(chunk.messages)
            metrics.chunks += 1
            metrics.received += count
            metrics.next_offsets[stream] = chunk.first_offset + count
            offsets, ticks, undecodable = decode_chunk(chunk.first_offset, chunk.messages, wanted)
            if undecodable:
                metrics.undecodable += undecodable
                log.warning(
                    "%s: %d messages of the chunk at offset %d are not ticks (skipped)",
                    stream,
                    undecodable,
                    chunk.first_offset,
                )
            if not ticks:
                return
            per_symbol = metrics.per_symbol
            for tick in ticks:
                per_symbol[tick.symbol] = per_symbol.get(tick.symbol, 0) + 1
            metrics.delivered += len(ticks)
            await on_ticks(stream, offsets, ticks)

        return on_chunk

    def _fail(self, exc: BaseException) -> None:
        if self.failure is not None:
            return
        self.failure = exc
        if self.state in (ReaderState.STARTING, ReaderState.RUNNING):
            self.state = ReaderState.FAILED
        if self._on_failure is not None:
            self._on_failure(exc)
