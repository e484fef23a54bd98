"""The paper strategy is a deterministic function of a partition's ticks."""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson
import pytest

from partitioning.codec import Tick, decode_body
from partitioning.simulator import MarketSimulator
from superticks.errors import ProducerClosed
from superticks.settings import ConnectionSettings
from trading import strategy
from trading.events import EventType, TradingEvent
from trading.ledger import Ledger, rebuild
from trading.strategy import CLOSED_ORDERS_KEPT, MeanReversion, StrategyParams, publishing_id


def ticks(n: int = 5000, symbols: int = 5) -> list[Tick]:
    sim = MarketSimulator(symbols, seed=7)
    return [decode_body(body) for _, body in sim.batch(n)]


def run(params: StrategyParams, data: list[Tick], start: int = 0) -> list[TradingEvent]:
    machine = MeanReversion(params, partition=0)
    out: list[TradingEvent] = []
    for offset, tick in enumerate(data):
        events = machine.on_tick(offset, tick)
        if offset >= start:
            out.extend(events)
    return out


def test_it_trades_with_every_kind_of_order_event() -> None:
    events = run(StrategyParams(threshold_bps=2, quantity=700), ticks())
    kinds = Counter(e.type for e in events)
    for kind in (
        EventType.ORDER_CREATED,
        EventType.ORDER_FILLED,
        EventType.ORDER_PARTIALLY_FILLED,
        EventType.ORDER_CANCELLED,
        EventType.ORDER_REJECTED,
        EventType.TRADE_EXECUTED,
        EventType.POSITION_UPDATED,
    ):
        assert kinds[kind] > 0, kind


def test_its_events_rebuild_without_a_refusal_to_its_own_positions() -> None:
    params = StrategyParams(threshold_bps=2, quantity=700)
    machine = MeanReversion(params, partition=0)
    events = [e for offset, t in enumerate(ticks()) for e in machine.on_tick(offset, t)]
    ledger = rebuild(e.to_wire_dict() for e in events)
    assert ledger.invalid == []
    assert {s: p.quantity for s, p in ledger.positions.items()} == {
        s: p.quantity for s, p in machine.ledger.positions.items()
    }


def test_a_successor_rebuilt_from_the_ticks_before_it_decides_the_same() -> None:
    params = StrategyParams(threshold_bps=2, quantity=700)
    data = ticks()
    whole = run(params, data)
    tail = run(params, data, start=2500)  # state from ticks 0..2499, events from 2500 on
    assert tail == [e for e in whole if int(e.source.split("@")[1]) >= 2500]  # type: ignore[union-attr]


def test_the_same_ticks_give_the_same_event_ids() -> None:
    params = StrategyParams(threshold_bps=2)
    assert [e.event_id for e in run(params, ticks())] == [e.event_id for e in run(params, ticks())]


def test_publishing_ids_increase_with_the_offset_and_refuse_a_17th_event() -> None:
    assert publishing_id(0, 0) == 1
    assert publishing_id(0, 15) < publishing_id(1, 0)
    with pytest.raises(ValueError, match="at most 16"):
        publishing_id(3, 16)


def test_its_ledger_keeps_a_bounded_number_of_orders_and_decides_as_one_that_keeps_all() -> None:
    data = ticks(20_000)
    params = StrategyParams(threshold_bps=2)
    bounded = MeanReversion(params, partition=0)
    unbounded = MeanReversion(params, partition=0, ledger=Ledger())

    for offset, tick in enumerate(data):
        assert bounded.on_tick(offset, tick) == unbounded.on_tick(offset, tick)

    assert len(unbounded.ledger.orders) > 2 * CLOSED_ORDERS_KEPT  # the run closed many
    open_orders = len(bounded.ledger.open_orders())
    assert len(bounded.ledger.orders) <= CLOSED_ORDERS_KEPT + open_orders
    assert bounded.ledger.positions == unbounded.ledger.positions


def test_a_machine_restored_from_a_snapshot_goes_on_exactly_as_the_original() -> None:
    params = StrategyParams(threshold_bps=2, quantity=700)
    data = ticks()
    original = MeanReversion(params, partition=0)
    for offset, tick in enumerate(data[:2500]):
        original.on_tick(offset, tick)
    stored = orjson.loads(orjson.dumps(original.snapshot(2499)))  # as a checkpoint travels

    restored = MeanReversion.restore(params, 0, stored)

    assert stored["offset"] == 2499
    for offset, tick in enumerate(data[2500:], start=2500):
        assert restored.on_tick(offset, tick) == original.on_tick(offset, tick)
    assert restored.ledger.positions == original.ledger.positions
    assert restored.snapshot(len(data) - 1) == original.snapshot(len(data) - 1)


