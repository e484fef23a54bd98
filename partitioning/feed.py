"""A live feed: the market simulator's ticks published by the producer, paced or flat out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from partitioning.producer import Producer

__all__ = ["FeedResult", "TickSource", "run_feed"]


class TickSource(Protocol):
    def batch(self, n: int) -> list[tuple[str, bytes]]: ...


@dataclass(frozen=True, slots=True)
class FeedResult:
    sent: int
    confirmed: int
    resent: int
    reconnects: int
    seconds: float
    ticks_per_s: float
    confirm_p50_ms: float
    confirm_p99_ms: float
    per_symbol: dict[str, int]  # ticks published per symbol (sequence numbers 0..n-1 this run)

    def to_dict(self, with_symbols: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_symbols:
            data.pop("per_symbol")
        return data


async def run_feed(
    producer: Producer,
    source: TickSource,
    *,
    count: int | None = None,
    duration_s: float | None = None,
    rate: float | None = None,
    batch: int = 1000,
    progress: Callable[[str], None] | None = None,
    progress_every_s: float = 2.0,
) -> FeedResult:
    """Publish until `count` ticks or `duration_s` seconds (whichever is given; at most `rate`
    ticks/s, flat out when None), wait for every confirm, and report."""
    if count is None and duration_s is None:
        raise ValueError("give a count or a duration")
    started = time.monotonic()
    deadline = started + duration_s if duration_s is not None else None
    per_symbol: dict[str, int] = {}
    sent = 0
    next_report = started + progress_every_s
    while True:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        if count is not None and sent >= count:
            break
        n = batch if count is None else min(batch, count - sent)
        if rate is not None:
            n = max(1, min(n, int(rate / 50) or 1))  # ~50 sends a second when paced
            wait = started + sent / rate - now
            if wait > 0:
                await asyncio.sleep(wait)
        items = source.batch(n)
        for symbol, _ in items:
            per_symbol[symbol] = per_symbol.get(symbol, 0) + 1
        await producer.send_batch(items)
        sent += n
        if progress is not None and now >= next_report:
            m = producer.metrics
            progress(
                f"sent {m.sent:,}  confirmed {m.confirmed:,}  in flight {m.in_flight:,}  "
                f"re-sent {m.resent:,}  {m.confirmed / (now - started):,.0f} ticks/s"
            )
            next_report = now + progress_every_s
    await producer.flush()
    seconds = time.monotonic() - started
    m = producer.metrics
    return FeedResult(
        sent=m.sent,
        confirmed=m.confirmed,
        resent=m.resent,
        reconnects=m.reconnects,
        seconds=round(seconds, 3),
        ticks_per_s=round(m.confirmed / seconds, 1) if seconds else 0.0,
        confirm_p50_ms=round(m.latency_quantile(0.5) * 1000, 2),
        confirm_p99_ms=round(m.latency_quantile(0.99) * 1000, 2),
        per_symbol=per_symbol,
    )
