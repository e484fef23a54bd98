"""A paced live feed for the fault benches, with its own record of every confirm.

`LiveFeed` publishes simulated ticks (realtime clock: a tick's timestamp is its creation time)
at `rate` ticks/s with the lossless `Producer`, one `send_batch` per partition per step, so each
returned future is one partition's confirm. It records, continuously and from the producer's
own confirms (never polled), each partition's gaps between confirms: a gap runs from the
partition's previous confirm (or from the send that found it with nothing in flight) to the
next confirm. Gaps of at least `GAP_FLOOR_S` are kept with their wall-clock ends; at `stop()`
a partition still waiting gets a gap up to then, and whatever was never confirmed is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from partitioning.producer import Producer, ProducerConfig, ProducerState
from partitioning.router import Router
from partitioning.simulator import MarketSimulator
from superticks.errors import PublishTimeout
from superticks.settings import ConnectionSettings

__all__ = ["GAP_FLOOR_S", "ConfirmGap", "LiveFeed"]

GAP_FLOOR_S = 0.05


@dataclass(frozen=True, slots=True)
class ConfirmGap:
    """A partition waited for a confirm from `start_ns` to `end_ns` (wall clock)."""

    partition: int
    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


class LiveFeed:
    """Publishes until `stop()`; see the module docstring. `start()`/`stop()`, safe twice."""

    def __init__(
        self,
        settings: ConnectionSettings,
        super_stream: str,
        *,
        rate: float,
        symbols: int = 100,
        seed: int = 11,
        name: str | None = None,
    ) -> None:
        self.rate = rate
        self.simulator = MarketSimulator(symbols, seed=seed, realtime=True)
        self.producer = Producer(
            ProducerConfig(
                connection=settings, super_stream=super_stream, name=name or f"{super_stream}-feed"
            )
        )
        self.per_symbol: dict[str, int] = {}
        self.sent = 0
        self.gaps: list[ConfirmGap] = []
        self._outstanding: list[int] = []
        self._waiting_since: list[int] = []
        self._router: Router | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._stopped = False

    @property
    def confirmed(self) -> int:
        return self.producer.metrics.confirmed

    @property
    def reconnects(self) -> int:
        return self.producer.metrics.reconnects

    async def start(self) -> None:
        await self.producer.start()
        partitions = self.producer.partitions
        self._router = Router(partitions)
        self._outstanding = [0] * partitions
        self._waiting_since = [0] * partitions
        self._task = asyncio.create_task(self._feed(), name="live-feed")

    async def stop(self, flush_timeout_s: float = 60.0) -> None:
        """Stop sending, wait up to `flush_timeout_s` for the confirms, close the producer."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        if self.producer.state is ProducerState.RUNNING:
            with contextlib.suppress(TimeoutError, PublishTimeout):
                await self.producer.flush(flush_timeout_s)
        now = time.time_ns()
        for partition, outstanding in enumerate(self._outstanding):
            if outstanding:
                self._gap(partition, self._waiting_since[partition], now)
        await self.producer.stop(timeout_s=1.0)

    def to_dict(self) -> dict[str, Any]:
        """The producer's record for the run file: sent, confirmed, per_symbol, reconnects."""
        return {
            "sent": self.sent,
            "confirmed": self.confirmed,
            "unknown": self.sent - self.confirmed,
            "reconnects": self.reconnects,
            "resent": self.producer.metrics.resent,
            "per_symbol": dict(self.per_symbol),
        }

    def _gap(self, partition: int, start_ns: int, end_ns: int) -> None:
        if end_ns - start_ns >= GAP_FLOOR_S * 1e9:
            self.gaps.append(ConfirmGap(partition, start_ns, end_ns))

    def _on_confirm(self, partition: int, future: asyncio.Future[None]) -> None:
        if future.cancelled() or future.exception() is not None:
            return  # never confirmed: unknown, and its gap is closed at stop()
        now = time.time_ns()
        self._gap(partition, self._waiting_since[partition], now)
        self._waiting_since[partition] = now
        self._outstanding[partition] -= 1

    async def _feed(self) -> None:
        assert self._router is not None
        route = self._router.route
        step = max(1, int(self.rate / 100))
        started = time.monotonic()
        while not self._stopping.is_set():
            # always yield: behind schedule (after a stall) the feed catches up in bursts, but
            # never starves the confirms, the workers' tail or the fault driver
            await asyncio.sleep(max(0.0, started + self.sent / self.rate - time.monotonic()))
            items = self.simulator.batch(step)
            by_partition: dict[int, list[tuple[str, bytes]]] = {}
            for item in items:
                symbol = item[0]
                self.per_symbol[symbol] = self.per_symbol.get(symbol, 0) + 1
                by_partition.setdefault(route(symbol), []).append(item)
            self.sent += len(items)
            for partition, batch in by_partition.items():
                if not self._outstanding[partition]:
                    self._waiting_since[partition] = time.time_ns()
                self._outstanding[partition] += 1
                future = await self.producer.send_batch(batch)
                future.add_done_callback(partial(self._on_confirm, partition))
