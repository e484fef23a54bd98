"""Reading streams to a definite end: the audit log, one partition's ticks, the last prices.

Each read subscribes from a start offset and stops at the stream's last offset as it was when
the read began (`Admin.last_offset`), so it ends even while producers keep writing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal

from partitioning.codec import Tick, decode_messages
from partitioning.router import Router
from superticks.errors import ReplayTimeout, StreamNotFound
from superticks.settings import ConnectionSettings
from superticks.streams import Admin, Chunk, Offset, Subscription

__all__ = ["last_prices", "read_partition_ticks", "read_to_end"]

OnMessages = Callable[[int, list[bytes]], Awaitable[None] | None]
"""`on_messages(first_offset, messages)`: consecutive messages from `first_offset` on."""


async def read_to_end(
    settings: ConnectionSettings,
    stream: str,
    on_messages: OnMessages,
    *,
    start: int = 0,
    end: int | None = None,
    timeout_s: float = 300.0,
) -> int:
    """Deliver `stream`'s messages from offset `start` to `end` (default: the last offset now)
    to `on_messages`, in order; returns the last offset read (-1: nothing). Raises
    `StreamNotFound` (unless `end` < `start`: nothing to read), or `ReplayTimeout` if the end
    is not reached within `timeout_s`. With `end` given, it makes one connection, not two (a
    strategy's rebuild reads its checkpoints back a window at a time)."""
    if end is None:
        async with Admin(settings) as admin:
            if not await admin.stream_exists(stream):
                raise StreamNotFound(f"stream {stream!r} does not exist")
            end = await admin.last_offset(stream)
    if end < start:
        return end
    done = asyncio.Event()

    async def on_chunk(chunk: Chunk) -> None:
        if done.is_set():
            return
        first = chunk.first_offset
        messages = chunk.messages
        if first < start:
            messages = messages[start - first :]
            first = start
        if first + len(messages) - 1 >= end:
            messages = messages[: max(0, end - first + 1)]
            result = on_messages(first, messages) if messages else None
            if result is not None:
                await result
            done.set()
            return
        if messages:
            result = on_messages(first, messages)
            if result is not None:
                await result
        if chunk.first_offset + chunk.record_count - 1 >= end:
            done.set()

    subscription = Subscription(
        settings,
        stream,
        on_chunk,
        Offset.at(start) if start > 0 else Offset.first(),
        name=f"read-{stream}",
        initial_credit=8,
    )
    try:
        await subscription.start()
        async with asyncio.timeout(timeout_s):
            await done.wait()
    except TimeoutError:
        raise ReplayTimeout(
            f"reading {stream} did not reach offset {end} within {timeout_s:.0f} s"
        ) from None
    finally:
        await subscription.stop()
    if subscription.failure is not None:
        raise subscription.failure
    return end


async def read_partition_ticks(
    settings: ConnectionSettings,
    stream: str,
    on_ticks: Callable[[list[int], list[Tick]], None],
    *,
    start: int = 0,
    end: int,
    timeout_s: float = 300.0,
) -> None:
    """The decodable ticks of partition `stream` from offset `start` (default: its first) to
    `end`, in order (messages that are not ticks are left out, as the worker leaves them out)."""

    def on_messages(first: int, messages: list[bytes]) -> None:
        ticks, errors = decode_messages(messages)
        if errors:
            failed = {i for i, _ in errors}
            offsets = [first + i for i in range(len(messages)) if i not in failed]
        else:
            offsets = list(range(first, first + len(messages)))
        if ticks:
            on_ticks(offsets, ticks)

    if end >= start:
        await read_to_end(settings, stream, on_messages, start=start, end=end, timeout_s=timeout_s)


async def last_prices(
    settings: ConnectionSettings,
    super_stream: str,
    symbols: Iterable[str],
    *,
    until_us: int | None = None,
    timeout_s: float = 300.0,
) -> dict[str, Decimal]:
    """Each symbol's last traded price in `super_stream` at `until_us` (the last tick whose
    timestamp is at or before it; None: the last tick stored now). Symbols without such a
    tick are left out. Reads only the symbols' partitions (unfiltered: a server-side filter
    could withhold the chunk that holds the end offset)."""
    wanted = sorted(set(symbols))
    if not wanted:
        return {}
    async with Admin(settings) as admin:
        streams = await admin.partitions(super_stream)
    if not streams:
        raise StreamNotFound(f"super stream {super_stream!r} does not exist")
    router = Router(len(streams))
    routed: dict[int, list[str]] = {}
    for symbol in wanted:
        routed.setdefault(router.route(symbol), []).append(symbol)
    latest: dict[str, tuple[int, str]] = {}
    limit = until_us if until_us is not None else 2**63
    keep = frozenset(wanted)

    def on_messages(_first: int, messages: list[bytes]) -> None:
        ticks, _ = decode_messages(messages)
        for tick in ticks:
            if tick.symbol in keep and tick.timestamp_us <= limit:
                known = latest.get(tick.symbol)
                if known is None or tick.timestamp_us >= known[0]:
                    latest[tick.symbol] = (tick.timestamp_us, tick.last_price)

    await asyncio.gather(
        *(read_to_end(settings, streams[i], on_messages, timeout_s=timeout_s) for i in routed)
    )
    return {symbol: Decimal(price) for symbol, (_, price) in latest.items()}