def test_a_snapshot_of_other_parameters_or_another_partition_is_refused() -> None:
    params = StrategyParams(threshold_bps=2)
    machine = MeanReversion(params, partition=1)
    snapshot = machine.snapshot(-1)

    with pytest.raises(ValueError, match="other parameters or another partition"):
        MeanReversion.restore(StrategyParams(threshold_bps=3), 1, snapshot)
    with pytest.raises(ValueError, match="other parameters or another partition"):
        MeanReversion.restore(params, 2, snapshot)
    with pytest.raises(ValueError, match="snapshot version"):
        MeanReversion.restore(params, 1, {**snapshot, "version": 99})


class _NoAdmin:
    """`Admin` where the checkpoint stream already exists."""

    def __init__(self, settings: object) -> None:
        pass

    async def __aenter__(self) -> _NoAdmin:
        return self

    async def __aexit__(self, *_: object) -> None:
        pass

    async def create_stream(self, name: str, arguments: object) -> bool:
        return False


class _RefusedProducer:
    """A checkpoint producer whose sends fail (its producer failed: the cluster went away)."""

    stops = 0

    def __init__(self, config: object) -> None:
        pass

    async def start(self) -> None:
        pass

    async def send_with_ids(self, items: object) -> None:
        raise ProducerClosed("the producer failed: reconnecting gave up")

    async def stop(self, timeout_s: float = 30.0) -> None:
        _RefusedProducer.stops += 1


async def test_a_checkpoint_that_fails_never_fails_the_handler_and_is_tried_anew(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(strategy, "Admin", _NoAdmin)
    monkeypatch.setattr(strategy, "Producer", _RefusedProducer)
    monkeypatch.setattr(_RefusedProducer, "stops", 0)
    handler = strategy.StrategyHandler(ConnectionSettings(), StrategyParams(), checkpoint_every=1)
    active = strategy._Active(MeanReversion(StrategyParams(), 0), None, 0, -1)  # type: ignore[arg-type]

    await handler._checkpoint(0, active, 10)  # raises nothing
    await handler._checkpoint(0, active, 20)

    assert active.checkpoints is None  # dropped: the next checkpoint starts a producer again
    assert _RefusedProducer.stops == 2
    assert (active.checkpointed, handler.checkpoint_every) == (20, 1)


class _Publisher:
    """A started checkpoint publisher: records the ids it is given; confirms at once."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.stopped = False

    async def send_with_ids(self, items: list[tuple[int, str, bytes]]) -> asyncio.Future[None]:
        self.sent.extend(item[0] for item in items)
        confirm = asyncio.get_running_loop().create_future()
        confirm.set_result(None)
        return confirm

    async def stop(self, timeout_s: float = 30.0) -> None:
        self.stopped = True


class _Log:
    async def stop(self, timeout_s: float = 30.0) -> None:
        pass


def _starting(active: strategy._Active) -> asyncio.Future[_Publisher]:
    """Give `active` a checkpoint publisher whose start finishes when the result is set."""
    started: asyncio.Future[_Publisher] = asyncio.get_running_loop().create_future()

    async def start() -> _Publisher:
        return await started

    active.warming = asyncio.create_task(start())  # type: ignore[arg-type]
    return started


async def test_a_checkpoint_is_put_off_while_its_publisher_starts_never_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(strategy, "Producer", _Publisher)
    handler = strategy.StrategyHandler(ConnectionSettings(), StrategyParams(), checkpoint_every=1)
    active = strategy._Active(MeanReversion(StrategyParams(), 0), _Log(), 0, -1)  # type: ignore[arg-type]
    started = _starting(active)

    async with asyncio.timeout(1):
        await handler._checkpoint(0, active, 10)  # returns at once: the start is under way
    publisher = _Publisher()
    started.set_result(publisher)
    await asyncio.sleep(0)
    await handler._checkpoint(0, active, 20)

    assert publisher.sent == [21]  # the first checkpoint after the start, id offset + 1
    assert active.checkpointed == 20
    assert active.checkpoints is publisher


async def test_a_partition_released_stops_its_checkpoint_publisher_started_or_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(strategy, "Producer", _Publisher)
    unused = strategy._Active(MeanReversion(StrategyParams(), 0), _Log(), 0, -1)  # type: ignore[arg-type]
    publisher = _Publisher()
    _starting(unused).set_result(publisher)
    await asyncio.sleep(0)
    starting = strategy._Active(MeanReversion(StrategyParams(), 1), _Log(), 0, -1)  # type: ignore[arg-type]
    _starting(starting)
    task = starting.warming

    await unused.stop()
    await starting.stop()

    assert publisher.stopped  # started, never used: stopped all the same
    assert task is not None
    assert task.cancelled()
