"""Replay: read back what the super stream holds, for backtests and audits, with a definite end.

A replay first takes each partition's last offset *now*; that is where it stops, so ticks that
arrive while it runs are not part of it and two replays of the same range over the same stored
data return the same ticks and the same VWAPs. It reads each partition from its first offset
and keeps the ticks whose *tick* timestamp (not the broker's chunk time: producers in other
languages or replays of old data carry their own clocks) lies in `[start_us, end_us)` and whose
symbol is asked for. Asking for symbols also narrows the partitions read to those the symbols
route to (the murmur3 rule). A message that is not a tick is counted, never dropped silently.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from partitioning.codec import Tick, decode_messages
from partitioning.router import Router
from partitioning.topology import partition_streams
from superticks.errors import ReplayTimeout
from superticks.settings import ConnectionSettings
from superticks.streams import Admin, Chunk, Offset, Subscription
from workers.vwap import SymbolAggregate, aggregate_by_symbol

__all__ = ["ReplayResult", "replay", "replay_all", "replay_symbols", "replay_time_range"]


@dataclass(slots=True)
class ReplayResult:
    """The ticks a replay kept, per symbol in stream order, and what it read to find them."""

    super_stream: str
    start_us: int | None
    end_us: int | None
    symbols: frozenset[str] | None
    end_offsets: dict[str, int]  # partition -> last offset included (-1: empty)
    ticks: dict[str, list[Tick]] = field(default_factory=dict)
    read: int = 0  # messages read
    undecodable: int = 0  # messages that were not ticks (see the dead-letter stream)
    seconds: float = 0.0

    @property
    def kept(self) -> int:
        return sum(len(v) for v in self.ticks.values())

    def get_data_for_symbol(self, symbol: str) -> list[Tick]:
        """The symbol's ticks in sequence (stream) order; [] if it had none."""
        return self.ticks.get(symbol, [])

    def vwap(self) -> dict[str, SymbolAggregate]:
        return {s: aggregate_by_symbol(t)[s] for s, t in sorted(self.ticks.items()) if t}

    def to_dict(self) -> dict[str, Any]:
        return {
            "super_stream": self.super_stream,
            "start_us": self.start_us,
            "end_us": self.end_us,
            "symbols": sorted(self.symbols) if self.symbols is not None else None,
            "end_offsets": self.end_offsets,
            "read": self.read,
            "kept": self.kept,
            "undecodable": self.undecodable,
            "seconds": round(self.seconds, 3),
            "vwap": {
                s: {
                    "vwap": str(a.vwap) if a.vwap is not None else None,
                    "high": str(a.high),
                    "low": str(a.low),
                    "volume": str(a.volume),
                    "count": a.count,
                }
                for s, a in self.vwap().items()
            },
        }

    def print_summary(self, out: TextIO = sys.stdout, top: int = 20) -> None:
        print(
            f"replay of {self.super_stream}: read {self.read:,}, kept {self.kept:,} ticks of "
            f"{len(self.ticks)} symbols, {self.undecodable} not ticks, in {self.seconds:.2f} s",
            file=out,
        )
        rows = sorted(self.vwap().items(), key=lambda kv: -kv[1].count)[:top]
        if rows:
            print(f"  {'symbol':10} {'count':>8} {'vwap':>14} {'low':>10} {'high':>10}", file=out)
        for symbol, agg in rows:
            vwap = f"{agg.vwap:.4f}" if agg.vwap is not None else "-"
            print(
                f"  {symbol:10} {agg.count:>8,} {vwap:>14} {agg.low!s:>10} {agg.high!s:>10}",
                file=out,
            )


async def replay(
    settings: ConnectionSettings,
    super_stream: str = "ticks",
    *,
    start_us: int | None = None,
    end_us: int | None = None,
    symbols: Iterable[str] | None = None,
    timeout_s: float = 120.0,
) -> ReplayResult:
    """Replay the ticks stored now whose timestamp is in [start_us, end_us) and whose symbol is
    in `symbols` (None: all). Raises `ReplayTimeout` if the end is not reached in time."""
    wanted = frozenset(symbols) if symbols is not None else None
    started = time.monotonic()
    async with Admin(settings) as admin:
        streams = await partition_streams(admin, super_stream, routed=wanted is not None)
        if wanted is not None:
            router = Router(len(streams))
            streams = [streams[i] for i in sorted({router.route(s) for s in wanted})]
        ends = {s: await admin.last_offset(s) for s in streams}
    result = ReplayResult(super_stream, start_us, end_us, wanted, ends)
    pending = {s for s, end in ends.items() if end >= 0}
    finished = asyncio.Event()
    if not pending:
        finished.set()
    lo = start_us if start_us is not None else -(2**63)
    hi = end_us if end_us is not None else 2**63

    def reader(stream: str, end: int) -> Any:
        async def on_chunk(chunk: Chunk) -> None:
            if stream not in pending:
                return
            ticks = result.ticks
            messages = chunk.messages
            upto = end + 1 - chunk.first_offset  # how many of them are inside the replay
            if upto < len(messages):
                messages = messages[: max(upto, 0)]
            result.read += len(messages)
            decoded, errors = decode_messages(messages)  # the chunk decode the worker uses
            result.undecodable += len(errors)
            for tick in decoded:
                if lo <= tick.timestamp_us < hi and (wanted is None or tick.symbol in wanted):
                    bucket = ticks.get(tick.symbol)
                    if bucket is None:
                        bucket = ticks[tick.symbol] = []
                    bucket.append(tick)
            if chunk.first_offset + len(messages) > end:
                pending.discard(stream)
                if not pending:
                    finished.set()

        return on_chunk

    subscriptions = [
        Subscription(settings, s, reader(s, end), Offset.first(), name="replay", initial_credit=8)
        for s, end in ends.items()
        if end >= 0
    ]
    try:
        await asyncio.gather(*(sub.start() for sub in subscriptions))
        async with asyncio.timeout(timeout_s):
            await finished.wait()
    except TimeoutError:
        raise ReplayTimeout(
            f"replay of {super_stream} did not reach its end offsets within {timeout_s:.0f} s "
            f"({len(pending)} partitions unfinished): raise --timeout"
        ) from None
    finally:
        await asyncio.gather(*(sub.stop() for sub in subscriptions))
    result.seconds = time.monotonic() - started
    return result


async def replay_all(
    settings: ConnectionSettings, super_stream: str = "ticks", timeout_s: float = 120.0
) -> ReplayResult:
    return await replay(settings, super_stream, timeout_s=timeout_s)


async def replay_time_range(
    settings: ConnectionSettings,
    start_us: int,
    end_us: int,
    super_stream: str = "ticks",
    timeout_s: float = 120.0,
) -> ReplayResult:
    return await replay(
        settings, super_stream, start_us=start_us, end_us=end_us, timeout_s=timeout_s
    )


async def replay_symbols(
    settings: ConnectionSettings,
    symbols: Iterable[str],
    super_stream: str = "ticks",
    timeout_s: float = 120.0,
) -> ReplayResult:
    return await replay(settings, super_stream, symbols=symbols, timeout_s=timeout_s)
