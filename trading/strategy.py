"""A paper strategy: mean reversion per symbol, orders and fills simulated against the ticks,
every decision written to the audit log, exactly once across fail-overs.

`MeanReversion` is the strategy of one partition, a deterministic state machine:
``on_tick(offset, tick)`` returns the events that tick causes. Per symbol it keeps the last
`window` last-trade prices; when the price is `threshold_bps` below their mean it buys
`quantity` (above: sells), as a limit order at the touch (the ask for a buy, the bid for a
sell), unless that would take the position beyond `max_position` (then the order is rejected,
once per signal). An order fills against the ticks of its symbol, at most the size shown at the
touch per tick (so it may fill partially over several ticks) and only while the touch is at or
inside its limit; after `order_ttl` ticks of its symbol what is left is cancelled. Each fill
writes the fill, its execution report and the new position. Event timestamps are the ticks'.

`StrategyHandler` runs it in a group worker (`superticks worker --handler strategy`).
Exactly-once effects, and why they hold across a worker killed mid-run:

* everything an event holds derives from the partition's ticks: its id
  (``<name>:<partition>:<offset>:<k>``), its order id (``<name>-<partition>-<offset>``), its
  timestamp, and its publishing id ``offset * 16 + k + 1`` (at most 16 events per tick);
* each partition publishes under its own producer name (``<name>-p<partition>``), so a
  successor on that partition continues the same id sequence, and the broker drops (while
  confirming) any id at or below the last it stored under that name: re-sent decisions are
  never stored twice. One live producer per name (the producer's name lock): a worker whose
  partition moves away closes that partition's publisher (`partition_released`, before the
  broker activates the successor); a killed worker's name frees with its connection, and the
  successor's publisher waits for it (`name_wait_s`);
* a chunk's events are confirmed before `handle_batch` returns, so the worker stores a
  partition offset only after the decisions of the ticks up to it are in the log: none missing;
* the strategy's state at a partition offset is a function of the partition's ticks before it:
  on the first chunk of a partition, or a chunk that does not follow the last one handled (the
  partition moved here, or a call failed and is retried), the handler rebuilds the state by
  reading the partition from its first offset up to the chunk, publishing nothing.

So a successor that resumes behind the last published decision recomputes the same events under
the same ids, and the broker keeps the first copy.

Checkpoints bound the rebuild: every `StrategyHandler.checkpoint_every` ticks of a partition
(1,000,000 by default) the handler publishes `MeanReversion.snapshot` -- the state after a tick,
itself a function of the ticks up to it -- to ``<audit stream>_checkpoints`` (JSON, one message
per checkpoint, publishing id offset + 1 under ``<name>-checkpoint-p<partition>``), once the
decisions up to that tick are confirmed. A rebuild restores the latest checkpoint of the same
strategy name, parameters and partition before its chunk (read back from the stream's end) and
replays only the ticks after it,
to the same state as a replay from the first offset. Without one (none written yet, or
``--checkpoint-every 0``) it replays from the first offset, and says so in a warning when
retention has removed ticks there (the positions before them are then unknown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field

from partitioning.codec import Tick, frame_message, message_body
from partitioning.model import us_to_timestamp
from partitioning.producer import Producer, ProducerConfig
from superticks.errors import PermissionDenied, StreamNotFound, SuperticksError
from superticks.settings import ConnectionSettings
from superticks.streams import Admin
from trading.audit import AUDIT_STREAM, AuditConfig, AuditLog
from trading.events import EventType, Side, TradingEvent
from trading.ledger import Ledger, Order, Position
from trading.reading import read_partition_ticks, read_to_end

__all__ = [
    "CLOSED_ORDERS_KEPT",
    "EVENTS_PER_TICK",
    "MeanReversion",
    "StrategyHandler",
    "StrategyParams",
    "publishing_id",
]

log = logging.getLogger("superticks.strategy")

EVENTS_PER_TICK = 16
"""Publishing ids per tick: a tick's k-th event has id ``offset * 16 + k + 1``."""

