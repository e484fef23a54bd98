"""The producer: every tick lands once, in its symbol's partition, in order.

How it keeps that promise:

* route once per symbol (`Router`, the Java clients' murmur3 rule), frame each tick once as an
  AMQP 1.0 message, and give it the next publishing id of its partition;
* write ordinary publish frames (one message per tick, per-message ids: readable by every client
  and safe for broker deduplication) of `batch_size` messages (2,000; fewer for big ticks),
  filled across calls: full frames go out at once, a short rest when the event loop next runs
  (or `linger_ms` later, so that the next calls' ticks join it);
  each message carries its symbol as its filter value, for consumers that filter server-side.
  A record is kept as its cached head (per symbol and body size) and the caller's body, and
  framed in one copy;
* group each `send_batch` call's ticks by symbol (stably: a symbol's ticks keep their order;
  ids are given after grouping, so they increase in write order). The broker filters whole
  chunks by a Bloom filter of the filter values in them: grouped, a chunk holds few symbols
  and a one-symbol consumer is sent few chunks; interleaved, nearly every chunk matches;
* keep every unconfirmed message, bounded by `max_in_flight`: `send()` waits for room
  (backpressure) rather than growing memory or dropping. The bookkeeping is per call and
  partition, not per tick (`partitioning.inflight`): the broker confirms in id order, and a
  confirmed run of ids settles whole calls at once;
* when a partition's connection drops, its leader moves, a publish is refused, or confirms stall
  for `confirm_timeout_s`, reconnect to the current leader under the same producer name, ask the
  broker for the last id it stored, count everything up to it as confirmed, and re-send the rest
  in id order. Deduplication (producer name + id) makes re-sends invisible to consumers, also
  across restarts: ids continue from the broker's stored sequence.

It routes by the super stream's partition streams as `partition_streams` finds them: a super
stream that lost partition streams in the middle (deleted on their own) is refused with
`TopologyMismatch` before anything is sent, since routing by what is left would move every
symbol to another partition than every other client's producer puts it in.

One live producer per name (`ProducerConfig.name`) and super stream: two producers under one
name would share publishing ids, and deduplication would drop (and confirm) whatever the second
sends. So before sending anything, the producer takes its name with a broker-arbitrated lock
(`NameLock`: a single-active-consumer group `superticks-producer-<name>` on the first partition,
which reads nothing) and refuses to start with `ProducerNameInUse` when another live producer
holds it (`name_wait_s`). A restart under the same name takes the lock as soon as the old
process's connection is gone, and continues its ids. When the lock's own connection drops (its
node died), the lock rejoins through another node at once and the producer keeps sending: the
broker keeps the lost member active until it notices its connection is gone, and the rejoined
member is next in line, so no other process gets the name in between (blocking sends instead
would stall the feed for as long as the broker takes to notice).

Two variations share that machinery: `ProducerConfig.stream` publishes to one plain stream
instead of a super stream's partitions (the trading audit log; the name lock is then on that
stream), and `send_with_ids` publishes ready-made messages under the caller's publishing ids
(derived, say, from source offsets, so that a successor re-sending the same messages under the
same producer name is deduplicated).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from operator import itemgetter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from partitioning.codec import data_header, message_prefix
from partitioning.inflight import InFlight, Segment
from partitioning.router import Router
from partitioning.topology import partition_streams
from superticks.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    ProducerClosed,
    ProducerNameInUse,
    PublishTimeout,
    StreamError,
    StreamNotFound,
    StreamUnavailable,
    TickTooLarge,
    TlsError,
)
from superticks.histogram import LatencyHistogram
from superticks.settings import ConnectionSettings
from superticks.streams import (
    FRAME_MAX,
    PUBLISH_FRAME_OVERHEAD,
    Admin,
    Compression,
    NameLock,
    PartitionPublisher,
    encode_split_frame,
    encode_sub_entry_record,
    filter_part,
    record_middle,
)
from superticks.tasks import checkpoint

__all__ = [
    "SUB_ENTRY_SIZE_MAX",
    "Producer",
    "ProducerConfig",
    "ProducerMetrics",
    "ProducerState",
    "group_by_symbol",
]

log = logging.getLogger("superticks.producer")

# A tick with len(body) + 8 * len(symbol) up to this fits one frame (the symbol is in it twice,
# as property and filter value, in up to 4 UTF-8 bytes a character; 512: the rest of a frame).
_SURELY_FITS = FRAME_MAX - 512
_SUB_ENTRY_HEAD = 19  # a sub-entry record's id, type, count and sizes
_START_RETRY_S = 15.0  # a partition's leader not reachable at start: tried again this long
SUB_ENTRY_SIZE_MAX = 65_535  # messages in one sub-entry batch: its count is 16 bits on the wire


class ProducerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    connection: ConnectionSettings = Field(default_factory=ConnectionSettings)
    super_stream: str = Field(default="ticks", min_length=1)
    stream: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    """A plain stream to publish to instead of `super_stream` (one partition; the producer's
    broker-side name is then `name` itself, not ``<name>-<partition>``)."""
    name: str = Field(default="superticks", pattern=r"^[A-Za-z0-9._-]+$", max_length=200)
    """The producer's name: its publishing ids (deduplication) and its lock. One live producer
    per name and super stream; a restart under the same name continues the ids."""
    name_wait_s: float = Field(default=3.0, gt=0)
    """How long start() waits for the name to be free before `ProducerNameInUse` (a free name
    is granted in milliseconds; a name whose holder just died frees when its connection does)."""
    max_in_flight: int = Field(default=50_000, ge=1)
    batch_size: int = Field(default=2_000, ge=1, le=10_000)
    """Messages per publish frame (fewer when they would not fit the broker's frame limit).
    Frames fill across calls; bigger frames let the broker write bigger chunks, which costs it
    less per tick."""
    linger_ms: float = Field(default=0.0, ge=0, le=1_000)
    """How long a frame that is not full may wait for the next calls' ticks before it is
    written (full frames always go out at once). 0: when the event loop next runs. At a
    moderate paced rate each call makes its own small frame, and the broker's work per chunk
    (writing, replicating, delivering) is then most of its cost: a few ms to tens of ms here
    means fewer, fuller frames and chunks, at the price of up to that long per tick."""
    confirm_timeout_s: float = Field(default=5.0, gt=0)
    reconnect_delay_s: float = Field(default=0.05, gt=0)
    sub_entry_size: int = Field(default=1, ge=1, le=SUB_ENTRY_SIZE_MAX)
    """Ticks per sub-entry batch; 1 (the default) writes one message per tick with its own
    publishing id, which every client reads. >1 packs that many ticks of a partition under one
    publishing id (one sub-entry), optionally compressed: smaller on the wire and on disk, but
    the official JS client cannot read sub-entry batches, and stream filtering is off."""
    compression: Literal["none", "gzip", "zstd"] = "none"
    filter_values: bool = True
    """Publish each tick with its symbol as stream filter value (v2 publish frames), so that
    consumers of a few symbols can have the broker skip chunks without them."""

    @model_validator(mode="after")
    def _compression_needs_sub_entries(self) -> ProducerConfig:
        if self.compression != "none" and self.sub_entry_size == 1:
            raise ValueError("compression applies to sub-entry batches: set sub_entry_size > 1")
        return self


_COMPRESSION = {"none": Compression.NONE, "gzip": Compression.GZIP, "zstd": Compression.ZSTD}


class ProducerState(StrEnum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(slots=True)
class ProducerMetrics:
    sent: int = 0
    confirmed: int = 0
    resent: int = 0
    reconnects: int = 0
    in_flight: int = 0
    # per send/send_batch call, for the producer's whole life (fixed memory, no sample cap)
    confirm_latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    max_stall_s: float = 0.0  # longest wait for a confirm on a partition with ticks in flight

    def latency_quantile(self, q: float) -> float:
        """Confirm latency of send/send_batch calls at quantile `q`, in seconds (0: none)."""
        return self.confirm_latency.quantile(q)


class _Ticket:
    """The confirmation of one send()/send_batch() call: done when all its ticks are."""

    __slots__ = ("future", "remaining", "started")

    def __init__(self, future: asyncio.Future[None], remaining: int) -> None:
        self.future = future
        self.remaining = remaining
        self.started = time.monotonic()


_Slice = tuple[Segment[_Ticket], int, int]  # records start..end - 1 of a segment


class _Partition:
    __slots__ = (
        "index",
        "inflight",
        "last_progress",
        "link",
        "next_id",
        "outbox",
        "outbox_count",
        "ready",
        "recovering",
    )

    link: PartitionPublisher

    def __init__(self, index: int) -> None:
        self.index = index
        self.next_id = 1
        # what was sent and is not confirmed, in id order; a record keeps its id, head and
        # body, so a re-send is the same bytes and the broker deduplicates it
        self.inflight: InFlight[_Ticket] = InFlight()
        # records not written yet (in flight already): frames go out full (`batch_size`)
        # at once, the rest when the event loop next runs
        self.outbox: deque[_Slice] = deque()
        self.outbox_count = 0
        self.ready = False  # connected and caught up: new frames may be written
        self.recovering: asyncio.Task[None] | None = None
        self.last_progress = time.monotonic()


class Producer:
    """Publishes ticks to the partitions of a super stream, losing none. See module docstring.

    `await send(symbol, body)` / `await send_batch([(symbol, body), ...])` return a future that
    resolves when the broker confirmed every tick of the call. The await itself only waits for
    room in the in-flight window. Cancelling the returned future does not unsend anything: the
    ticks stay in flight and are still re-sent until confirmed (or until `stop()`).
    """

    def __init__(self, config: ProducerConfig | None = None) -> None:
        self.config = config or ProducerConfig()
        self.state = ProducerState.NEW
        self.metrics = ProducerMetrics()
        self._partitions: list[_Partition] = []
        self._router: Router | None = None
        # symbol -> (partition, filter-value field, AMQP message prefix, body size -> record
        # middle): routed once
        self._symbols: dict[str, _Symbol] = {}
        cfg = self.config
        self._per_frame = cfg.batch_size
        if cfg.sub_entry_size > 1:
            self._per_frame = max(1, cfg.batch_size // cfg.sub_entry_size)
        self._version = 2 if cfg.filter_values and cfg.sub_entry_size == 1 else 1
        self._flush_soon: asyncio.Handle | None = None
        self._room = asyncio.Event()
        self._room_for = 0  # the smallest send waiting for room (confirms wake it once it fits)
        self._idle = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._lock: NameLock | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self.state is not ProducerState.NEW:
            raise ProducerClosed(f"a producer starts once (it is {self.state})")
        cfg = self.config
        async with Admin(cfg.connection) as admin:
            if cfg.stream is None:
                streams = await partition_streams(admin, cfg.super_stream)
            elif await admin.stream_exists(cfg.stream):
                streams = [cfg.stream]
            else:
                raise StreamNotFound(f"stream {cfg.stream!r} does not exist")
        lock = NameLock(
            cfg.connection,
            streams[0],
            f"superticks-producer-{cfg.name}",
            on_change=self._name_changed,
        )
        if not await lock.acquire(cfg.name_wait_s):
            raise ProducerNameInUse(cfg.name, cfg.stream or cfg.super_stream, cfg.name_wait_s)
        self._lock = lock
        self._router = Router(len(streams))
        self._partitions = [self._partition(i, stream) for i, stream in enumerate(streams)]
        try:
            lasts = await asyncio.gather(*(self._start_link(p) for p in self._partitions))
        except BaseException:
            await asyncio.gather(*(p.link.stop() for p in self._partitions))
            await lock.release()
            self._lock = None
            raise
        for part, last in zip(self._partitions, lasts, strict=True):
            part.next_id = last + 1
            part.ready = True
        self._room.set()
        self._idle.set()
        self._watchdog = asyncio.create_task(self._watch(), name="producer-watchdog")
        self.state = ProducerState.RUNNING

    async def _start_link(self, part: _Partition) -> int:
        """The partition link's start (its last stored id), tried again for up to
        `_START_RETRY_S` while the leader's node does not answer or the stream has no leader:
        a node restarting refuses connections for a few seconds, and its streams' leaders move
        meanwhile (seen in CI: a producer started just after a node-partition scenario's heal
        failed on "connecting to localhost:5554: connection failed"). A refused login, TLS
        handshake or permission, and a missing stream, raise at once."""
        return await self._link_started(
            part,
            retried=(ConnectionFailed, StreamUnavailable),
            fatal=(AuthenticationFailed, TlsError),
            deadline=time.monotonic() + _START_RETRY_S,
        )

    async def _link_started(
        self,
        part: _Partition,
        *,
        retried: tuple[type[Exception], ...],
        fatal: tuple[type[Exception], ...],
        deadline: float | None,
    ) -> int:
        """`part.link.start()` (its last stored id), tried again after `retried` errors with
        a back-off from `reconnect_delay_s` doubling up to 0.5 s, until `deadline` (monotonic;
        None: for ever); `fatal` errors, and the last error at the deadline, raise."""
        delay = self.config.reconnect_delay_s
        while True:
            checkpoint()
            try:
                return await part.link.start()
            except fatal:
                raise
            except retried as exc:
                if deadline is not None and time.monotonic() + delay > deadline:
                    raise
                log.log(
                    logging.WARNING if deadline is not None else logging.INFO,
                    "partition %d (%s): %s; trying again",
                    part.index,
                    part.link.stream,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _partition(self, index: int, stream: str) -> _Partition:
        part = _Partition(index)
        part.link = PartitionPublisher(
            self.config.connection,
            stream,
            self.config.name if self.config.stream is not None else f"{self.config.name}-{index}",
            on_confirm=lambda ids: self._confirmed(part, ids),
            on_error=lambda errors: self._refused(part, errors),
            on_lost=lambda why: self._lost(part, why),
        )
        return part

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Wait up to `timeout_s` for confirms, then close. Safe to call twice. Ticks still
        unconfirmed at the deadline fail their futures with `ProducerClosed`."""
        if self.state in (ProducerState.STOPPING, ProducerState.STOPPED):
            return
        if self.state is ProducerState.RUNNING:
            self.state = ProducerState.STOPPING
            self._room.set()  # senders waiting for room: ProducerClosed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._idle.wait()
        tasks = [p.recovering for p in self._partitions if p.recovering is not None]
        if self._watchdog is not None:
            tasks.append(self._watchdog)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        await asyncio.gather(*(p.link.stop() for p in self._partitions))
        if self._lock is not None:
            await self._lock.release()  # after the links: the name frees once nothing sends
        self._fail_pending(ProducerClosed("the producer stopped before these ticks were confirmed"))
        self.state = ProducerState.STOPPED
        self._room.set()

    async def __aenter__(self) -> Producer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def partitions(self) -> int:
        return len(self._partitions)

    def stall_s(self) -> float:
        """How long the longest-waiting partition has now waited for a confirm (0: none)."""
        now = time.monotonic()
        waits = [now - p.last_progress for p in self._partitions if p.inflight]
        return max(waits, default=0.0)

    def partition_for(self, symbol: str) -> int:
        assert self._router is not None
        return self._router.route(symbol)

    # -- sending ---------------------------------------------------------------------------
    async def send(self, symbol: str, body: bytes) -> asyncio.Future[None]:
        """Send one tick (its JSON body); see `send_batch`."""
        return await self.send_batch(((symbol, body),))

    async def send_batch(self, items: Sequence[tuple[str, bytes]]) -> asyncio.Future[None]:
        """Send ticks as (symbol, JSON body); returns a future done when all are confirmed.

        Each partition's ticks are written grouped by symbol (stably; see the module
        docstring): ticks of different symbols in one call may be stored in another order than
        given, a symbol's own ticks never. Waits while the in-flight window is full
        (backpressure: also while the cluster is down). Raises `ProducerClosed` once the
        producer is stopping or has failed, and `TickTooLarge` (sending nothing of the call)
        for a tick whose publish frame would exceed the broker's frame limit.
        """
        window = max(1, self.config.max_in_flight // 2)
        if len(items) > window:
            if _may_be_too_large(items):  # before any slice is sent
                self._refuse_oversized(items)
            futures = [
                await self.send_batch(items[i : i + window]) for i in range(0, len(items), window)
            ]
            return _all_of(futures)
        await self._wait_for_room(len(items))
        loop = asyncio.get_running_loop()
        ticket = _Ticket(loop.create_future(), len(items))
        if not items:
            ticket.future.set_result(None)
            return ticket.future
        symbols = self._symbols
        sub_entries = self.config.sub_entry_size > 1
        # partition -> (partition, record heads, bodies), in write order; nothing is sent (and
        # nothing but the caches changes) before every tick passed the size check
        touched: dict[int, tuple[_Partition, list[bytes], list[bytes]]] = {}
        for symbol, bodies in group_by_symbol(items).items():
            known = symbols.get(symbol)
            if known is None:
                known = self._learn(symbol)
            part, _, prefix, middles = known
            batch = touched.get(part.index)
            if batch is None:
                batch = touched[part.index] = (part, [], [])
            if sub_entries:
                if max(map(len, bodies)) + 8 * len(symbol) > _SURELY_FITS:
                    self._refuse_oversized(items)
                # messages for now; cut into sub-entry records below, per partition
                batch[1].extend(prefix + data_header(len(b)) + b for b in bodies)
                continue
            # a body size new to the symbol makes its middle, or raises TickTooLarge
            batch[1].extend(map(middles.__getitem__, map(len, bodies)))
            batch[2].extend(bodies)
        self.metrics.sent += len(items)
        self.metrics.in_flight += len(items)
        self._idle.clear()
        for part, heads, bodies in touched.values():
            if not part.inflight:  # it was idle: its wait for a confirm starts now
                part.last_progress = time.monotonic()
            if sub_entries:
                segment = self._sub_entries(part, heads, ticket)
            else:
                pid = part.next_id
                part.next_id = pid + len(heads)
                segment = Segment(range(pid, pid + len(heads)), heads, bodies, ticket)
            part.inflight.add(segment)
            if part.ready:
                self._queue(part, segment, 0)
        return ticket.future

    async def send_with_ids(self, items: Sequence[tuple[int, str, bytes]]) -> asyncio.Future[None]:
        """Send ready-made AMQP 1.0 messages as (publishing id, symbol, message), in the order
        given; returns a future done when all are confirmed.

        The symbol routes the message (and is its filter value); the ids are the caller's and
        must increase per partition. An id below the partition's next id was sent before (by
        this producer, or stored by the broker under this producer name before `start()`): it
        is not sent again, and the future also waits for its confirm if it is still in flight.
        So a caller that derives ids from its input (source offsets) may hand the same input
        over again: nothing is stored twice. Raises `TickTooLarge` (sending nothing of the
        call) for a message whose publish frame would exceed the broker's frame limit, like
        `send_batch`.

        With `sub_entry_size` > 1, each partition's messages of the call go in sub-entry batches
        of up to that many, each under the id of its last message. Deduplication still holds
        for a caller that hands input over again (a re-sent batch need not be the same batch):
        the broker keeps a batch whose id is above the last it stored under the name, and every
        message of it is above that id too, since messages at or below the partition's next id
        are dropped here first.
        """
        sub_entries = self.config.sub_entry_size > 1
        limit = _SURELY_FITS
        for _, symbol, message in items:
            if len(message) + 4 * len(symbol) > limit:
                self._refuse_oversized_messages(items)  # raises for any that does not fit
                break
        window = max(1, self.config.max_in_flight // 2)
        if len(items) > window:
            futures = [
                await self.send_with_ids(items[i : i + window])
                for i in range(0, len(items), window)
            ]
            return _all_of(futures)
        await self._wait_for_room(len(items))
        ticket = _Ticket(asyncio.get_running_loop().create_future(), 0)
        symbols = self._symbols
        earlier: list[asyncio.Future[None]] = []
        # partition -> (partition, ids, record heads, messages), in the order given
        touched: dict[int, tuple[_Partition, list[int], list[bytes], list[bytes]]] = {}
        fresh = 0
        for pid, symbol, message in items:  # one pass: route, skip what was sent, encode
            known = symbols.get(symbol)
            if known is None:
                known = self._learn(symbol)
            part = known[0]
            if pid < part.next_id:
                earlier_ticket = part.inflight.ticket_of(pid)
                if earlier_ticket is not None and not earlier_ticket.future.done():
                    earlier.append(earlier_ticket.future)
                continue
            part.next_id = pid + 1
            batch = touched.get(part.index)
            if batch is None:
                batch = touched[part.index] = (part, [], [], [])
                if not part.inflight:
                    part.last_progress = time.monotonic()
            batch[1].append(pid)
            if not sub_entries:
                batch[2].append(record_middle(known[1], b"", len(message)))
            batch[3].append(message)
            fresh += 1
        ticket.remaining = fresh  # no confirm can arrive before this (no await above)
        if not fresh:
            ticket.future.set_result(None)
            return _all_of([*dict.fromkeys(earlier), ticket.future]) if earlier else ticket.future
        self.metrics.sent += fresh
        self.metrics.in_flight += fresh
        self._idle.clear()
        for part, ids, heads, messages in touched.values():
            if sub_entries:
                segment = self._sub_entries(part, messages, ticket, ids)
            else:
                segment = Segment(ids, heads, messages, ticket)
            part.inflight.add(segment)
            if part.ready:
                self._queue(part, segment, 0)
        if earlier:
            return _all_of([*dict.fromkeys(earlier), ticket.future])
        return ticket.future

    def next_id(self, partition: int = 0) -> int:
        """The publishing id `send_batch` gives the partition's next message (after `start()`:
        one above what the broker stored under this producer name)."""
        return self._partitions[partition].next_id

    def _refuse_oversized(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Raise TickTooLarge for the first tick whose frame alone would exceed FRAME_MAX (a
        sub-entry batch's own head counted too): the broker would close the connection, and
        every re-send of it would again."""
        for symbol, body in items:
            if len(body) + 8 * len(symbol) > _SURELY_FITS:
                fv = filter_part(symbol.encode()) if self.config.filter_values else b""
                message = len(message_prefix(symbol)) + len(data_header(len(body))) + len(body)
                size = PUBLISH_FRAME_OVERHEAD + 8 + len(fv) + 4 + message
                if self.config.sub_entry_size > 1:
                    size += _SUB_ENTRY_HEAD - len(fv)
                if size > FRAME_MAX:
                    raise TickTooLarge(symbol, size, FRAME_MAX)

    def _refuse_oversized_messages(self, items: Sequence[tuple[int, str, bytes]]) -> None:
        """`_refuse_oversized` for `send_with_ids`' ready-made messages (the symbol is in the
        record once, as its filter value)."""
        for _, symbol, message in items:
            if len(message) + 4 * len(symbol) > _SURELY_FITS:
                fv = filter_part(symbol.encode()) if self.config.filter_values else b""
                size = PUBLISH_FRAME_OVERHEAD + 8 + len(fv) + 4 + len(message)
                if size > FRAME_MAX:
                    raise TickTooLarge(symbol, size, FRAME_MAX)

    def _sub_entries(
        self,
        part: _Partition,
        messages: list[bytes],
        ticket: _Ticket,
        ids: list[int] | None = None,
    ) -> Segment[_Ticket]:
        """`messages` as sub-entry records (up to `sub_entry_size` of them under one id, and
        fewer where more would not fit a publish frame): the partition's next ids, or with
        `ids` (the messages' own, increasing) the id of each record's last message (the
        partition's next id is already past them)."""
        size = self.config.sub_entry_size
        compression = _COMPRESSION[self.config.compression]
        heads, weights, ends = [], [], []
        start = 0
        while start < len(messages):
            end = start
            room = _SURELY_FITS - _SUB_ENTRY_HEAD
            while end < len(messages) and end - start < size:
                room -= 4 + len(messages[end])
                if room < 0 and end > start:  # one message alone fits (checked by the caller)
                    break
                end += 1
            # the record after its 8-byte id (which the frame encoder writes)
            heads.append(encode_sub_entry_record(0, messages[start:end], compression)[8:])
            weights.append(end - start)
            ends.append(end)
            start = end
        blanks = [b""] * len(heads)
        if ids is not None:
            return Segment([ids[end - 1] for end in ends], heads, blanks, ticket, weights)
        pid = part.next_id
        part.next_id = pid + len(heads)
        return Segment(range(pid, pid + len(heads)), heads, blanks, ticket, weights)

    def _learn(self, symbol: str) -> _Symbol:
        assert self._router is not None
        fv = filter_part(symbol.encode()) if self.config.filter_values else b""
        prefix = message_prefix(symbol)
        known: _Symbol = (
            self._partitions[self._router.route(symbol)],
            fv,
            prefix,
            _Middles(symbol, fv, prefix),
        )
        self._symbols[symbol] = known
        return known

    async def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every tick sent so far is confirmed; `PublishTimeout` if that takes more
        than `timeout_s` (the ticks stay in flight: flush again, or stop)."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            raise PublishTimeout(
                f"{self.metrics.in_flight:,} ticks still unconfirmed after {timeout_s:g} s "
                f"(longest confirm stall now {self.stall_s():.1f} s): the cluster is slow or "
                f"unreachable; they stay in flight and are re-sent until confirmed or stop()"
            ) from None

    async def _wait_for_room(self, count: int) -> None:
        while True:
            if self._failure is not None:
                raise self._failure
            if self.state is not ProducerState.RUNNING:
                raise ProducerClosed(f"the producer is {self.state}; it takes no more ticks")
            if self.metrics.in_flight + count <= self.config.max_in_flight:
                return
            if not self._room.is_set() and self._room_for:
                self._room_for = min(self._room_for, count)
            else:
                self._room.clear()
                self._room_for = count
            await self._room.wait()

    def _name_changed(self, held: bool) -> None:
        if held:
            log.info("producer name %s: its lock is held again", self.config.name)
        else:
            log.warning(
                "producer name %s: the lock's connection dropped; rejoining through another node",
                self.config.name,
            )

    def _queue(self, part: _Partition, segment: Segment[_Ticket], start: int) -> None:
        """Write a segment's records from `start` on: full frames now, the rest (with whatever
        the next calls add) when the event loop next runs, or `linger_ms` later."""
        part.outbox.append((segment, start, len(segment)))
        part.outbox_count += len(segment) - start
        if part.outbox_count >= self._per_frame:
            self._send_out(part, everything=False)
        if part.outbox_count and self._flush_soon is None:
            loop = asyncio.get_running_loop()
            linger = self.config.linger_ms
            self._flush_soon = (
                loop.call_later(linger / 1000, self._flush_outboxes)
                if linger
                else loop.call_soon(self._flush_outboxes)
            )

    def _flush_outboxes(self) -> None:
        self._flush_soon = None
        for part in self._partitions:
            if part.outbox_count:
                self._send_out(part, everything=True)

    def _send_out(self, part: _Partition, *, everything: bool) -> None:
        """Write the outbox in frames of `batch_size` records (fewer for big ticks), the last
        one short only if `everything`."""
        size, box = self._per_frame, part.outbox
        while part.ready and (part.outbox_count >= size or (everything and part.outbox_count)):
            take = min(size, part.outbox_count)
            part.outbox_count -= take
            runs: list[tuple[Sequence[int], list[bytes], list[bytes]]] = []
            while take:
                segment, start, end = box[0]
                n = min(take, end - start)
                stop = start + n
                runs.append(
                    (segment.ids[start:stop], segment.heads[start:stop], segment.bodies[start:stop])
                )
                if stop == end:
                    box.popleft()
                else:
                    box[0] = (segment, stop, end)
                take -= n
            self._write(part, runs)

    def _write(
        self, part: _Partition, runs: list[tuple[Sequence[int], list[bytes], list[bytes]]]
    ) -> None:
        head, joined = encode_split_frame(PartitionPublisher.PUBLISHER_ID, runs, self._version)
        count = sum(len(ids) for ids, _, _ in runs)
        if len(head) + len(joined) > FRAME_MAX and count > 1:
            # big ticks: fewer a frame (a tick too large for a frame alone was refused)
            first, rest = _cut(runs, count // 2)
            self._write(part, first)
            if part.ready:
                self._write(part, rest)
            return
        try:
            part.link.write(head, joined)
        except ConnectionFailed as exc:
            self._lost(part, str(exc))

    # -- confirms and recovery -------------------------------------------------------------
    def _confirmed(self, part: _Partition, ids: Sequence[int]) -> None:
        finished: list[_Ticket] = []
        self._settle(part, part.inflight.confirm(ids, finished), finished)

    def _settle(self, part: _Partition, done: int, finished: list[_Ticket]) -> None:
        if not done:
            return
        now = time.monotonic()
        latency = self.metrics.confirm_latency
        for ticket in finished:
            if not ticket.future.done():
                ticket.future.set_result(None)
            latency.record(now - ticket.started)
        stall = now - part.last_progress
        if stall > self.metrics.max_stall_s:
            self.metrics.max_stall_s = stall
        part.last_progress = now
        self.metrics.confirmed += done
        self.metrics.in_flight -= done
        if self.metrics.in_flight + self._room_for <= self.config.max_in_flight:
            self._room.set()  # wake senders only once the smallest waiting one fits
            self._room_for = 0
        if self.metrics.in_flight == 0:
            self._idle.set()

    def _refused(self, part: _Partition, errors: Sequence[tuple[int, int]]) -> None:
        codes = sorted({code for _, code in errors})
        self._lost(part, f"broker refused {len(errors)} publishes (codes {codes})")

    def _lost(self, part: _Partition, why: str) -> None:
        part.ready = False
        part.outbox.clear()  # in flight: the recovery re-sends it
        part.outbox_count = 0
        if self.state not in (ProducerState.RUNNING, ProducerState.STOPPING):
            return
        if part.recovering is None or part.recovering.done():
            log.warning("partition %d (%s): %s; reconnecting", part.index, part.link.stream, why)
            part.recovering = asyncio.create_task(
                self._recover(part), name=f"producer-recover-{part.index}"
            )

    async def _recover(self, part: _Partition) -> None:
        try:
            last = await self._link_started(
                part,
                retried=(ConnectionFailed, StreamError),
                fatal=(StreamNotFound,),
                deadline=None,
            )
        except StreamNotFound as exc:
            self._fail(exc)
            return
        self.metrics.reconnects += 1
        # Everything up to `last` was stored (its confirm was lost with the connection).
        finished: list[_Ticket] = []
        self._settle(part, part.inflight.confirm_through(last, finished), finished)
        part.outbox.clear()
        part.outbox_count = 0
        part.last_progress = time.monotonic()
        part.ready = True
        for segment, start in part.inflight.unconfirmed():
            self.metrics.resent += len(segment) - start
            part.outbox.append((segment, start, len(segment)))
            part.outbox_count += len(segment) - start
        self._send_out(part, everything=True)
        await part.link.drain()

    async def _watch(self) -> None:
        """Reconnect a partition whose confirms stalled (a hung node keeps its socket open)."""
        timeout = self.config.confirm_timeout_s
        while True:
            checkpoint()
            await asyncio.sleep(min(1.0, timeout / 4))
            now = time.monotonic()
            for part in self._partitions:
                if part.ready and part.inflight and now - part.last_progress > timeout:
                    await part.link.stop(silent=True)
                    self._lost(part, f"no confirm for {timeout:.0f} s")
                elif part.ready and not part.inflight:
                    part.last_progress = now

    def _fail(self, exc: BaseException) -> None:
        self._failure = exc
        self.state = ProducerState.FAILED
        self._fail_pending(exc)
        self._room.set()

    def _fail_pending(self, exc: BaseException) -> None:
        for part in self._partitions:
            for ticket in part.inflight.clear():
                if not ticket.future.done():
                    ticket.future.set_exception(exc)
                    ticket.future.exception()  # mark retrieved: the caller may not await it
            part.outbox.clear()
            part.outbox_count = 0
        self.metrics.in_flight = 0
        self._idle.set()


class _Middles(dict[int, bytes]):
    """A symbol's record middles by body size (see `record_middle`), each made on first use;
    a size whose record would not fit a publish frame on its own is refused (`TickTooLarge`)
    and never cached, so it is refused every time."""

    __slots__ = ("_fv", "_prefix", "_symbol")

    def __init__(self, symbol: str, fv: bytes, prefix: bytes) -> None:
        super().__init__()
        self._symbol = symbol
        self._fv = fv
        self._prefix = prefix

    def __missing__(self, size: int) -> bytes:
        middle = record_middle(self._fv, self._prefix + data_header(size), size)
        frame = PUBLISH_FRAME_OVERHEAD + 8 + len(middle) + size
        if frame > FRAME_MAX:
            raise TickTooLarge(self._symbol, frame, FRAME_MAX)
        self[size] = middle
        return middle


_Symbol = tuple[_Partition, bytes, bytes, _Middles]
_BODY, _SYMBOL = itemgetter(1), itemgetter(0)


_Runs = list[tuple[Sequence[int], list[bytes], list[bytes]]]


def _cut(runs: _Runs, count: int) -> tuple[_Runs, _Runs]:
    """`runs` (ids, heads, bodies) as their first `count` records and the rest."""
    first: _Runs = []
    rest: _Runs = []
    for ids, heads, bodies in runs:
        if count >= len(ids):
            first.append((ids, heads, bodies))
        elif count <= 0:
            rest.append((ids, heads, bodies))
        else:
            first.append((ids[:count], heads[:count], bodies[:count]))
            rest.append((ids[count:], heads[count:], bodies[count:]))
        count -= len(ids)
    return first, rest


def _may_be_too_large(items: Sequence[tuple[str, bytes]]) -> bool:
    """Whether some tick of `items` may not fit a frame (then `_refuse_oversized` decides)."""
    longest = max(map(len, map(_BODY, items)))
    return longest + 8 * max(map(len, map(_SYMBOL, items))) > _SURELY_FITS


def group_by_symbol(items: Iterable[tuple[str, bytes]]) -> dict[str, list[bytes]]:
    """The bodies of `items` by symbol: symbols in order of first appearance, each symbol's
    bodies in their order (a stable grouping: per-symbol order holds)."""
    groups: defaultdict[str, list[bytes]] = defaultdict(list)
    for symbol, body in items:
        groups[symbol].append(body)
    return groups


def _all_of(futures: list[asyncio.Future[None]]) -> asyncio.Future[None]:
    gathered: asyncio.Future[Any] = asyncio.gather(*futures)
    return gathered
