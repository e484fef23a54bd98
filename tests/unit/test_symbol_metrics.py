"""Specification of the workers' per-symbol Prometheus figures: `VwapHandler.figures()` and
`SymbolCollector` (read at scrape time, nothing per tick)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from partitioning.codec import Tick
from workers.handlers import VwapHandler
from workers.metrics import SymbolCollector


def tick(symbol: str, price: str, size: str = "100") -> Tick:
    return Tick(
        symbol=symbol,
        exchange="XNAS",
        bid_price=price,
        bid_size="1",
        ask_price=price,
        ask_size="1",
        last_price=price,
        last_size=size,
        volume="0",
        timestamp_us=1_700_000_000_000_000,
        sequence_number=0,
        version=1,
    )


async def test_figures_give_each_symbols_aggregate_and_last_price() -> None:
    handler = VwapHandler()
    await handler.handle_batch(0, [0, 1, 2], [tick("A", "10"), tick("B", "5"), tick("A", "11")])
    await handler.handle_batch(1, [0], [tick("C", "7", "3")])

    aggregates, last = handler.figures()

    assert {s: a.count for s, a in aggregates.items()} == {"A": 2, "B": 1, "C": 1}
    assert str(aggregates["A"].vwap) == "10.5"
    assert last == {"A": "11", "B": "5", "C": "7"}


async def test_a_symbol_absent_from_the_last_chunk_keeps_its_previous_last_price() -> None:
    handler = VwapHandler()
    await handler.handle_batch(0, [0, 1], [tick("A", "10"), tick("B", "5")])
    handler.figures()
    await handler.handle_batch(0, [2], [tick("A", "12")])

    _, last = handler.figures()

    assert last == {"A": "12", "B": "5"}


async def test_a_retried_chunk_is_counted_once_in_the_figures() -> None:
    handler = VwapHandler()
    chunk = [tick("A", "10"), tick("A", "20")]
    await handler.handle_batch(0, [0, 1], chunk)
    await handler.handle_batch(0, [0, 1], chunk)

    aggregates, _ = handler.figures()

    assert aggregates["A"].count == 2


async def test_the_collector_exports_ticks_volume_vwap_and_last_price_per_group_and_symbol() -> (
    None
):
    handler = VwapHandler()
    await handler.handle_batch(0, [0, 1], [tick("A", "10", "1"), tick("A", "13", "2")])
    registry = CollectorRegistry()
    registry.register(SymbolCollector("g1", handler))

    page = generate_latest(registry).decode()

    assert 'superticks_symbol_ticks_total{group="g1",symbol="A"} 2.0' in page
    assert 'superticks_symbol_volume_total{group="g1",symbol="A"} 3.0' in page
    assert 'superticks_symbol_vwap{group="g1",symbol="A"} 12.0' in page
    assert 'superticks_symbol_last_price{group="g1",symbol="A"} 13.0' in page