_TEN_THOUSAND = Decimal(10_000)

CHECKPOINT_EVERY = 1_000_000
"""Ticks of a partition between two checkpoints of its strategy state (`StrategyHandler`)."""
_CHECKPOINT_MAX_BYTES = 900_000  # a publish frame holds at most 1 MiB
_CHECKPOINT_WINDOW = 100  # checkpoints a rebuild reads at a time, from the newest back
_CHECKPOINT_SCAN = 10_000  # ... and at most this many in all (the stream may hold other
# strategies' checkpoints: one that has none there must not read the whole retention)
_CHECKPOINT_ARGUMENTS = {"max-age": "30D", "max-length-bytes": 10_000_000_000}


def checkpoint_stream(audit_stream: str) -> str:
    """The stream of the strategy checkpoints kept beside `audit_stream`."""
    return f"{audit_stream}_checkpoints"


SNAPSHOT_VERSION = 1
"""The layout of `MeanReversion.snapshot` (a checkpoint of another layout is not used)."""

CLOSED_ORDERS_KEPT = 1_000
"""Closed orders a partition's ledger remembers: the strategy never refers to one again after
its last fill's events, and remembering every order made its memory grow with the run
(~450 bytes per order, ~0.13 orders per tick: 4 GB an hour at 20,000 ticks/s)."""


def _ledger() -> Ledger:
    return Ledger(closed_kept=CLOSED_ORDERS_KEPT)


def publishing_id(offset: int, k: int) -> int:
    """The publishing id of the k-th event caused by the tick at `offset`."""
    if not 0 <= k < EVENTS_PER_TICK:
        raise ValueError(f"a tick causes at most {EVENTS_PER_TICK} events, not {k + 1}")
    return offset * EVENTS_PER_TICK + k + 1


