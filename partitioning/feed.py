"""A live feed: the market simulator's ticks published by the producer, paced or flat out."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from partitioning.producer import Producer
from superticks.errors import PublishTimeout

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
    stopped: bool = False  # intake stopped early (a signal) and what was sent was drained
    unconfirmed: int = 0  # ticks still unconfirmed when the drain's time limit ran out

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
    stop: asyncio.Event | None = None,
    drain_timeout_s: float | None = None,
) -> FeedResult:
    """Publish until `count` ticks or `duration_s` seconds (whichever is given; at most `rate`
    ticks/s, flat out when None), wait for every confirm, and report.

    When `stop` is set (a SIGTERM), intake stops at once (a send waiting for room in the
    in-flight window is abandoned: none of its ticks was sent), then what was sent is drained:
    confirms are awaited for at most `drain_timeout_s` (None: no limit); the result says
    `stopped` and how many ticks stayed `unconfirmed`."""
    if count is None and duration_s is None:
        raise ValueError("give a count or a duration")
    stop = stop if stop is not None else asyncio.Event()
    started = time.monotonic()
    deadline = started + duration_s if duration_s is not None else None
    per_symbol: dict[str, int] = {}
    sent = 0
    next_report = started + progress_every_s
    while not stop.is_set():
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        if count is not None and sent >= count:
            break
        n = batch if count is None else min(batch, count - sent)
        if rate is not None:
            n = max(1, min(n, int(rate / 50) or 1))  # ~50 sends a second when paced
            wait = started + sent / rate - now
            if wait > 0 and await _stopped_within(stop, wait):
                break
        items = source.batch(n)
        if not await _sent_unless_stopped(producer, items, stop):
            break
        for symbol, _ in items:
            per_symbol[symbol] = per_symbol.get(symbol, 0) + 1
        sent += n
        if progress is not None and now >= next_report:
            m = producer.metrics
            progress(
                f"sent {m.sent:,}  confirmed {m.confirmed:,}  in flight {m.in_flight:,}  "
                f"re-sent {m.resent:,}  {m.confirmed / (now - started):,.0f} ticks/s"
            )
            next_report = now + progress_every_s
    stopped = stop.is_set()
    with contextlib.suppress(PublishTimeout):
        await producer.flush(drain_timeout_s if stopped else None)
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
        stopped=stopped,
        unconfirmed=m.in_flight,
    )


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`, waking early when `stop` is set; True if it was."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
    return stop.is_set()


async def _sent_unless_stopped(
    producer: Producer, items: list[tuple[str, bytes]], stop: asyncio.Event
) -> bool:
    """`send_batch(items)`, abandoned if `stop` is set while it waits for room (the producer
    writes nothing before it has room, so an abandoned send sent none of its ticks)."""
    send = asyncio.ensure_future(producer.send_batch(items))
    if not send.done():
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait((send, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not send.done():
            send.cancel()
            await asyncio.gather(send, return_exceptions=True)
            return False
    send.result()
    return True
