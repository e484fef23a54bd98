"""The tick handlers a group worker feeds: the `TickHandler` protocol (and the optional
`MessageHandler`, `Settling` and `PartitionReleasing` ones), the `PerTick` adapter, the stock
handlers (`VwapHandler`, `PrintHandler`, `CountHandler`; `handler_named` picks one
by the name `superticks worker --handler` takes) and `CountingHandler`, which records every
tick (for tests)."""

from __future__ import annotations

import sys
import threading
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Sequence
from typing import IO, Protocol, runtime_checkable

from partitioning.codec import Tick, decode_numbered
from superticks.errors import TickError
from workers.deadletter import describe
from workers.vwap import RunningVwap, SymbolAggregate

__all__ = [
    "HANDLER_NAMES",
    "Closing",
    "CountHandler",
    "CountingHandler",
    "MessageHandler",
    "PartitionAssigning",
    "PartitionReleasing",
    "PerTick",
    "PrintHandler",
    "Settling",
    "TickHandler",
    "VwapHandler",
    "handler_named",
]


@runtime_checkable
class TickHandler(Protocol):
    """What a worker feeds: one call per chunk with the chunk's new ticks, in offset order.

    `offsets[i]` is the partition offset of `ticks[i]` (ascending, not always contiguous: dead
    letters leave holes). A call that raises is retried (the same ticks again), so a handler
    should be idempotent on ``(partition, offset)``. Cancelling the call (the worker's drain
    timed out) means the ticks count as not processed: a successor handles them again.
    """

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None: ...


@runtime_checkable
class PartitionReleasing(Protocol):
    """Optional for a `TickHandler`: told when a partition moves away from its worker.

    `partition_released(partition)` is awaited after the partition's last chunk here was
    handled and its offset stored, before the broker is answered (so before a successor is
    activated): the moment to close what the handler holds for that partition, e.g. a producer
    name the successor will take. An exception is logged and ignored.
    """

    async def partition_released(self, partition: int) -> None: ...


@runtime_checkable
class PartitionAssigning(Protocol):
    """Optional for a `TickHandler`: told when a partition becomes its worker's.

    `partition_assigned(partition)` is awaited when the broker activated the worker on the
    partition, before the broker is answered and before the partition's first chunk here: the
    moment to prepare what handling it needs (e.g. start a producer in the background). It
    must return quickly (the broker waits for the answer); an exception is logged and ignored.
    """

    async def partition_assigned(self, partition: int) -> None: ...


@runtime_checkable
class Closing(Protocol):
    """Optional for a `TickHandler`: holds something to release when its worker is done.

    `close()` is awaited once, after the worker stopped (intake closed, chunks drained, offsets
    stored), by whoever runs the worker (`superticks worker` does): the moment to flush a file or
    stop a producer. It must be safe to call twice.
    """

    async def close(self) -> None: ...


@runtime_checkable
class MessageHandler(Protocol):
    """Optional for a `TickHandler`: takes a chunk's messages undecoded.

    A handler with `handle_messages` is given, instead of decoded ticks, the chunk's new
    messages as stored (AMQP 1.0 bytes, offsets from `first_offset`), for a handler that passes
    messages on and need not pay for decoding them. It returns ``(offset, reason)`` of the
    messages it refuses (the worker dead-letters them, like ticks that do not decode); raising
    makes the worker retry the call like `handle_batch`.
    """

    async def handle_messages(
        self, partition: int, first_offset: int, messages: Sequence[bytes]
    ) -> Sequence[tuple[int, str]]: ...


@runtime_checkable
class Settling(Protocol):
    """Optional for a `TickHandler` whose effects complete after its call returned (e.g. it
    publishes and returns before the broker confirmed, keeping many chunks in flight).

    The worker then stores a partition's offset only up to just before `unsettled(partition)`,
    the lowest offset handed over whose effects are not complete yet (None: all are), so a
    successor redoes whatever a crash left unfinished. Before a partition moves away or the
    worker stops, the worker awaits `settle(partition)` (until all are complete; it may be
    cancelled at the drain timeout, leaving the rest to the successor).
    """

    def unsettled(self, partition: int) -> int | None: ...

    async def settle(self, partition: int) -> None: ...


class PerTick:
    """Adapts an ``async def f(partition, offset, tick)`` to `TickHandler` (slower: one await
    per tick)."""

    def __init__(self, function: Callable[[int, int, Tick], Awaitable[None]]) -> None:
        self._function = function

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        function = self._function
        for offset, tick in zip(offsets, ticks, strict=True):
            await function(partition, offset, tick)


