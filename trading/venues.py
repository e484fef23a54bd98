"""Several venues, one stream: the aggregator and the consolidated best bid and offer.

Each venue publishes its own feed to its own super stream (``market_data_<venue>``, e.g.
``superticks produce --exchange NYSE --super-stream market_data_nyse``). `Aggregator`
republishes every venue's ticks into the unified super stream (``ticks``): one `GroupWorker`
per venue (consumer group ``aggregate`` on that venue's super stream, so several aggregator
processes share the work and take over from one another), whose `VenueHandler` re-frames each
tick with two more string application properties, ``venue`` and ``received_at`` (when the
aggregator received it, ISO-8601 UTC), and publishes it. The body is the tick's own, unchanged:
readers of the unified stream that ignore application properties read it as before
(docs/wire-format.md). Ticks in our own layout are re-framed undecoded (`reframe_with`: one
slice and one lookup per tick), so their bodies are not validated here: the unified stream's
workers validate them (and dead-letter what does not decode), as they would the venue's.

Nothing lost, nothing twice, order kept, across the aggregator's own restarts:

* per (venue, source partition) one producer name, ``aggregate-<venue>-<partition>``, and each
  tick's publishing id is its source offset + 1;
* pipelined: a chunk's ticks are handed to the producer and the next chunk is read at once
  (up to `AggregatorConfig.max_in_flight` unconfirmed ticks per source partition); the
  worker stores a source offset only once every republished tick up to it is confirmed
  (`workers.handlers.Settling`), and settles before a partition moves away or it stops;
* a restarted (or successor) aggregator resumes after the stored source offset, which may be a
  little behind what it had published: those ticks get the same ids again, and the broker
  (or the producer itself, for ids it knows are stored) drops them;
* a symbol lives in one source partition, which one producer writes in offset order to the
  symbol's target partition: per (venue, symbol) order holds.

`consolidate` (pure) and `BboHandler` (a worker handler on the unified stream: ``superticks
worker --handler bbo``) keep each symbol's best bid and offer across venues.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from partitioning.codec import (
    Tick,
    data_header,
    decode_message,
    format_body,
    message_prefix_with,
    reframe_with,
)
from partitioning.model import format_timestamp_us
from partitioning.producer import Producer, ProducerConfig
from superticks.errors import DecodeError
from superticks.histogram import LatencyHistogram
from superticks.settings import ConnectionSettings
from workers.deadletter import describe
from workers.group import GroupWorker, WorkerConfig

__all__ = [
    "SUB_ENTRY_MAX",
    "Aggregator",
    "AggregatorConfig",
    "Bbo",
    "BboHandler",
    "Quote",
    "VenueHandler",
    "consolidate",
    "venue_stream",
]

log = logging.getLogger("superticks.aggregate")

SUB_ENTRY_MAX = 1_000
"""The most ticks the aggregator republishes as one sub-entry batch (`sub_entry_size`)."""

_NAME = r"^[A-Za-z0-9._-]+$"


def venue_stream(venue: str) -> str:
    """The super stream of a venue's feed: ``market_data_<venue in lower case>``."""
    return f"market_data_{venue.lower()}"


class AggregatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    connection: ConnectionSettings = Field(default_factory=ConnectionSettings)
    venues: tuple[str, ...] = Field(min_length=1)
    target: str = Field(default="ticks", min_length=1, pattern=_NAME)
    """The unified super stream."""
    group: str = Field(default="aggregate", min_length=1, pattern=_NAME)
    """The consumer group on each venue's super stream (its offsets are the stored sources)."""
    name: str | None = Field(default=None, pattern=_NAME)
    """This aggregator's worker name (default: hostname-pid)."""
    sources: dict[str, str] = Field(default_factory=dict)
    """Venue -> its super stream, where it is not `venue_stream(venue)`."""
    store_every_ms: int = Field(default=200, ge=1)
    store_every_ticks: int = Field(default=1000, ge=1)
    """How often the source offsets are stored (after a crash, what was forwarded since is
    forwarded again, and deduplicated)."""
    max_in_flight: int = Field(default=10_000, ge=1)
    """Republished ticks per source partition awaiting their confirm (the pipeline's bound)."""
    linger_ms: float = Field(default=20.0, ge=0, le=1_000)
    """How long a republished frame that is not full waits for the next chunks' ticks (the
    producers' `linger_ms`). Each source chunk is split over the target partitions, so without
    it the nodes store many small chunks, and their work is per chunk: fewer, fuller chunks
    leave the cores to the aggregator. It adds at most this much to a tick's lag."""
    sub_entry_size: int = Field(default=1, ge=1, le=SUB_ENTRY_MAX)
    """Republished ticks per sub-entry batch (the producers' `sub_entry_size`); 1, the default,
    writes one message per tick, which every client reads. More: the nodes store and replicate
    a batch as one entry (about a third of their work per tick, `bench publish`), the
    source offsets stay exact across restarts (see `Producer.send_with_ids`), but the official
    JS client cannot read the unified stream, and consumers cannot filter it by symbol."""

    def source(self, venue: str) -> str:
        return self.sources.get(venue, venue_stream(venue))


