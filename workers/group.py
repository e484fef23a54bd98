"""A worker of a single-active-consumer group on the partitions of a super stream.

Every worker of group ``G`` subscribes to every partition with the SAC properties (group name,
``super-stream``); the broker makes one worker active per partition (partition ``i`` goes to the
``i mod n``-th registered worker) and tells each worker when that changes:

* activated: the worker reads the offset the group stored on the partition and resumes at
  ``max(stored, last processed here) + 1`` (or at `WorkerConfig.start` when nothing is known);
* deactivated (another worker joined, the partition moves): the worker stops handling that
  partition's chunks, lets the chunk in progress finish, stores its last processed offset and
  only then answers the broker, which then activates the successor. The handoff is clean: the
  successor resumes exactly after the last tick handled here.

Offsets: the stored offset of a partition is the offset of the last tick processed (handled or
dead-lettered). The hot path writes it every `store_every_ticks` ticks without waiting for the
broker (a store frame has no answer), if the node answered within the last 250 ms; every
`store_every_ms` ms, once a partition has had nothing new to handle for 20 ms, on deactivation
and on a graceful stop, an owned task reads the stored offset (so the frame goes to a node that
just answered), writes it and reads it back, and only an offset read back counts as stored
(the fence below). A store frame caught in a node that froze is applied when the node resumes,
and sets the group's offset back: every `store_every_ms` the worker reads the offsets of its
active partitions and stores again one that went back; on a graceful stop, the final offsets
are also written behind such frames, on the connection to that node (`Admin.seal`), so that
it applies them last when it resumes. A worker that dies
(SIGKILL, `abort()`) leaves the stored offset up to ``store_every_ticks`` or
``store_every_ms`` behind; its successor handles those ticks again.
Within one process, redelivered offsets at or below the last processed one are dropped
(counted as duplicates); across processes the stored offset is the only fence, so a handler
that must see each tick exactly once across crashes has to be idempotent on
``(partition, offset)``, which is why it is given the offsets.

Handlers may do more than `TickHandler` asks (`workers.handlers`): a `MessageHandler` is given
the chunk's messages undecoded (a forwarder need not pay for decoding), a `Settling` one may
return before its effects are complete (many chunks in flight) and the worker then stores an
offset only once everything up to it settled, and settles a partition before it moves away or
the worker stops; a `PartitionAssigning` one is told when a partition became the worker's, a
`PartitionReleasing` one when a partition moved away.

Outages: every connection starts at any configured node. A partition whose connection drops
(or whose node goes silent) stops being handled here at once (the broker may activate another
worker) and is subscribed again through any node that answers, for as long as the worker runs
or until `give_up_after_s` passes (default: never); the broker then activates this or another
member. Admin calls (offsets) time out after a few seconds and reconnect to another node.
A worker never goes on handling a partition whose offsets it cannot store: when what it handled
has gone unstored for `max_unstored_ms` (counted from the last confirmed store, or from the
first chunk handled after it when the partition was idle in between: a quiet partition's next
chunks do not wait for a store), the next chunk waits (and so does the broker, which gets no
credit) until a store is read back, or the partition moves away. So a successor redoes at most
that much of a partition after an outage, not everything since the outage began. A partition
just activated handles its first chunk, then waits for a store of it to be read back before the
next: that the group's offset could be read proves nothing about stores, which need the stream's
leader to write them (after a whole-cluster restart, a worker read its offset, then handled 1 s
of backlog, 9,643 ticks, whose stores all timed out, and its successor handled them again).

Failures: a message that does not decode, or whose handler call still raises after
`handler_retries` retries (exponential back-off from `retry_backoff_ms`), is written to the
dead-letter stream as a JSON record (see `dead_letter_record`), and the tick counts as processed
only once the broker confirmed that record. A failed batch is retried as a whole, then tick by
tick, so one bad tick does not dead-letter its neighbours (and handlers see retried ticks again:
another reason to be idempotent on ``(partition, offset)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from enum import StrEnum
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from partitioning.codec import Tick, decode_numbered
from superticks.errors import ConnectionFailed, StreamError, StreamNotFound
from superticks.settings import ConnectionSettings
from superticks.streams import (
    Admin,
    Chunk,
    ChunkProbe,
    Offset,
    Subscription,
)
from superticks.tasks import checkpoint
from workers.deadletter import (
    DeadLetterWriter,
    dead_letter_message,
    dead_letter_record,
    describe,
)
from workers.handlers import (
    MessageHandler,
    PartitionAssigning,
    PartitionReleasing,
    Settling,
    TickHandler,
)
from workers.metrics import PartitionMetrics, WorkerMetrics
from workers.offsets import fence, processed_after, store_due

__all__ = [
    "GroupWorker",
    "WorkerConfig",
    "WorkerState",
    "run_worker",
]

log = logging.getLogger("superticks.worker")

_NAME = r"^[A-Za-z0-9._-]+$"
_DLQ_ARGUMENTS: dict[str, Any] = {"max-length-bytes": 1_000_000_000, "max-age": "7D"}
_CONFIRM_STORE_S = 1.0
_IDLE_STORE_MS = 20  # a partition with nothing new to handle for this long is stored at once
_ADMIN_TIMEOUT_S = 2.0  # an admin call to a hung node fails after this, then tries another node
_FRESH_S = 0.25  # the hot path writes a store frame only to a node heard from this recently


class _Abandoned(Exception):
    """The partition moved away (or the worker stops) while we waited for the cluster."""


def _default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerConfig(BaseModel):
    """What a group worker consumes, how it stores offsets, and how it treats failures."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connection: ConnectionSettings = Field(default_factory=ConnectionSettings)
    super_stream: str = Field(default="ticks", min_length=1, pattern=_NAME)
    group: str = Field(min_length=1, max_length=200, pattern=_NAME)
    name: str = Field(default_factory=_default_name, min_length=1, max_length=200, pattern=_NAME)
    start: Literal["first", "last", "next"] = "first"
    """Where a partition starts when the group stored no offset on it."""
    store_every_ticks: int = Field(default=10_000, ge=1)
    """Store the offset every this many ticks (besides every `store_every_ms`):
    a crash redoes at most this many, or `store_every_ms` worth. 10,000 (67 ms of ticks at 150k
    ticks/s): each store costs the cluster about 1 ms of CPU (the broker appends and replicates
    a tracking entry), so 1,000 cost a busy worker's cluster about 1 us of CPU per tick, taken
    from the worker on a shared machine (measured: 7.4 against 5.1-6.1 us per tick)."""
    store_every_ms: int = Field(default=200, ge=1)
    handler_retries: int = Field(default=3, ge=0)
    retry_backoff_ms: int = Field(default=10, ge=0)
    drain_timeout_s: float = Field(default=10.0, gt=0)
    """How long a stopping worker waits for the chunks being handled, and then as long again
    for its final offset stores (tried again, through another node while its admin's node is
    frozen)."""
    dead_letter_stream: str | None = Field(default=None, min_length=1, pattern=_NAME)
    """None: ``<super_stream>-dlq``."""
    credits: int = Field(default=64, ge=1, le=1000)
    """Chunks the broker may send ahead of the one being handled (per partition). 64: with
    16, a busy worker waited for the broker's next chunk a third of the time (measured: 107k
    against 140k decoded ticks/s on the same stream); memory, up to 64 chunks per partition."""
    lag_interval_s: float = Field(default=5.0, ge=0)
    """How often the lag metrics read each active partition's last offset (0: never)."""
    max_unstored_ms: int = Field(default=1000, ge=1)
    """A partition that has handled ticks whose offsets went unstored for longer than this
    (since its last confirmed store, or since the first chunk it handled after that store if
    it was idle in between) handles nothing more until a store succeeds (bounds what a
    successor redoes after an outage). A partition just activated waits after its first chunk
    until a store is read back, whatever this says."""
    give_up_after_s: float | None = Field(default=None, gt=0)
    """Fail after this long without being able to reach the cluster (None: never give up)."""

    @property
    def dead_letters(self) -> str:
        """The dead-letter stream's name."""
        return self.dead_letter_stream or f"{self.super_stream}-dlq"

    def start_offset(self) -> Offset:
        return {"first": Offset.first, "last": Offset.last, "next": Offset.next}[self.start]()