class VwapHandler:
    """Per-symbol VWAP of everything this worker handled (`RunningVwap`).

    Idempotent on ``(partition, offset)`` within its lifetime: ticks at or below the highest
    offset it folded for a partition are ignored, so a retried call never counts a tick twice.

    `figures()` may be called from another thread (a Prometheus scrape): one uncontended lock
    per chunk makes it see whole chunks only. It also gives each symbol's last price: the
    handler keeps a reference to the last chunk of each partition (nothing per tick) and
    `figures()` reads the symbols' last ticks from those chunks, so a symbol that had no tick in
    its partition's last chunk keeps the price it had at the previous call. (A chunk read by
    the compiled fold, below, gives each of its symbols' last price at once: every symbol
    handled has one.)

    A `MessageHandler`: the worker hands it each chunk undecoded, and the compiled fold
    (`RunningVwap.update_messages`) reads, checks and sums it in one pass; a chunk it does not
    vouch for (another client's layout, a tick that does not decode) is decoded as the worker
    would, its undecodable messages returned for the worker to dead-letter.
    """

    def __init__(self) -> None:
        self.vwap = RunningVwap()
        self._applied: dict[int, int] = {}
        self._lock = threading.Lock()
        self._last_chunks: dict[int, Sequence[Tick]] = {}
        self._last_prices: dict[str, str] = {}

    async def handle_messages(
        self, partition: int, first_offset: int, messages: Sequence[bytes]
    ) -> Sequence[tuple[int, str]]:
        with self._lock:
            skip = self._applied.get(partition, -1) + 1 - first_offset
            if skip > 0:
                messages = messages[skip:]
                first_offset += skip
            if not messages:
                return ()
            chunk = messages if type(messages) is list else list(messages)
            pairs = self.vwap.update_messages(chunk)
            if pairs is not None:
                self._applied[partition] = first_offset + len(chunk) - 1
                self._last_prices.update(pairs)  # a few symbols a chunk: kept at once
                self._last_chunks.pop(partition, None)
                return ()
        offsets, ticks, errors = decode_numbered(first_offset, chunk)
        if ticks:
            with self._lock:
                self._fold(partition, offsets, ticks)
        return [(offset, describe(exc)) for offset, exc in errors]

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        if not ticks:
            return
        with self._lock:
            self._fold(partition, offsets, ticks)

    def _fold(self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]) -> None:
        applied = self._applied.get(partition, -1)
        if offsets[0] <= applied:
            start = bisect_right(offsets, applied)
            offsets, ticks = offsets[start:], ticks[start:]
            if not ticks:
                return
        try:
            self.vwap.update_batch(ticks)
        except TickError:
            # update_batch keeps the ticks before the bad one: find it, remember those.
            bad = next(i for i, t in enumerate(ticks) if not _vwap_accepts(t))
            if bad:
                self._applied[partition] = offsets[bad - 1]
            raise
        self._applied[partition] = offsets[-1]
        self._last_chunks[partition] = ticks

    def snapshot(self) -> dict[str, SymbolAggregate]:
        """Every symbol's aggregate so far."""
        with self._lock:
            return self.vwap.snapshot()

    def figures(self) -> tuple[dict[str, SymbolAggregate], dict[str, str]]:
        """Every symbol's aggregate so far and its last price (see the class docstring); safe
        to call from another thread."""
        with self._lock:
            chunks = list(self._last_chunks.values())
            self._last_chunks.clear()
            for chunk in chunks:
                self._last_prices.update((t.symbol, t.last_price) for t in chunk)
            return self.vwap.snapshot(), dict(self._last_prices)


def _vwap_accepts(tick: Tick) -> bool:
    try:
        RunningVwap().update(tick)
    except TickError:
        return False
    return True


class PrintHandler:
    """Writes one line per tick: ``partition offset symbol sequence last_price x last_size``."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self._out = out

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        out = self._out or sys.stdout
        out.write(
            "".join(
                f"{partition} {o} {t.symbol} #{t.sequence_number} {t.last_price} x {t.last_size}\n"
                for o, t in zip(offsets, ticks, strict=True)
            )
        )


class CountHandler:
    """Counts ticks, per partition and per symbol; keeps nothing else (its memory grows with
    the number of symbols, not of ticks). Idempotent on ``(partition, offset)`` like
    `VwapHandler`: a retried call counts nothing twice."""

    def __init__(self) -> None:
        self.total = 0
        self.per_partition: dict[int, int] = {}
        self.per_symbol: dict[str, int] = {}
        self._applied: dict[int, int] = {}

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        if not ticks:
            return
        applied = self._applied.get(partition, -1)
        if offsets[0] <= applied:
            start = bisect_right(offsets, applied)
            offsets, ticks = offsets[start:], ticks[start:]
            if not ticks:
                return
        per_symbol = self.per_symbol
        for tick in ticks:
            per_symbol[tick.symbol] = per_symbol.get(tick.symbol, 0) + 1
        self.total += len(ticks)
        self.per_partition[partition] = self.per_partition.get(partition, 0) + len(ticks)
        self._applied[partition] = offsets[-1]


HANDLER_NAMES = ("vwap", "print", "count")


def handler_named(name: str) -> VwapHandler | PrintHandler | CountHandler:
    """The stock handler `superticks worker --handler NAME` runs (one of `HANDLER_NAMES`)."""
    if name == "vwap":
        return VwapHandler()
    if name == "print":
        return PrintHandler()
    if name == "count":
        return CountHandler()
    raise ValueError(f"unknown handler {name!r}: one of {', '.join(HANDLER_NAMES)}")


class CountingHandler:
    """Records ``(symbol, sequence_number, partition, offset)`` of every tick, for tests (its
    memory grows with every tick: to count ticks, use `CountHandler`)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, int, int, int]] = []

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        self.records.extend(
            (t.symbol, t.sequence_number, partition, o) for o, t in zip(offsets, ticks, strict=True)
        )

    def __len__(self) -> int:
        return len(self.records)