class VenueHandler:
    """Republishes one venue's ticks into the unified super stream (see the module docstring).

    A `MessageHandler`: ticks of our own layout are re-framed without being decoded (their
    body is kept byte for byte); another client's are decoded and written in our layout, and
    those that do not decode are refused (dead-lettered by the worker). A `Settling` handler:
    a call returns once its ticks are handed to the producer (waiting only for room in the
    producer's window of `max_in_flight` ticks), so many chunks are in flight at once, and the
    worker stores a source offset only once every tick up to it is confirmed. A
    `PartitionAssigning` one: a source partition's producer starts as soon as the partition
    is assigned, not at its first chunk.

    `lag` counts, per chunk, the age of its last tick when the broker confirmed its
    republished copy (tick timestamp to confirm: meaningful when the feed stamps ticks with
    the wall clock; it includes the feed's own publishing delay), `forward` the time from
    receipt to that confirm (the aggregator's own share). Both are `LatencyHistogram`s: every
    chunk of a day-long run counted in fixed memory, a quantile read in microseconds (a list
    of samples capped at a million stopped moving after ~20 minutes at 90,000 ticks/s, and
    sorting it for every status line took a quarter of a core). Call `close()` after the
    worker stopped.
    """

    def __init__(
        self,
        connection: ConnectionSettings,
        venue: str,
        target: str = "ticks",
        max_in_flight: int = 10_000,
        linger_ms: float = 20.0,
        sub_entry_size: int = 1,
    ) -> None:
        self.connection = connection
        self.venue = venue
        self.target = target
        self.max_in_flight = max_in_flight
        self.linger_ms = linger_ms
        self.sub_entry_size = sub_entry_size
        self.forwarded = 0
        self.lag = LatencyHistogram()
        self.forward = LatencyHistogram()
        self._producers: dict[int, Producer] = {}
        self._starting: dict[int, asyncio.Lock] = {}  # per source partition
        self._warming: dict[int, asyncio.Task[Producer]] = {}  # starts begun on assignment
        # per source partition: (first source offset of a call, its confirm), in offset order
        self._in_flight: dict[int, deque[tuple[int, asyncio.Future[None]]]] = {}

    async def _producer(self, partition: int) -> Producer:
        """The source partition's producer, started when the partition is assigned (in the
        background) or else by its first chunk. Partitions start theirs at the same time: a
        start (connections to the target's leaders, the name's last id) took 1-2 s on a loaded
        machine, and one after another the third partition of a venue forwarded nothing for
        its first 4-6 s (`superticks bench aggregate`)."""
        lock = self._starting.get(partition)
        if lock is None:
            lock = self._starting[partition] = asyncio.Lock()
        async with lock:
            producer = self._producers.get(partition)
            if producer is None:
                producer = Producer(
                    ProducerConfig(
                        connection=self.connection,
                        super_stream=self.target,
                        name=f"aggregate-{self.venue}-{partition}",
                        name_wait_s=30.0,  # until the previous holder releases it
                        max_in_flight=self.max_in_flight,
                        linger_ms=self.linger_ms,
                        sub_entry_size=self.sub_entry_size,
                    )
                )
                await producer.start()
                self._producers[partition] = producer
            return producer

    async def partition_assigned(self, partition: int) -> None:
        """Start the source partition's producer now, in the background (`PartitionAssigning`):
        its first chunk then finds it started, or waits only for the rest of the start. A start
        that fails is made again by the first chunk."""
        if partition in self._producers or partition in self._warming:
            return
        task = asyncio.create_task(self._producer(partition), name=f"warm-{self.venue}-{partition}")
        self._warming[partition] = task
        task.add_done_callback(partial(self._warmed, partition))

    def _warmed(self, partition: int, task: asyncio.Task[Producer]) -> None:
        if self._warming.get(partition) is task:
            del self._warming[partition]
        if not task.cancelled() and task.exception() is not None:
            log.info(
                "%s partition %d: the producer's early start failed (%r); its first chunk "
                "starts it",
                self.venue,
                partition,
                task.exception(),
            )

    async def _cool(self, partition: int) -> None:
        """Cancel and await the partition's early start, if one is under way."""
        task = self._warming.pop(partition, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _extra(self, received_us: int) -> tuple[tuple[str, str], ...]:
        return (("venue", self.venue), ("received_at", format_timestamp_us(received_us)))

    async def handle_messages(
        self, partition: int, first_offset: int, messages: Sequence[bytes]
    ) -> list[tuple[int, str]]:
        if not messages:
            return []
        received_us = time.time_ns() // 1000
        extra = self._extra(received_us)
        items, others = reframe_with(messages, extra, first_offset + 1)
        refused: list[tuple[int, str]] = []
        if others:
            for i in others:
                try:
                    tick = decode_message(messages[i])
                except DecodeError as exc:
                    refused.append((first_offset + i, describe(exc)))
                    continue
                items.append((first_offset + i + 1, tick.symbol, _reframe(tick, extra)))
            items.sort(key=_first)
        try:
            last_us = decode_message(messages[-1]).timestamp_us
        except DecodeError:
            last_us = 0
        await self._forward(partition, first_offset, items, last_us, received_us)
        return refused

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        """The decoded path (`TickHandler`): each tick written in our layout."""
        if not ticks:
            return
        received_us = time.time_ns() // 1000
        extra = self._extra(received_us)
        items = [
            (offset + 1, t.symbol, _reframe(t, extra))
            for offset, t in zip(offsets, ticks, strict=True)
        ]
        await self._forward(partition, offsets[0], items, ticks[-1].timestamp_us, received_us)

    async def _forward(
        self,
        partition: int,
        first_offset: int,
        items: list[tuple[int, str, bytes]],
        last_us: int,
        received_us: int,
    ) -> None:
        """Publish under ids source offset + 1 and remember the confirm (not awaited). A
        publish that fails (its producer failed or was stopped) stays unsettled: its source
        offsets are never stored, and the producer refuses what comes next."""
        producer = self._producers.get(partition)
        if producer is None:
            producer = await self._producer(partition)
        confirm = await producer.send_with_ids(items)
        queue = self._in_flight.get(partition)
        if queue is None:
            queue = self._in_flight[partition] = deque()
        queue.append((first_offset, confirm))
        count = len(items)

        def confirmed(future: asyncio.Future[None]) -> None:
            if future.cancelled() or future.exception() is not None:
                return
            self.forwarded += count
            now_us = time.time_ns() // 1000
            self.forward.record((now_us - received_us) / 1e6)
            if last_us:
                self.lag.record((now_us - last_us) / 1e6)

        confirm.add_done_callback(confirmed)

    def unsettled(self, partition: int) -> int | None:
        """The first source offset of the oldest call whose ticks are not all confirmed
        (None: all are); a call whose publish failed stays unsettled."""
        queue = self._in_flight.get(partition)
        while queue:
            future = queue[0][1]
            if not future.done() or future.cancelled() or future.exception() is not None:
                return queue[0][0]
            queue.popleft()
        return None

    async def settle(self, partition: int) -> None:
        """Until every tick handed over for the partition is confirmed or failed (cancelling
        the wait leaves them in flight)."""
        queue = self._in_flight.get(partition)
        if queue:
            await asyncio.wait([future for _, future in queue])

    async def partition_released(self, partition: int) -> None:
        """The source partition moved to another aggregator: close its producer (the
        successor takes its name and continues its ids)."""
        await self._cool(partition)
        producer = self._producers.pop(partition, None)
        self._in_flight.pop(partition, None)
        if producer is not None:
            await producer.stop()

    async def close(self) -> None:
        """Flush and close the producers; safe twice."""
        for partition in list(self._warming):
            await self._cool(partition)
        producers, self._producers = list(self._producers.values()), {}
        await asyncio.gather(*(p.stop() for p in producers))


def _reframe(tick: Tick, extra: Sequence[tuple[str, str]]) -> bytes:
    """A decoded tick as a message of our layout with `extra` application properties."""
    body = format_body(
        tick.symbol,
        tick.exchange,
        tick.bid_price,
        tick.bid_size,
        tick.ask_price,
        tick.ask_size,
        tick.last_price,
        tick.last_size,
        tick.volume,
        tick.timestamp_us,
        tick.sequence_number,
    )
    return message_prefix_with(tick.symbol, extra) + data_header(len(body)) + body


_first = operator.itemgetter(0)


def quantiles(histograms: Iterable[LatencyHistogram]) -> dict[str, float | int | None]:
    """p50, p99 and max of the merged `histograms` (seconds, rounded to 0.1 ms; None each when
    nothing was recorded) and how many durations they hold (``count``)."""
    merged = LatencyHistogram()
    for histogram in histograms:
        merged.merge(histogram)
    if not merged.count:
        return {"p50": None, "p99": None, "max": None, "count": 0}
    summary = merged.histogram.summary(scale=1e-6, digits=4)  # microseconds to seconds
    return {key: summary[key] for key in ("p50", "p99", "max", "count")}


class Aggregator:
    """One group worker per venue, each republishing into the unified super stream.

    ``async with Aggregator(config) as agg: ...`` or `start()` / `stop()` (safe twice: stops
    the workers gracefully -- drain, store source offsets -- then closes the producers).
    """

    def __init__(self, config: AggregatorConfig) -> None:
        self.config = config
        self.handlers = {
            v: VenueHandler(
                config.connection,
                v,
                config.target,
                config.max_in_flight,
                config.linger_ms,
                config.sub_entry_size,
            )
            for v in config.venues
        }
        self.workers: dict[str, GroupWorker] = {}
        self._stopped = False

    async def start(self) -> None:
        cfg = self.config
        try:
            for venue in cfg.venues:
                options: dict[str, Any] = {
                    "connection": cfg.connection,
                    "super_stream": cfg.source(venue),
                    "group": cfg.group,
                    "handler_retries": 10,
                    "store_every_ms": cfg.store_every_ms,
                    "store_every_ticks": cfg.store_every_ticks,
                }
                if cfg.name is not None:
                    options["name"] = f"{cfg.name}-{venue}"
                worker = GroupWorker(WorkerConfig(**options), self.handlers[venue])
                self.workers[venue] = worker
                await worker.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        await asyncio.gather(*(w.stop() for w in self.workers.values()))
        await asyncio.gather(*(h.close() for h in self.handlers.values()))

    async def __aenter__(self) -> Aggregator:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def failure(self) -> BaseException | None:
        for worker in self.workers.values():
            if worker.failure is not None:
                return worker.failure
        return None

    def status(self) -> dict[str, Any]:
        return {
            "target": self.config.target,
            "group": self.config.group,
            "forwarded": sum(h.forwarded for h in self.handlers.values()),
            "venues": {
                v: {
                    "source": self.config.source(v),
                    "forwarded": self.handlers[v].forwarded,
                    "consumed": w.consumed,
                    "active_partitions": w.active_partitions,
                    "dead_letters": w.dead_letters,
                }
                for v, w in self.workers.items()
            },
            "lag_s": quantiles(h.lag for h in self.handlers.values()),
            "forward_s": quantiles(h.forward for h in self.handlers.values()),
            "cpu_s": round(time.process_time(), 3),
        }


# -- the consolidated best bid and offer -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    """A venue's top of book for a symbol."""

    venue: str
    bid: Decimal
    bid_size: Decimal
    ask: Decimal
    ask_size: Decimal
    timestamp_us: int


@dataclass(frozen=True, slots=True)
class Bbo:
    """The best bid and offer across venues: the highest bid and the lowest ask, the size
    shown at each summed over the venues quoting it, and those venues (sorted)."""

    symbol: str
    bid: Decimal
    bid_size: Decimal
    bid_venues: tuple[str, ...]
    ask: Decimal
    ask_size: Decimal
    ask_venues: tuple[str, ...]

    @property
    def locked(self) -> bool:
        return self.bid == self.ask

    @property
    def crossed(self) -> bool:
        return self.bid > self.ask

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "bid": str(self.bid),
            "bid_size": str(self.bid_size),
            "bid_venues": list(self.bid_venues),
            "ask": str(self.ask),
            "ask_size": str(self.ask_size),
            "ask_venues": list(self.ask_venues),
            "locked": self.locked,
            "crossed": self.crossed,
        }