class WorkerState(StrEnum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


# --- the worker -------------------------------------------------------------------------------
class _Partition:
    __slots__ = (
        "active",
        "consumed",
        "dead_letters",
        "duplicates",
        "expected",
        "handled_at_ms",
        "idle_stored_for",
        "index",
        "last_tick_us",
        "lock",
        "lost",
        "metrics",
        "processed",
        "proving",
        "stored",
        "stored_at_ms",
        "stream",
        "subscription",
        "unstored_since_ms",
        "written",
    )

    def __init__(self, index: int, stream: str, metrics: PartitionMetrics) -> None:
        self.index = index
        self.stream = stream
        self.metrics = metrics
        self.active = False
        self.processed = -1  # offset of the last processed message (-1: none)
        self.stored = -1  # offset last stored and read back for the group (-1: none)
        self.written = -1  # offset last written in a store frame, maybe not yet read back
        self.stored_at_ms = 0.0  # when the last store was read back (monotonic ms)
        self.proving = False  # activated, and no store read back since: writes unproven
        self.unstored_since_ms = 0.0  # when it last handled a chunk with everything stored
        self.lost = False  # lost with its connection since the handler was last told
        self.expected: int | None = None  # activated from this offset; its first chunk not seen
        self.handled_at_ms = 0.0  # when the last chunk was processed (monotonic ms)
        self.idle_stored_for = 0.0  # the handled_at_ms whose quiet spell was stored
        self.consumed = 0
        self.duplicates = 0
        self.dead_letters = 0
        self.last_tick_us = 0
        self.lock = asyncio.Lock()  # held while a chunk is processed or the partition moves
        self.subscription: Subscription | None = None

    def status(self) -> dict[str, Any]:
        return {
            "partition": self.index,
            "stream": self.stream,
            "active": self.active,
            "consumed": self.consumed,
            "duplicates": self.duplicates,
            "dead_letters": self.dead_letters,
            "processed_offset": self.processed,
            "stored_offset": self.stored,
        }


def _went_back(part: _Partition, stored: int | None) -> bool:
    """Whether the group's stored offset on the partition (`stored`, None: none) is behind
    the one this worker confirmed for it."""
    return part.stored >= 0 and (stored is None or stored < part.stored)


def _now_ms() -> float:
    return time.monotonic() * 1000.0


class GroupWorker:
    """One member of consumer group `config.group` on super stream `config.super_stream`.

    ``async with GroupWorker(config, handler) as worker: ...`` or `start()` / `stop()`.
    See the module docstring for offsets, fencing and dead letters.
    """

    def __init__(
        self,
        config: WorkerConfig,
        handler: TickHandler,
        *,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.config = config
        self.handler = handler
        self.state = WorkerState.NEW
        self.metrics = metrics or WorkerMetrics(config.group, config.name)
        self.failure: BaseException | None = None
        self._admin = Admin(config.connection)
        self._probe = ChunkProbe(self._admin)  # reads one chunk's header (`_skipped`)
        self._admin_lock = asyncio.Lock()
        self._admin_generation = 0
        self._admin_closed = False  # set (under the lock) once closing: no more reconnects
        self._dlq: DeadLetterWriter | None = None
        self._partitions: list[_Partition] = []
        self._intake = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._done = asyncio.Event()
        self._handler_seconds = self.metrics.handler_seconds
        self._messages = handler if isinstance(handler, MessageHandler) else None
        self._settling = handler if isinstance(handler, Settling) else None
        self._trouble_since: float | None = None  # monotonic time the cluster stopped answering
        self._trouble_said = 0.0
        self._store_wanted = asyncio.Event()  # the hot path could not write a due store

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, create the DLQ stream if missing, and join the group on every partition.

        Raises StreamNotFound if the super stream does not exist. A partition whose stream
        has no leader yet (one is being elected after a node fault) is waited for, up to
        `give_up_after_s` (default: for as long as it takes), as a running worker waits. On
        any failure everything opened so far is closed and the worker is FAILED. Cancelling
        start() closes too.
        """
        if self.state is not WorkerState.NEW:
            raise RuntimeError(f"a worker starts once (it is {self.state})")
        cfg = self.config
        self.state = WorkerState.RUNNING
        try:
            await self._admin.start()
            streams = await self._partition_streams()
            await self._admin.create_stream(cfg.dead_letters, _DLQ_ARGUMENTS)
            self._dlq = DeadLetterWriter(
                cfg.connection, cfg.dead_letters, f"superticks-dlq-{cfg.group}-{cfg.name}"
            )
            # the dead-letter publisher connects on its first dead letter
            self._partitions = [
                _Partition(i, s, self.metrics.partition(i)) for i, s in enumerate(streams)
            ]
            for part in self._partitions:
                part.metrics.active.set(0)
                part.subscription = Subscription(
                    cfg.connection,
                    part.stream,
                    partial(self._on_chunk, part),
                    cfg.start_offset(),
                    name=f"{cfg.group}-{cfg.name}-{part.index}",
                    group=cfg.group,
                    super_stream=cfg.super_stream,
                    on_activation=partial(self._on_activation, part),
                    on_failure=self._on_failure,
                    on_lost=partial(self._on_lost, part),
                    initial_credit=cfg.credits,
                    give_up_after_s=cfg.give_up_after_s,
                )
            self._intake = True
            # In partition order: the broker spreads partitions by registration order.
            # A partition without a leader yet (a node fault meanwhile) is waited for as a
            # running worker waits for one (`give_up_after_s`), not given up on at once.
            leaderless_s = cfg.give_up_after_s or math.inf
            for part in self._partitions:
                assert part.subscription is not None
                await part.subscription.start(leaderless_s=leaderless_s)
            self._spawn(self._store_periodically(), "store-offsets")
            if cfg.lag_interval_s > 0:
                self._spawn(self._poll_lag(), "poll-lag")
        except BaseException as exc:
            self.failure = exc
            await self._close(store=False)
            self.state = WorkerState.FAILED
            self._done.set()
            raise
        log.info("worker %s joined group %s on %d partitions", cfg.name, cfg.group, len(streams))

    async def _partition_streams(self) -> list[str]:
        name = self.config.super_stream
        streams = await self._admin.partitions(name)
        if not streams:
            raise StreamNotFound(
                f"super stream {name!r} does not exist: `superticks topology create`"
            )
        return streams

    async def stop(self) -> None:
        """Leave the group gracefully; safe to call twice (or while another stop runs).

        Stops intake (chunks that arrive are ignored, a successor reads them), waits up to
        `drain_timeout_s` for the chunks being handled, stores the last processed offsets
        (trying again for up to `drain_timeout_s` while the cluster does not answer), then
        closes the subscriptions (the broker activates the group's other workers) and the
        connections. Cancelling stop() skips what is left of the drain and of the stores, but
        still closes everything; the worker ends STOPPED.
        """
        if self.state in (WorkerState.STOPPED, WorkerState.FAILED):
            return
        if self.state is WorkerState.STOPPING:
            await self._done.wait()
            return
        if self.state is WorkerState.NEW:
            self.state = WorkerState.STOPPED
            self._done.set()
            return
        self.state = WorkerState.STOPPING
        self._intake = False
        stored = False
        try:
            try:
                async with asyncio.timeout(self.config.drain_timeout_s):
                    await self._drain()
            except TimeoutError:
                log.warning(
                    "worker %s: chunks still in progress after %.1f s; their ticks will be "
                    "handled again by a successor",
                    self.config.name,
                    self.config.drain_timeout_s,
                )
            await self._cancel_tasks()
            for part in self._partitions:
                if part.active:
                    await self._settle(part)
            await self._store_all(confirm=True, patience_s=self.config.drain_timeout_s)
            stored = True
            # a partition the broker moved away meanwhile was left to its deactivation, which
            # stores its offset under the partition's lock: it finishes before the admin closes
            await self._drain()
            await self._seal()
        finally:
            await self._close(store=False)
            self.state = WorkerState.STOPPED
            self._done.set()
            log.info(
                "worker %s left group %s (offsets stored: %s)",
                self.config.name,
                self.config.group,
                stored,
            )

    async def abort(self) -> None:
        """For tests: die like a killed process. Closes every connection without draining and
        without storing offsets (the group resumes from the last periodic store)."""
        if self.state in (WorkerState.STOPPED, WorkerState.FAILED):
            return
        self._intake = False
        self.state = WorkerState.STOPPING
        await self._close(store=False)
        self.state = WorkerState.STOPPED
        self._done.set()

    async def wait(self) -> None:
        """Until the worker is stopped or failed (see `failure`)."""
        await self._done.wait()

    async def __aenter__(self) -> GroupWorker:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    # -- introspection ---------------------------------------------------------------------
    @property
    def active_partitions(self) -> list[int]:
        return [p.index for p in self._partitions if p.active]

    @property
    def consumed(self) -> int:
        return sum(p.consumed for p in self._partitions)

    @property
    def duplicates(self) -> int:
        return sum(p.duplicates for p in self._partitions)

    @property
    def dead_letters(self) -> int:
        return sum(p.dead_letters for p in self._partitions)

    def all_stored(self) -> bool:
        """True when every active partition's last processed offset is stored."""
        return all(p.stored >= p.processed for p in self._partitions if p.active)

    def status(self) -> dict[str, Any]:
        """A JSON-able summary: state, totals and per-partition state."""
        return {
            "worker": self.config.name,
            "group": self.config.group,
            "super_stream": self.config.super_stream,
            "state": str(self.state),
            "consumed": self.consumed,
            "duplicates": self.duplicates,
            "dead_letters": self.dead_letters,
            "failure": None if self.failure is None else describe(self.failure),
            "partitions": [p.status() for p in self._partitions],
        }

    # -- broker callbacks ------------------------------------------------------------------
    async def _on_activation(self, part: _Partition, active: bool) -> Offset:
        """The broker's consumer update. Deactivated: store what was processed (if the cluster
        lets us; else the successor redoes what is unstored), then answer. Activated: resume
        after the group's stored offset; a StreamError here (the offset cannot be read) makes
        the subscription subscribe again, so the broker activates a member anew."""
        if not active:
            part.active = False  # chunks that arrive from now on are ignored
            part.metrics.active.set(0)
            async with part.lock:  # the chunk in progress finishes first
                await self._settle(part)
                try:
                    await self._store(part, confirm=True, force=True)
                except StreamError as exc:
                    log.warning(
                        "partition %d moves away with its offset unstored (%s): the successor "
                        "redoes from offset %d",
                        part.index,
                        exc,
                        part.stored + 1,
                    )
                settled = self._storable(part)
                part.lost = False  # the handler is told now: not again at the next activation
                await self._release(part.index)
                # what did not settle here is redone, by the successor or by us when it returns
                part.processed = min(part.processed, settled)
            log.info("worker %s: partition %d moves away", self.config.name, part.index)
            # The broker applies this answer too if it arrives once the subscription is active
            # again (it re-reads from whatever an answer processed while active says, stale or
            # not, rabbit_stream_reader 4.x): where this worker would resume, never the live
            # tail (NEXT skipped what was stored meanwhile), so such a late answer can only
            # bring chunks again, which the fence drops.
            known = max(part.processed, part.stored)
            return Offset.at(known + 1) if known >= 0 else self.config.start_offset()
        if not self._intake:  # stopping: a successor will be activated once we are gone
            return Offset.next()
        async with part.lock:
            stored = await self._admin_call(
                lambda: self._admin.stored_offset(part.stream, self.config.group)
            )
            part.stored_at_ms = _now_ms()
            if stored is not None:
                part.stored = stored
                part.metrics.committed.set(stored)
            part.written = part.stored
            part.proving = True  # reading the offset worked; a store has yet to
            known = max(part.processed, part.stored)
            part.processed = known
            offset = Offset.at(known + 1) if known >= 0 else self.config.start_offset()
            part.expected = known + 1 if known >= 0 else None
            part.active = self._intake
            part.metrics.active.set(1 if part.active else 0)
        log.info("worker %s: partition %d active from %s", self.config.name, part.index, offset)
        if part.active:
            if part.lost:  # another worker may have handled some of it meanwhile
                part.lost = False
                await self._release(part.index)
            await self._assign(part.index)
        return offset

    async def _assign(self, partition: int) -> None:
        """Tell a `PartitionAssigning` handler that the partition is this worker's now."""
        if isinstance(self.handler, PartitionAssigning):
            await self._tell(self.handler.partition_assigned, partition, "assignment")

    async def _release(self, partition: int) -> None:
        """Tell a `PartitionReleasing` handler that the partition moves away."""
        if isinstance(self.handler, PartitionReleasing):
            await self._tell(self.handler.partition_released, partition, "release")

    @staticmethod
    async def _tell(call: Callable[[int], Awaitable[None]], partition: int, what: str) -> None:
        try:
            await call(partition)
        except Exception as exc:  # noqa: BLE001 - the handover goes on whatever the handler says
            log.warning("partition %d: the handler's %s failed: %r", partition, what, exc)

    def _on_lost(self, part: _Partition) -> None:
        """The partition's connection dropped: the broker may have activated another worker
        already, so stop handling and never store an offset for it until re-activated."""
        if part.active:
            log.warning(
                "worker %s: partition %d lost with its connection", self.config.name, part.index
            )
            part.lost = True  # a `PartitionReleasing` handler is told before it is active again
        part.active = False
        part.metrics.active.set(0)

    def _on_failure(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        if self.state is WorkerState.RUNNING:
            self._spawn(self._fail(), "fail")

    async def _fail(self) -> None:
        """Leave the group after a failure, storing what was processed (which excludes the
        chunk that failed), so that the group's other workers take over."""
        self.state = WorkerState.STOPPING
        self._intake = False
        current = asyncio.current_task()
        others = [t for t in self._tasks if t is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        try:
            await self._store_all(confirm=False)
        finally:
            await self._close(store=False, cancel=False)
            self.state = WorkerState.FAILED
            self._done.set()

    # -- the hot path ----------------------------------------------------------------------
    async def _on_chunk(self, part: _Partition, chunk: Chunk) -> None:
        if not (part.active and self._intake):
            return
        async with part.lock:
            if part.active and self._intake:
                await self._process(part, chunk)

    async def _process(self, part: _Partition, chunk: Chunk) -> None:
        if part.expected is not None:
            expected, part.expected = part.expected, None
            if chunk.first_offset > expected and await self._skipped(part, expected, chunk):
                return
        if part.processed <= part.stored:  # everything handled is stored: from here it is not
            part.unstored_since_ms = _now_ms()
        elif part.proving or _now_ms() - max(part.stored_at_ms, part.unstored_since_ms) > (
            self.config.max_unstored_ms
        ):
            try:
                await self._store_or_wait(part)
            except _Abandoned:
                return
        messages = chunk.messages
        count = len(messages)
        first = chunk.first_offset
        skip = fence(first, count, part.processed)
        if skip:
            part.duplicates += skip
            part.metrics.duplicates.inc(skip)
            if skip == count:
                return
            messages = messages[skip:]
            first += skip
        offsets: Sequence[int]
        ticks: list[Tick]
        bad: list[tuple[int, bytes, str]]
        if self._messages is not None:
            if self._lost_meanwhile(part):
                return
            ticks, bad = [], []
            for offset, error in await self._handle_messages(part.index, first, messages):
                bad.append((offset, messages[offset - first], error))
        else:
            ticks, offsets, bad = self._decode_each(messages, first)
            if self._lost_meanwhile(part):
                return
        if ticks:
            for offset, error in await self._handle(part.index, offsets, ticks):
                bad.append((offset, messages[offset - first], error))
        if bad:
            bad.sort()
            try:
                for offset, original, error in bad:
                    await self._dead_letter(part, offset, original, error)
            except _Abandoned:
                log.warning(
                    "partition %d moved away before its dead letters were written: the "
                    "successor handles its chunk from offset %d again",
                    part.index,
                    part.processed + 1,
                )
                return
        handled = len(messages) - len(bad)
        part.processed = processed_after(part.processed, first, len(messages))
        part.handled_at_ms = _now_ms()
        part.consumed += handled
        part.metrics.consumed.inc(handled)
        if ticks or self._messages is not None:
            # undecoded messages: the chunk's stored time stands for its last tick's
            part.last_tick_us = ticks[-1].timestamp_us if ticks else chunk.timestamp_ms * 1000
            part.metrics.lag_seconds.set(max(0.0, time.time() - part.last_tick_us / 1e6))
        if self._storable(part) - part.written >= self.config.store_every_ticks:
            try:
                await self._write_store(part)
            except StreamError as exc:
                self._trouble(f"storing the offset of partition {part.index} failed: {exc}")

    async def _skipped(self, part: _Partition, expected: int, chunk: Chunk) -> bool:
        """Whether the broker, asked to deliver from `expected` at the partition's activation,
        began after ticks stored from there: then the partition is subscribed again (the
        group's offset, where the broker then starts, is still before them) and the chunk is
        not handled. A gap of offset-tracking entries alone is no skip (the broker never
        delivers those): the first chunk of ticks at or after `expected` is asked of the
        broker (`ChunkProbe`), and compared.

        Seen once (`bench failover --scenario node-blip`, 2026-12-02): a worker deactivated
        and activated again within 40 ms, on one subscription, answered "from 15,099" and was
        delivered the live chunk at 16,901; the 1,802 ticks between were never handled."""
        try:
            first = await self._admin_call(lambda: self._probe.at(part.stream, expected))
        except StreamError as exc:
            first, why = None, f"the ticks from there could not be read ({exc})"
        else:
            why = "nothing was read from there within 2 s"
        if first is not None:
            if first.first_offset >= chunk.first_offset:
                return False  # only offset-tracking entries between
            why = f"ticks from {first.first_offset} are stored there"
        log.warning(
            "partition %d: activated from offset %d, the broker delivered from %d and %s: "
            "subscribing again",
            part.index,
            expected,
            chunk.first_offset,
            why,
        )
        if part.subscription is not None:
            part.subscription.resubscribe(f"it skipped offsets {expected}-{chunk.first_offset - 1}")
        else:  # nothing to subscribe again: the next chunk is checked the same way
            part.expected = expected
        return True

    @staticmethod
    def _lost_meanwhile(part: _Partition) -> bool:
        """Whether the partition was lost while this process held the chunk about to be
        handled: its connection dropped, or the process was frozen (`Subscription.stalled`:
        asked here, or noticed first by the subscription's watchdog, which marks the partition
        lost). Its successor then handles the chunk; handling it here too would be once more
        after the successor did."""
        frozen = part.subscription is not None and part.subscription.stalled()
        return frozen or not part.active

    @staticmethod
    def _decode_each(
        messages: Sequence[bytes], first: int
    ) -> tuple[list[Tick], Sequence[int], list[tuple[int, bytes, str]]]:
        offsets, ticks, errors = decode_numbered(first, messages)
        bad = [(offset, messages[offset - first], describe(exc)) for offset, exc in errors]
        return ticks, offsets, bad

    async def _handle(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> list[tuple[int, str]]:
        """Hand the ticks over with retries; returns (offset, error) of the ticks that still
        failed (after the batch failed, each tick is tried alone)."""
        handle = self.handler.handle_batch
        error = await self._call(partial(handle, partition, offsets, ticks), partition)
        if error is None:
            return []
        if len(ticks) == 1:
            return [(offsets[0], error)]
        failed = []
        for offset, tick in zip(offsets, ticks, strict=True):
            error = await self._call(partial(handle, partition, (offset,), (tick,)), partition)
            if error is not None:
                failed.append((offset, error))
        return failed

    async def _handle_messages(
        self, partition: int, first: int, messages: Sequence[bytes]
    ) -> list[tuple[int, str]]:
        """Hand undecoded messages to a `MessageHandler` with retries; returns (offset,
        error) of those it refused or that still failed (after the chunk failed, each message
        is tried alone)."""
        assert self._messages is not None
        handle = self._messages.handle_messages
        refused: list[tuple[int, str]] = []
        error = await self._call(partial(handle, partition, first, messages), partition, refused)
        if error is None:
            return refused
        if len(messages) == 1:
            return [(first, error)]
        failed: list[tuple[int, str]] = []
        for i, message in enumerate(messages):
            call = partial(handle, partition, first + i, (message,))
            error = await self._call(call, partition, failed)
            if error is not None:
                failed.append((first + i, error))
        return failed

    async def _call(
        self,
        call: Callable[[], Awaitable[Sequence[tuple[int, str]] | None]],
        partition: int,
        refused: list[tuple[int, str]] | None = None,
    ) -> str | None:
        """One handler call with `handler_retries` retries; None or the last error. What the
        call returns (a `MessageHandler`'s refusals) is added to `refused`."""
        cfg = self.config
        error = ""
        for attempt in range(cfg.handler_retries + 1):
            if attempt:
                await asyncio.sleep(cfg.retry_backoff_ms * 2 ** (attempt - 1) / 1000)
            started = time.perf_counter()
            try:
                result = await call()
            except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then dead-lettered
                error = describe(exc)
                log.debug(
                    "handler failed on partition %d (attempt %d): %s", partition, attempt, error
                )
            else:
                self._handler_seconds.observe(time.perf_counter() - started)
                if result and refused is not None:
                    refused.extend(result)
                return None
        return error

    async def _dead_letter(
        self, part: _Partition, offset: int, original: bytes, error: str
    ) -> None:
        assert self._dlq is not None
        record = dead_letter_record(
            original=original,
            error=error,
            partition=part.index,
            stream=part.stream,
            offset=offset,
            group=self.config.group,
            worker=self.config.name,
        )
        message = dead_letter_message(record)
        attempt = 0
        while True:
            checkpoint()
            try:
                await self._dlq.send(message)
            except StreamError as exc:
                attempt += 1
                self._trouble(f"dead letter of partition {part.index} not written: {exc}")
                if not (part.active and self._intake):
                    raise _Abandoned from None
                await asyncio.sleep(min(0.1 * attempt, 1.0))
            else:
                break
        self._untroubled()
        part.dead_letters += 1
        self.metrics.dead_letters.inc()
        log.warning(
            "partition %d offset %d dead-lettered to %s: %s",
            part.index,
            offset,
            self.config.dead_letters,
            error,
        )

    # -- offsets ---------------------------------------------------------------------------
    async def _admin_call(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """Run an admin call with a timeout; if it fails for want of a connection, reconnect
        (to another node first) and try once more. While running or stopping (a stopping
        worker's final stores go through another node when its admin's node froze), not once
        closing: a closed worker must not open connections that nobody closes."""
        generation = self._admin_generation
        if self._admin_closed:  # closing: the call would wait out its timeout for nothing
            raise ConnectionFailed("admin call after the worker closed its admin connection")
        try:
            async with asyncio.timeout(_ADMIN_TIMEOUT_S):
                return await call()
        except (ConnectionFailed, TimeoutError) as exc:
            why = str(exc) or f"no answer within {_ADMIN_TIMEOUT_S:g} s"
            if self.state not in (WorkerState.RUNNING, WorkerState.STOPPING):
                raise ConnectionFailed(f"admin call failed while stopping: {why}") from None
            try:
                async with self._admin_lock:
                    if self._admin_closed:
                        raise ConnectionFailed(f"admin call failed while closing: {why}")
                    if generation == self._admin_generation:  # nobody reconnected meanwhile
                        self._admin_generation += 1
                        await self._admin.reconnect(silent=isinstance(exc, TimeoutError))
                async with asyncio.timeout(_ADMIN_TIMEOUT_S):
                    return await call()
            except TimeoutError:
                raise ConnectionFailed(
                    f"the cluster did not answer an admin call within {_ADMIN_TIMEOUT_S:g} s"
                ) from None

    def _trouble(self, what: str) -> None:
        """The cluster failed us; the worker gives up after `give_up_after_s` of this."""
        now = time.monotonic()
        if self._trouble_since is None:
            self._trouble_since = self._trouble_said = now
            log.warning("worker %s: %s", self.config.name, what)
        elif now - self._trouble_said > 10:
            self._trouble_said = now
            log.warning(
                "worker %s: %s (for %.0f s now)", self.config.name, what, now - self._trouble_since
            )
        limit = self.config.give_up_after_s
        if limit is not None and now - self._trouble_since > limit:
            self._on_failure(
                ConnectionFailed(
                    f"gave up after {now - self._trouble_since:.0f} s without the cluster "
                    f"(--give-up-after {limit:g}): {what}"
                )
            )

    def _untroubled(self) -> None:
        if self._trouble_since is not None:
            log.info("worker %s: the cluster answers again", self.config.name)
            self._trouble_since = None

    async def _write_store(self, part: _Partition) -> None:
        """The hot path's store: write the active partition's last processed offset in a store
        frame, without reading it back (no round trip; `part.stored` does not move). It keeps
        the group's offset within `store_every_ticks` of what was handled; the store task
        confirms. Only to a node that answered within `_FRESH_S` (the store task's reads keep
        a busy worker's connection fresh): a store frame has no answer, and one written to a
        node that froze is applied when it resumes (see `_store`); otherwise the store task
        is woken to store it (asking first)."""
        offset = self._storable(part)
        if offset <= part.written or not part.active:
            return
        if not self._admin.heard_within(_FRESH_S):
            self._store_wanted.set()
            return
        stream, group = part.stream, self.config.group
        await self._admin_call(lambda: self._admin.store_offset(stream, group, offset))
        part.written = max(part.written, offset)

    async def _store(
        self, part: _Partition, *, confirm: bool = False, force: bool = False, again: bool = False
    ) -> None:
        """Store the partition's last processed offset if it is newer than the stored one, and
        read it back: `part.stored` only ever holds an offset the broker confirmed (a store
        frame written to a hung node is lost without an error). With `confirm`, keep reading
        for up to 1 s. Only for an active partition (or with `force`, when it moves away): a
        worker that lost a partition must never overwrite its successor's offset. With
        `again`, the confirmed offset is stored anew even when nothing new was processed (it
        went back, see `_verify`).

        The stored offset is read just before the store frame is written, so the frame goes
        to a node that answered a moment ago (the hot path's `_write_store` writes only to a
        node heard from within `_FRESH_S`). A store frame has no answer: one written to a
        node that froze (paused, stalled) sits in that node's socket buffer while this worker
        moves on to another node, and the broker applies it when the node resumes, seconds
        or minutes later, setting the group's offset back to what it was then (measured here:
        a node paused for 8 s set a partition's offset back by 5,767 ticks; in another run a
        successor handled 4,322 ticks again). Asking first leaves a frame only the moment
        between the answer and the write to be caught in; `_verify` repairs what still is."""
        offset = max(self._storable(part), part.stored) if again else self._storable(part)
        if (offset <= part.stored and not again) or not (part.active or force):
            return
        stream, group = part.stream, self.config.group
        before = await self._admin_call(lambda: self._admin.stored_offset(stream, group))
        if _went_back(part, before):
            log.warning(
                "partition %d: the group's stored offset went back from %d to %s (a store "
                "frame held by a node that froze, applied as it resumed); storing %d again",
                part.index,
                part.stored,
                "none" if before is None else before,
                offset,
            )
        await self._admin_call(lambda: self._admin.store_offset(stream, group, offset))
        part.written = max(part.written, offset)
        deadline = time.monotonic() + (_CONFIRM_STORE_S if confirm else 0.0)
        while True:  # bounded by `deadline`; no checkpoint(): stop() stores through here
            stored = await self._admin_call(lambda: self._admin.stored_offset(stream, group))
            if stored is not None and stored >= offset:
                part.stored = offset
                part.stored_at_ms = _now_ms()
                part.proving = False
                part.metrics.committed.set(offset)
                self._untroubled()
                return
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.005)
        if confirm:
            log.warning("partition %d: stored offset %d not read back in time", part.index, offset)

    async def _verify(self, part: _Partition) -> None:
        """Read the active partition's stored offset back; if it went back below the one
        confirmed here (a store frame held by a node that froze, applied as it resumed: see
        `_store`), store the confirmed one again. Run every `store_every_ms` for a partition
        with nothing new to store (one with something new is checked by `_store`), so an
        offset set back is repaired within that time, before a successor can read it unless
        the partition moves in that moment."""
        if not part.active or part.stored < 0:
            return
        stream, group = part.stream, self.config.group
        stored = await self._admin_call(lambda: self._admin.stored_offset(stream, group))
        if _went_back(part, stored):
            await self._store(part, again=True)  # which says so

    def _storable(self, part: _Partition) -> int:
        """The offset that may be stored: the last processed one, or with a `Settling`
        handler, the last before the first whose effects are not complete yet."""
        if self._settling is None:
            return part.processed
        unsettled = self._settling.unsettled(part.index)
        return part.processed if unsettled is None else min(part.processed, unsettled - 1)

    async def _settle(self, part: _Partition) -> None:
        """Wait (up to `drain_timeout_s`) until a `Settling` handler's effects for the
        partition are complete, so that storing then stores everything processed."""
        if self._settling is None:
            return
        try:
            async with asyncio.timeout(self.config.drain_timeout_s):
                await self._settling.settle(part.index)
        except TimeoutError:
            log.warning(
                "partition %d: the handler's effects are still incomplete after %.1f s; the "
                "successor redoes them",
                part.index,
                self.config.drain_timeout_s,
            )
        except Exception as exc:  # noqa: BLE001 - what is unsettled stays unstored
            log.warning("partition %d: the handler could not settle: %r", part.index, exc)

    async def _store_or_wait(self, part: _Partition) -> None:
        """Store the partition's offset before handling more of it, retrying with back-off
        while the cluster does not answer. Raises _Abandoned if the partition moves away (or
        the worker stops) meanwhile: the caller then handles nothing. With a `Settling`
        handler, a store of what settled meanwhile is enough (what is in flight is bounded by
        the handler); while nothing settles, the partition waits."""
        attempt = 0
        waited_since = _now_ms()
        while True:
            checkpoint()
            if not (part.active and self._intake):
                raise _Abandoned
            try:
                await self._store(part)
            except StreamError as exc:
                attempt += 1
                self._trouble(f"partition {part.index} waits: its offset cannot be stored ({exc})")
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
                continue
            if part.stored_at_ms >= waited_since:
                return
            await asyncio.sleep(0.01)  # stored but not yet readable, or effects unsettled

    async def _store_all(self, *, confirm: bool, patience_s: float = 0.0) -> None:
        """Store every active partition's offset. With `patience_s`, a store that fails is
        tried again, with back-off, for up to that long in all (the admin reconnects to
        another node). What is still not stored then is left to the successor, and said; a
        partition lost meanwhile is not stored (its successor may be active already)."""
        unstored = {part.index: "" for part in self._partitions if part.active}

        async def store_all() -> None:
            attempt = 0
            while True:
                for part in self._partitions:
                    if part.index not in unstored:
                        continue
                    if not part.active:  # lost meanwhile: the offset is its successor's now
                        del unstored[part.index]
                        continue
                    try:
                        await self._store(part, confirm=confirm)
                    except StreamError as exc:
                        unstored[part.index] = str(exc)
                    else:
                        del unstored[part.index]
                if not unstored or patience_s <= 0:
                    return
                attempt += 1
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))

        if patience_s > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(patience_s):
                    await store_all()
        else:
            await store_all()
        for part in self._partitions:
            if part.index in unstored and part.active:
                log.warning(
                    "partition %d: storing the offset failed: %s; the group's offset stays "
                    "at %d, so a successor handles offsets %d to %d again",
                    part.index,
                    unstored[part.index] or f"no store succeeded within {patience_s:g} s",
                    part.stored,
                    part.stored + 1,
                    self._storable(part),
                )

    async def _seal(self) -> None:
        """Put each offset confirmed by the final stores behind the store frames that a node
        which stopped answering still holds (`Admin.seal`): resuming, possibly after this
        worker exited, it applies them in order, so it no longer sets the group's offset back
        for the successor. Only for partitions still active here."""
        group = self.config.group
        offsets = {
            (part.stream, group): part.stored
            for part in self._partitions
            if part.active and part.stored >= 0
        }
        if offsets and (sealed := await self._admin.seal(offsets)):
            log.info(
                "worker %s: %d stored offsets written again behind store frames held by a "
                "node that stopped answering (it applies them when it resumes)",
                self.config.name,
                sealed,
            )

    async def _drain(self) -> None:
        for part in self._partitions:
            async with part.lock:
                pass

    async def _store_periodically(self) -> None:
        """Owned task: store (read, write and read back) offsets that are due by time
        (`store_every_ms`), or by count (`store_every_ticks`) when the hot path could not
        write them, and at once the offset of a partition that has had nothing new to handle
        for `_IDLE_STORE_MS` (the end of a burst or of a backlog is stored then, not up to
        `store_every_ms` later); every `store_every_ms`, check that the stored offset of an
        active partition with nothing new to store did not go back (`_verify`)."""
        cfg = self.config
        next_round = _now_ms() + cfg.store_every_ms
        while True:
            checkpoint()
            woken = False  # by the hot path, which could not write a due store
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(cfg.store_every_ms, _IDLE_STORE_MS) / 1000):
                    woken = await self._store_wanted.wait()
            self._store_wanted.clear()
            now = _now_ms()
            round_due = now >= next_round
            if round_due:
                next_round = now + cfg.store_every_ms
            for part in self._partitions:
                if not part.active:
                    continue
                storable = self._storable(part)
                try:
                    if storable <= part.stored:
                        if round_due:
                            await self._verify(part)
                        continue
                    idle = (
                        now - part.handled_at_ms >= _IDLE_STORE_MS
                        and part.idle_stored_for != part.handled_at_ms  # once per quiet spell
                    )
                    if idle:
                        part.idle_stored_for = part.handled_at_ms
                    if (
                        idle
                        or (woken and storable - part.written >= cfg.store_every_ticks)
                        or (
                            round_due
                            and store_due(
                                storable,
                                part.stored,
                                now,
                                part.stored_at_ms,
                                cfg.store_every_ticks,
                                cfg.store_every_ms,
                            )
                        )
                    ):
                        await self._store(part)
                except StreamError as exc:
                    self._trouble(f"storing the offset of partition {part.index} failed: {exc}")

    async def _poll_lag(self) -> None:
        """Owned task: the lag metrics of active partitions, every `lag_interval_s`."""
        while True:
            checkpoint()
            for part in self._partitions:
                if not part.active:
                    continue
                try:
                    last = await self._admin_call(
                        partial(self._admin.last_offset, part.stream, 1.0)
                    )
                except StreamError as exc:
                    log.debug("lag of partition %d unknown: %s", part.index, exc)
                    continue
                lag = max(0, last - part.processed)
                part.metrics.lag_messages.set(lag)
                if lag == 0:
                    part.metrics.lag_seconds.set(0)
            await asyncio.sleep(self.config.lag_interval_s)

    # -- tasks and closing -----------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"worker-{self.config.name}-{name}")
        self._tasks.add(task)

    async def _cancel_tasks(self) -> None:
        tasks, self._tasks = list(self._tasks), set()
        current = asyncio.current_task()
        tasks = [t for t in tasks if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _close(self, *, store: bool, cancel: bool = True) -> None:
        """Cancel owned tasks, optionally store offsets, close subscriptions and connections."""
        self._intake = False
        if cancel:
            await self._cancel_tasks()
        if store:
            await self._store_all(confirm=True)
        async with self._admin_lock:  # a reconnect in progress ends first, and none follows
            self._admin_closed = True
        closing = [p.subscription.stop() for p in self._partitions if p.subscription is not None]
        if self._dlq is not None:
            closing.append(self._dlq.stop())
        await asyncio.gather(*closing, self._admin.stop())  # each suppresses its errors
        for part in self._partitions:
            part.active = False
            part.metrics.active.set(0)


# --- running one worker until a signal --------------------------------------------------------
async def run_worker(
    config: WorkerConfig,
    handler: TickHandler,
    *,
    progress: Callable[[GroupWorker], None] | None = None,
    progress_every_s: float = 2.0,
    metrics: WorkerMetrics | None = None,
    worker_type: type[GroupWorker] | None = None,
) -> GroupWorker:
    """Run a worker until SIGTERM/SIGINT (or until it fails), then stop it gracefully:
    stop intake, drain (up to `drain_timeout_s`), store offsets, close. Returns the stopped
    worker (see `status()`); raises its failure if it failed. Cancelling run_worker stops the
    worker the same way (the cancellation then propagates). `worker_type`: a `GroupWorker`
    subclass to run instead (the latency bench's probe times chunk arrivals with one).
    """
    worker = (worker_type or GroupWorker)(config, handler, metrics=metrics)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await worker.start()
        stopping = asyncio.ensure_future(stop.wait())
        done = asyncio.ensure_future(worker.wait())
        try:
            while not (stop.is_set() or done.done()):
                await asyncio.wait(
                    {stopping, done}, timeout=progress_every_s, return_when=asyncio.FIRST_COMPLETED
                )
                if progress is not None:
                    progress(worker)
        finally:
            for task in (stopping, done):
                task.cancel()
            await asyncio.gather(stopping, done, return_exceptions=True)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await worker.stop()
    if worker.state is WorkerState.FAILED and worker.failure is not None:
        raise worker.failure
    return worker