class StrategyParams(BaseModel):
    """The strategy's parameters (flags of `superticks worker --handler strategy`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        default="strategy", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$"
    )
    window: int = Field(default=20, ge=2, le=10_000)
    threshold_bps: int = Field(default=5, ge=1, le=10_000)
    quantity: int = Field(default=300, ge=1)
    max_position: int = Field(default=900, ge=1)
    order_ttl: int = Field(default=3, ge=1)


@dataclass(slots=True)
class _Order:
    order_id: str
    side: Side
    quantity: Decimal
    limit: Decimal
    filled: Decimal = Decimal(0)
    age: int = 0


@dataclass(slots=True)
class _Symbol:
    prices: deque[Decimal]
    total: Decimal = Decimal(0)
    order: _Order | None = None
    refused: bool = False  # the current signal was already rejected once


@dataclass(slots=True)
class MeanReversion:
    """The strategy of one partition (see the module docstring); deterministic."""

    params: StrategyParams
    partition: int
    ledger: Ledger = field(default_factory=_ledger)
    symbols: dict[str, _Symbol] = field(default_factory=dict)
    ticks: int = 0

    def snapshot(self, offset: int) -> dict[str, Any]:
        """The state after the tick at `offset` as JSON-able data (decimals as exact strings):
        what `restore` needs to go on exactly as this machine would. Open orders are kept with
        the ledger's positions; closed orders are not (the strategy never refers to one)."""
        ledger = self.ledger
        return {
            "version": SNAPSHOT_VERSION,
            "strategy": self.params.name,
            "params": self.params.model_dump(),
            "partition": self.partition,
            "offset": offset,
            "ticks": self.ticks,
            "symbols": {
                symbol: {
                    "prices": [str(p) for p in state.prices],
                    "total": str(state.total),
                    "refused": state.refused,
                    "order": None
                    if state.order is None
                    else {
                        "order_id": state.order.order_id,
                        "side": str(state.order.side),
                        "quantity": str(state.order.quantity),
                        "limit": str(state.order.limit),
                        "filled": str(state.order.filled),
                        "age": state.order.age,
                    },
                }
                for symbol, state in self.symbols.items()
            },
            "positions": {
                symbol: {
                    "quantity": str(pos.quantity),
                    "cost": str(pos.cost),
                    "realised": str(pos.realised),
                    "fills": pos.fills,
                    "bought": str(pos.bought),
                    "sold": str(pos.sold),
                }
                for symbol, pos in ledger.positions.items()
            },
            "open_orders": [
                {
                    "order_id": o.order_id,
                    "symbol": o.symbol,
                    "side": o.side,
                    "quantity": str(o.quantity),
                    "filled": str(o.filled),
                    "status": o.status,
                }
                for o in ledger.open_orders()
            ],
        }

    @classmethod
    def restore(cls, params: StrategyParams, partition: int, snapshot: dict[str, Any]) -> Self:
        """The machine `snapshot` describes (`snapshot`'s inverse); ValueError if it is not a
        snapshot of this strategy, these parameters and this partition."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"snapshot version {snapshot.get('version')!r} is not {SNAPSHOT_VERSION}"
            )
        if snapshot.get("params") != params.model_dump() or snapshot.get("partition") != partition:
            raise ValueError("the snapshot is of other parameters or another partition")
        machine = cls(params, partition)
        machine.ticks = int(snapshot["ticks"])
        for symbol, data in snapshot["symbols"].items():
            state = _Symbol(
                deque((Decimal(p) for p in data["prices"]), maxlen=params.window),
                Decimal(data["total"]),
                refused=bool(data["refused"]),
            )
            order = data["order"]
            if order is not None:
                state.order = _Order(
                    order["order_id"],
                    Side(order["side"]),
                    Decimal(order["quantity"]),
                    Decimal(order["limit"]),
                    Decimal(order["filled"]),
                    int(order["age"]),
                )
            machine.symbols[symbol] = state
        ledger = machine.ledger
        for symbol, data in snapshot["positions"].items():
            ledger.positions[symbol] = Position(
                symbol,
                Decimal(data["quantity"]),
                Decimal(data["cost"]),
                Decimal(data["realised"]),
                int(data["fills"]),
                Decimal(data["bought"]),
                Decimal(data["sold"]),
            )
        for data in snapshot["open_orders"]:
            ledger.orders[data["order_id"]] = Order(
                data["order_id"],
                data["symbol"],
                data["side"],
                Decimal(data["quantity"]),
                Decimal(data["filled"]),
                data["status"],
            )
        return machine

    def on_tick(self, offset: int, tick: Tick) -> list[TradingEvent]:
        """The events the tick at `offset` causes (also folded into `ledger`)."""
        self.ticks += 1
        p = self.params
        state = self.symbols.get(tick.symbol)
        if state is None:
            state = self.symbols[tick.symbol] = _Symbol(deque(maxlen=p.window))
        out: list[TradingEvent] = []
        order = state.order
        if order is not None:
            self._fill(state, order, offset, tick, out)
            order = state.order
            if order is not None:
                order.age += 1
                if order.age >= p.order_ttl:
                    out.append(
                        self._event(
                            offset,
                            tick,
                            out,
                            EventType.ORDER_CANCELLED,
                            order,
                            reason=f"unfilled after {p.order_ttl} ticks",
                        )
                    )
                    state.order = None
        price = Decimal(tick.last_price)
        prices = state.prices
        if len(prices) == p.window:
            state.total -= prices[0]
        prices.append(price)
        state.total += price
        if len(prices) == p.window and state.order is None:
            self._decide(state, offset, tick, price, out)
        for event in out:
            self.ledger.apply(event.to_wire_dict())
        return out

    def _decide(
        self, state: _Symbol, offset: int, tick: Tick, price: Decimal, out: list[TradingEvent]
    ) -> None:
        p = self.params
        scaled = price * p.window * _TEN_THOUSAND
        if scaled < state.total * (_TEN_THOUSAND - p.threshold_bps):
            side = Side.BUY
        elif scaled > state.total * (_TEN_THOUSAND + p.threshold_bps):
            side = Side.SELL
        else:
            state.refused = False
            return
        quantity = Decimal(p.quantity)
        pos = self.ledger.positions.get(tick.symbol)
        held = pos.quantity if pos is not None else Decimal(0)
        after = held + quantity if side is Side.BUY else held - quantity
        order_id = f"{p.name}-{self.partition}-{offset}"
        limit = Decimal(tick.ask_price if side is Side.BUY else tick.bid_price)
        order = _Order(order_id, side, quantity, limit)
        if abs(after) > p.max_position:
            if not state.refused:
                state.refused = True
                out.append(
                    self._event(
                        offset,
                        tick,
                        out,
                        EventType.ORDER_REJECTED,
                        order,
                        quantity=quantity,
                        price=limit,
                        reason=f"position limit {p.max_position}",
                    )
                )
            return
        state.refused = False
        out.append(
            self._event(
                offset, tick, out, EventType.ORDER_CREATED, order, quantity=quantity, price=limit
            )
        )
        state.order = order
        self._fill(state, order, offset, tick, out)

    def _fill(
        self, state: _Symbol, order: _Order, offset: int, tick: Tick, out: list[TradingEvent]
    ) -> None:
        if order.side is Side.BUY:
            touch, shown = Decimal(tick.ask_price), Decimal(tick.ask_size)
            marketable = touch <= order.limit
        else:
            touch, shown = Decimal(tick.bid_price), Decimal(tick.bid_size)
            marketable = touch >= order.limit
        if not marketable or shown <= 0:
            return
        size = min(order.quantity - order.filled, shown)
        order.filled += size
        done = order.filled == order.quantity
        kind = EventType.ORDER_FILLED if done else EventType.ORDER_PARTIALLY_FILLED
        out.append(self._event(offset, tick, out, kind, order, quantity=size, price=touch))
        out.append(
            self._event(
                offset, tick, out, EventType.TRADE_EXECUTED, order, quantity=size, price=touch
            )
        )
        # the position after this fill: what the ledger will hold once `out` is folded
        pos = self.ledger.positions.get(tick.symbol)
        held = pos.quantity if pos is not None else Decimal(0)
        pending = sum(
            (e.quantity if e.side is Side.BUY else -e.quantity)
            for e in out
            if e.type in (EventType.ORDER_FILLED, EventType.ORDER_PARTIALLY_FILLED)
            and e.quantity is not None
        )
        out.append(
            self._event(
                offset, tick, out, EventType.POSITION_UPDATED, None, quantity=held + pending
            )
        )
        if done:
            state.order = None

    def _event(
        self,
        offset: int,
        tick: Tick,
        out: Sequence[TradingEvent],
        kind: EventType,
        order: _Order | None,
        *,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        reason: str | None = None,
    ) -> TradingEvent:
        k = len(out)
        publishing_id(offset, k)  # refuses a 17th event
        return TradingEvent(
            event_id=f"{self.params.name}:{self.partition}:{offset}:{k}",
            timestamp=us_to_timestamp(tick.timestamp_us),
            type=kind,
            order_id=None if order is None else order.order_id,
            symbol=tick.symbol,
            side=None if order is None else order.side,
            quantity=quantity,
            price=price,
            reason=reason,
            source=f"p{self.partition}@{offset}",
        )


@dataclass(slots=True)
class _Active:
    machine: MeanReversion
    log: AuditLog
    next_offset: int
    checkpointed: int  # the offset of the partition's last checkpoint (-1: none)
    checkpoints: Producer | None = None  # the checkpoint publisher, once started
    warming: asyncio.Task[Producer] | None = None  # its start, begun at activation

    async def stop(self, timeout_s: float = 30.0) -> None:
        await self.log.stop(timeout_s)
        if self.warming is not None:  # a start under way is cancelled; one done is stopped
            self.warming.cancel()
            started = (await asyncio.gather(self.warming, return_exceptions=True))[0]
            self.warming = None
            if isinstance(started, Producer):
                self.checkpoints = started
        if self.checkpoints is not None:
            await self.checkpoints.stop(timeout_s)


class StrategyHandler:
    """`TickHandler` running `MeanReversion` per partition and publishing its decisions (see
    the module docstring for why a fail-over neither loses nor repeats any).

    Call `close()` after the worker stopped: it flushes and closes the audit publishers.
    """

    def __init__(
        self,
        connection: ConnectionSettings,
        params: StrategyParams | None = None,
        *,
        super_stream: str = "ticks",
        audit_stream: str = AUDIT_STREAM,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        if checkpoint_every < 0:
            raise ValueError(f"checkpoint_every={checkpoint_every}: must be >= 0 (0: none)")
        self.connection = connection
        self.params = params or StrategyParams()
        self.super_stream = super_stream
        self.audit_stream = audit_stream
        self.checkpoint_every = checkpoint_every
        """Write the state of a partition every this many of its ticks (0: never)."""
        self.checkpoint_stream = checkpoint_stream(audit_stream)
        self.replayed = 0
        """Ticks re-read by rebuilds (from a checkpoint, or from a partition's first offset)."""
        self._partitions: list[str] = []
        self._active: dict[int, _Active] = {}
        self._closed_positions: dict[str, str] = {}  # of partitions closed here, by symbol
        self.rebuilds = 0
        self.name_wait_s = 30.0
        """How long a partition's audit publisher waits for its producer name (held by the
        previous worker of the partition until that one releases it or its connection dies)."""
        self.published = 0

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        if not ticks:
            return
        active = self._active.get(partition)
        # Offsets ahead of the next expected one are no ticks (a stored offset's tracking
        # chunk takes an offset no consumer sees; a dead letter), as long as the partition
        # stayed here: the worker tells `partition_released` when it moved or was lost.
        if active is None or offsets[0] < active.next_offset:
            active = await self._activate(partition, offsets[0])
        try:
            machine = active.machine
            items: list[tuple[int, TradingEvent]] = []
            for offset, tick in zip(offsets, ticks, strict=True):
                for k, event in enumerate(machine.on_tick(offset, tick)):
                    items.append((offset * EVENTS_PER_TICK + k + 1, event))
            active.next_offset = offsets[-1] + 1
            if items:
                await (await active.log.publish_with_ids(items))
                self.published += len(items)
        except BaseException:
            # the state has moved past ticks whose decisions may not be stored: rebuild on retry
            self._active.pop(partition, None)
            await active.stop(timeout_s=1.0)
            raise
        every = self.checkpoint_every
        if every and offsets[-1] - active.checkpointed >= every:
            await self._checkpoint(partition, active, offsets[-1])

    async def _checkpoint(self, partition: int, active: _Active, offset: int) -> None:
        """Publish the partition's state after `offset` (not awaiting its confirm: a
        checkpoint that is lost only makes a later rebuild read more ticks). Its publishing
        id is `offset` + 1 under a name per partition, so a successor that writes it again
        stores nothing twice. The publisher starts in the background when the partition is
        activated (a start took 1-2 s on a loaded machine, and up to `name_wait_s` while the
        previous worker still holds the name): until it has, the checkpoint is put off to the
        next call, so the handler never waits for it."""
        warming = active.warming
        if warming is not None:
            if not warming.done():
                return  # tried again at the next call
            active.warming = None
        active.checkpointed = offset
        body = orjson.dumps(active.machine.snapshot(offset))
        if len(body) > _CHECKPOINT_MAX_BYTES:
            log.warning(
                "strategy partition %d: its state (%d bytes) exceeds a checkpoint's %d: not "
                "checkpointed",
                partition,
                len(body),
                _CHECKPOINT_MAX_BYTES,
            )
            return
        try:
            if active.checkpoints is None:
                # the start begun at activation (what it raised, raised here), or a new one
                started = warming if warming is not None else self._checkpoints(partition)
                active.checkpoints = await started
            tag = f"p{partition}"
            confirm = await active.checkpoints.send_with_ids(
                [(offset + 1, tag, frame_message(tag, body))]
            )
        except PermissionDenied as exc:
            self.checkpoint_every = 0
            log.warning(
                "strategy checkpoints off: %s (an admin creates %s, and the strategy's user "
                "needs write and read on it)",
                exc,
                self.checkpoint_stream,
            )
            return
        except SuperticksError as exc:  # a checkpoint never fails the handler
            log.warning(
                "strategy partition %d: no checkpoint at offset %d: %s", partition, offset, exc
            )
            producer, active.checkpoints = active.checkpoints, None  # the next one starts anew
            if producer is not None:
                await producer.stop(timeout_s=1.0)
            return
        confirm.add_done_callback(_checkpoint_confirmed)

    async def _checkpoints(self, partition: int) -> Producer:
        """The partition's checkpoint publisher, started (the stream created if need be)."""
        async with Admin(self.connection) as admin:
            await admin.create_stream(self.checkpoint_stream, _CHECKPOINT_ARGUMENTS)
        producer = Producer(
            ProducerConfig(
                connection=self.connection,
                stream=self.checkpoint_stream,
                name=f"{self.params.name}-checkpoint-p{partition}",
                name_wait_s=self.name_wait_s,
                max_in_flight=4,
            )
        )
        await producer.start()
        return producer

    async def _read_back(
        self, on_messages: Callable[[int, list[bytes]], None], found: Callable[[], bool]
    ) -> None:
        """Read the checkpoint stream backwards, `_CHECKPOINT_WINDOW` messages at a time, until
        `found()`. A partition's stored checkpoints only go up (a lower publishing id than the
        last stored under its name is dropped), so the first window from the end with one
        before the offset sought holds the latest such: a rebuild reads the last few
        checkpoints, not the stream's whole retention (at most the last `_CHECKPOINT_SCAN`)."""
        stream = self.checkpoint_stream
        async with Admin(self.connection) as admin:
            if not await admin.stream_exists(stream):
                return
            end = await admin.last_offset(stream)
            first = max(0, (await admin.stats(stream)).get("first_chunk_id", 0))
        first = max(first, end - _CHECKPOINT_SCAN + 1)
        while end >= first and not found():
            start = max(first, end - _CHECKPOINT_WINDOW + 1)
            await read_to_end(self.connection, stream, on_messages, start=start, end=end)
            end = start - 1

    async def _restored(self, partition: int, first_offset: int) -> tuple[MeanReversion, int]:
        """The partition's latest checkpoint before `first_offset` of this strategy and these
        parameters, restored, and its offset; else a new machine and -1."""
        best: dict[str, Any] | None = None
        name, params = self.params.name, self.params.model_dump()

        def on_messages(_first: int, messages: list[bytes]) -> None:
            nonlocal best
            for message in messages:
                try:
                    data = orjson.loads(message_body(message))
                except ValueError:
                    continue
                if (
                    type(data) is dict
                    and data.get("strategy") == name
                    and data.get("partition") == partition
                    and data.get("version") == SNAPSHOT_VERSION
                    and data.get("params") == params
                    and type(data.get("offset")) is int
                    and data["offset"] < first_offset
                    and (best is None or data["offset"] > best["offset"])
                ):
                    best = data

        if first_offset > 0 and self.checkpoint_every:
            with contextlib.suppress(StreamNotFound, PermissionDenied):  # none to read
                await self._read_back(on_messages, lambda: best is not None)
        if best is not None:
            try:
                return MeanReversion.restore(self.params, partition, best), int(best["offset"])
            except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                log.warning(
                    "strategy partition %d: the checkpoint at offset %s cannot be restored "
                    "(%r): rebuilding from the first offset",
                    partition,
                    best.get("offset"),
                    exc,
                )
        return MeanReversion(self.params, partition), -1

    async def _activate(self, partition: int, first_offset: int) -> _Active:
        old = self._active.pop(partition, None)
        if old is not None:
            await old.stop()
        if not self._partitions:
            async with Admin(self.connection) as admin:
                self._partitions = await admin.partitions(self.super_stream)
        stream = self._partitions[partition]
        machine, since = await self._restored(partition, first_offset)
        if since < 0 and first_offset > 0:
            async with Admin(self.connection) as admin:
                first = (await admin.stats(stream)).get("first_chunk_id", 0)
            if first > 0:
                log.warning(
                    "strategy partition %d: retention removed its ticks before offset %d and "
                    "no checkpoint of %s precedes offset %d: the state (positions included) "
                    "is rebuilt from offset %d on only",
                    partition,
                    first,
                    self.params.name,
                    first_offset,
                    first,
                )
        replayed = machine.ticks

        def replay(offsets: list[int], ticks: list[Tick]) -> None:
            for offset, tick in zip(offsets, ticks, strict=True):
                machine.on_tick(offset, tick)

        await read_partition_ticks(
            self.connection, stream, replay, start=since + 1, end=first_offset - 1
        )
        self.rebuilds += 1
        self.replayed += machine.ticks - replayed
        log.info(
            "strategy partition %d: state rebuilt before offset %d from %s and %d ticks",
            partition,
            first_offset,
            "the first offset" if since < 0 else f"the checkpoint at offset {since}",
            machine.ticks - replayed,
        )
        audit = AuditLog(
            AuditConfig(
                connection=self.connection,
                stream=self.audit_stream,
                name=f"{self.params.name}-p{partition}",
                name_wait_s=self.name_wait_s,
            )
        )
        await audit.start()
        active = _Active(machine, audit, first_offset, checkpointed=max(since, first_offset - 1))
        if self.checkpoint_every:
            active.warming = asyncio.create_task(
                self._checkpoints(partition), name=f"checkpoints-p{partition}"
            )
        self._active[partition] = active
        return active

    def positions(self) -> dict[str, str]:
        """Each symbol's position as this handler last knew it (partitions active here, and
        those it closed)."""
        out: dict[str, str] = dict(self._closed_positions)
        for active in self._active.values():
            for symbol, pos in active.machine.ledger.positions.items():
                out[symbol] = str(pos.quantity)
        return dict(sorted(out.items()))

    def summary(self) -> dict[str, object]:
        """JSON-able: events published, state rebuilds, positions of the partitions here."""
        return {
            "published_events": self.published,
            "rebuilds": self.rebuilds,
            "positions": self.positions(),
        }

    async def partition_released(self, partition: int) -> None:
        """The partition moved to another worker: close its audit publisher (its successor
        takes the producer name) and forget its state (rebuilt if it comes back)."""
        active = self._active.pop(partition, None)
        if active is not None:
            for symbol, pos in active.machine.ledger.positions.items():
                self._closed_positions[symbol] = str(pos.quantity)
            await active.stop()

    async def close(self) -> None:
        """Flush and close every audit publisher; safe twice."""
        self._closed_positions = self.positions()
        actives, self._active = list(self._active.values()), {}
        for active in actives:
            await active.stop()


def _checkpoint_confirmed(confirm: asyncio.Future[None]) -> None:
    if not confirm.cancelled() and confirm.exception() is not None:
        log.warning("a strategy checkpoint was not stored: %r", confirm.exception())
