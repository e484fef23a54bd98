"""The audit log on the cluster: events stored once, in order; the rebuild from the log alone,
as of a chosen time, equals the state computed from the events up to that time."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from partitioning.codec import decode_body
from partitioning.model import format_timestamp_us
from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from superticks.errors import StreamNotFound
from superticks.settings import ConnectionSettings
from superticks.streams import Admin
from trading.audit import AuditConfig, AuditLog, replay_log
from trading.events import TradingEvent
from trading.ledger import rebuild
from trading.reading import read_to_end
from trading.strategy import MeanReversion, StrategyParams

pytestmark = pytest.mark.cluster


@pytest.fixture
async def audit_stream(connection: ConnectionSettings, unique: str) -> AsyncIterator[str]:
    name = f"{unique}-audit"
    yield name
    async with Admin(connection) as admin:
        await admin.delete_stream(name)


def strategy_events(n_ticks: int = 6000) -> tuple[list[str], list[TradingEvent]]:
    """Events a strategy makes from simulated ticks, with a few invalid ones mixed in."""
    params = StrategyParams(name="vec", threshold_bps=2, quantity=700)
    machine = MeanReversion(params, partition=0)
    bodies = [body for _, body in MarketSimulator(8, seed=11).batch(n_ticks)]
    events = [e for o, b in enumerate(bodies) for e in machine.on_tick(o, decode_body(b))]
    assert len(events) > 500
    return [b.decode() for b in bodies], events


def invalid_events(template: TradingEvent) -> list[TradingEvent]:
    """A fill for an unknown order, an overfill, a cancel after a fill (at offsets 0, 3, 5 of
    these six), on a symbol the strategy does not trade."""
    stamp = template.timestamp
    base = {"timestamp": stamp, "symbol": "ZZZ.TEST", "side": "buy", "price": "1.00"}
    return [
        TradingEvent.build(event_id="bad-1", type="order_filled", order_id="ghost",
                           quantity="5", **base),
        TradingEvent.build(event_id="bad-2", type="order_created", order_id="bad",
                           quantity="10", **base),
        TradingEvent.build(event_id="bad-3", type="order_partially_filled", order_id="bad",
                           quantity="6", **base),
        TradingEvent.build(event_id="bad-4", type="order_filled", order_id="bad",
                           quantity="10", **base),  # overfill
        TradingEvent.build(event_id="bad-5", type="order_filled", order_id="bad",
                           quantity="4", **base),
        TradingEvent.build(event_id="bad-6", type="order_cancelled", order_id="bad",
                           timestamp=stamp),  # cancel after fill
    ]  # fmt: skip


async def test_the_rebuild_from_the_log_at_a_chosen_time_equals_the_fold_of_the_events(
    connection: ConnectionSettings, audit_stream: str
) -> None:
    _, events = strategy_events()
    half = len(events) // 2
    middle = events[half]
    events = events[:half] + invalid_events(middle) + events[half:]
    config = AuditConfig(connection=connection, stream=audit_stream, name="test-audit")
    async with AuditLog(config) as log:
        await (await log.publish(events))
    wire = [e.to_wire_dict() for e in events]
    for cut in (events[len(events) // 3], middle, events[-1]):
        until = cut.timestamp_us
        from_log = await replay_log(connection, audit_stream, until_us=until)
        direct = rebuild([w for w in wire if TradingEvent.from_wire_dict(w).timestamp_us <= until])
        state, expected = from_log.summary(), direct.summary()
        for key in ("until", "events", "skipped_after_until"):  # about the cut, not the state
            state.pop(key)
            expected.pop(key)
        assert state == expected
        assert from_log.applied > 0
    whole = await replay_log(connection, audit_stream)
    assert [(i.event_id, i.reason.split(":")[0]) for i in whole.invalid] == [
        ("bad-1", "fill for unknown order 'ghost'"),
        ("bad-4", "overfill"),
        ("bad-6", "cancel after the order was filled"),
    ]
    assert [i.index for i in whole.invalid] == [half, half + 3, half + 5]  # stream offsets


async def test_re_publishing_under_the_same_ids_stores_nothing_twice(
    connection: ConnectionSettings, audit_stream: str
) -> None:
    _, events = strategy_events(2000)
    config = AuditConfig(connection=connection, stream=audit_stream, name="test-dedup")
    items = [(10 * i + 1, e) for i, e in enumerate(events)]
    async with AuditLog(config) as log:
        await (await log.publish_with_ids(items[: len(items) // 2 + 7]))
    async with AuditLog(config) as log:  # a successor with the same name re-sends everything
        await (await log.publish_with_ids(items))
    ledger = await replay_log(connection, audit_stream)
    assert ledger.applied + len(ledger.invalid) == len(events)
    assert ledger.invalid == []


async def test_audit_replay_command_marks_positions_to_the_last_tick_at_the_time(
    connection: ConnectionSettings, unique: str, super_stream: str, audit_stream: str
) -> None:
    bodies, events = strategy_events()
    ticks = [(json.loads(b)["symbol"], b.encode()) for b in bodies]
    async with Producer(
        ProducerConfig(connection=connection, super_stream=super_stream, name=unique)
    ) as producer:
        await (await producer.send_batch(ticks))
    config = AuditConfig(connection=connection, stream=audit_stream, name="test-cli")
    async with AuditLog(config) as log:
        await (await log.publish(events))
    cut = events[len(events) // 2]
    until = format_timestamp_us(cut.timestamp_us)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "superticks", "audit", "replay", "--stream",
        audit_stream, "--ticks", super_stream, "--until", until, "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    summary = json.loads(out)
    last = {}
    for body in bodies:
        tick = decode_body(body)
        if tick.timestamp_us <= cut.timestamp_us:
            last[tick.symbol] = tick.last_price
    direct = rebuild(
        e.to_wire_dict() for e in events if e.timestamp_us <= cut.timestamp_us
    ).summary({s: Decimal(p) for s, p in last.items()})
    assert summary["symbols"] == direct["symbols"]
    assert summary["unrealised_pnl"] == direct["unrealised_pnl"] is not None


@pytest.mark.parametrize("end", [None, 10], ids=["to-the-last-offset", "to-a-given-offset"])
async def test_reading_a_stream_that_does_not_exist_says_so(
    connection: ConnectionSettings, unique: str, end: int | None
) -> None:
    with pytest.raises(StreamNotFound, match=f"{unique}-missing"):
        await read_to_end(connection, f"{unique}-missing", lambda _first, _messages: None, end=end)