def consolidate(symbol: str, quotes: Iterable[Quote]) -> Bbo | None:
    """The consolidated best bid and offer of `quotes` (one per venue); None without quotes."""
    quotes = list(quotes)
    if not quotes:
        return None
    bid = max(q.bid for q in quotes)
    ask = min(q.ask for q in quotes)
    at_bid = [q for q in quotes if q.bid == bid]
    at_ask = [q for q in quotes if q.ask == ask]
    return Bbo(
        symbol,
        bid,
        sum((q.bid_size for q in at_bid), Decimal(0)),
        tuple(sorted(q.venue for q in at_bid)),
        ask,
        sum((q.ask_size for q in at_ask), Decimal(0)),
        tuple(sorted(q.venue for q in at_ask)),
    )


@dataclass(slots=True)
class BboHandler:
    """`TickHandler` keeping every symbol's latest quote per venue (the tick's ``exchange``)
    and their consolidated best bid and offer (`best`)."""

    quotes: dict[str, dict[str, Quote]] = field(default_factory=dict)
    best: dict[str, Bbo] = field(default_factory=dict)
    ticks: int = 0

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        touched: set[str] = set()
        quotes = self.quotes
        for t in ticks:
            venues = quotes.get(t.symbol)
            if venues is None:
                venues = quotes[t.symbol] = {}
            venues[t.exchange] = Quote(
                t.exchange,
                Decimal(t.bid_price),
                Decimal(t.bid_size),
                Decimal(t.ask_price),
                Decimal(t.ask_size),
                t.timestamp_us,
            )
            touched.add(t.symbol)
        for symbol in touched:
            bbo = consolidate(symbol, quotes[symbol].values())
            if bbo is not None:
                self.best[symbol] = bbo
        self.ticks += len(ticks)

    def summary(self, top: int = 10) -> dict[str, Any]:
        """JSON-able: how many symbols, how many crossed or locked, the first `top`."""
        return {
            "ticks": self.ticks,
            "symbols": len(self.best),
            "crossed": sum(1 for b in self.best.values() if b.crossed),
            "locked": sum(1 for b in self.best.values() if b.locked),
            "bbo": [self.best[s].to_dict() for s in sorted(self.best)[:top]],
        }
