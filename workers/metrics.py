"""The Prometheus metrics of one group worker, in a registry of its own.

Every worker owns a `CollectorRegistry` (tests run many workers in one process, and the
default registry refuses a metric registered twice). `superticks worker --metrics-port P`
serves it with `prometheus_client.start_http_server(P, registry=...)`.

==============================================================  ================================
metric                                                          meaning
==============================================================  ================================
``superticks_consumed_total{group,partition}``                  ticks handed to the handler
``superticks_partition_active{group,partition,worker}``         1 while this worker is active
``superticks_committed_offset{group,partition}``                last offset stored by the worker
``superticks_consumer_lag_messages{group,partition}``           partition's last offset minus
                                                                the last processed one
``superticks_consumer_lag_seconds{group,partition}``            now minus the timestamp of the
                                                                last processed tick (0 when
                                                                caught up; for a handler of
                                                                undecoded chunks, such as the
                                                                VWAP one: the time its chunk
                                                                was stored)
``superticks_handler_seconds``                                  duration of one handler call
``superticks_dead_letters_total{group}``                        records written to the DLQ
``superticks_duplicates_dropped_total{group,partition}``        redelivered offsets skipped
``superticks_symbol_ticks_total{group,symbol}``                 ticks of the symbol this worker
                                                                handled (VWAP handler only)
``superticks_symbol_volume_total{group,symbol}``                their summed size
``superticks_symbol_vwap{group,symbol}``                        their VWAP
``superticks_symbol_last_price{group,symbol}``                  the symbol's last price
==============================================================  ================================

Updates happen once per chunk (not per tick), so they cost nothing measurable on the hot path.
The per-symbol figures are read at scrape time (`SymbolCollector`, a custom collector over the
handler's `figures()`), so they cost nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from workers.vwap import SymbolAggregate

__all__ = ["PartitionMetrics", "SymbolCollector", "SymbolFigures", "WorkerMetrics"]

_HANDLER_BUCKETS = (
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


@dataclass(slots=True)
class PartitionMetrics:
    """The labelled children of one partition, looked up once."""

    consumed: Counter
    active: Gauge
    committed: Gauge
    lag_messages: Gauge
    lag_seconds: Gauge
    duplicates: Counter


class WorkerMetrics:
    """The metrics of one worker (`group`, `worker`), registered in `registry` (a new one by
    default)."""

    def __init__(self, group: str, worker: str, registry: CollectorRegistry | None = None) -> None:
        self.group = group
        self.worker = worker
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "superticks_consumed_total",
            "Ticks handed to the worker's handler.",
            ["group", "partition"],
            registry=r,
        )
        self.active = Gauge(
            "superticks_partition_active",
            "1 while this worker is the partition's active consumer, else 0.",
            ["group", "partition", "worker"],
            registry=r,
        )
        self.committed = Gauge(
            "superticks_committed_offset",
            "The last offset the worker stored for the group (last processed tick).",
            ["group", "partition"],
            registry=r,
        )
        self.lag_messages = Gauge(
            "superticks_consumer_lag_messages",
            "The partition's last offset minus the last processed offset.",
            ["group", "partition"],
            registry=r,
        )
        self.lag_seconds = Gauge(
            "superticks_consumer_lag_seconds",
            "Now minus the timestamp of the last processed tick, or of its chunk for a handler "
            "of undecoded chunks (0 when caught up).",
            ["group", "partition"],
            registry=r,
        )
        self.handler_seconds = Histogram(
            "superticks_handler_seconds",
            "Duration of one handler call (one chunk's ticks).",
            buckets=_HANDLER_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "superticks_dead_letters_total",
            "Messages written to the dead-letter stream.",
            ["group"],
            registry=r,
        ).labels(group=group)
        self.duplicates = Counter(
            "superticks_duplicates_dropped_total",
            "Redelivered offsets at or below the last processed one, skipped.",
            ["group", "partition"],
            registry=r,
        )

    def partition(self, index: int) -> PartitionMetrics:
        """The children of partition `index` (creating them makes them visible at 0)."""
        p = str(index)
        g = self.group
        return PartitionMetrics(
            consumed=self.consumed.labels(group=g, partition=p),
            active=self.active.labels(group=g, partition=p, worker=self.worker),
            committed=self.committed.labels(group=g, partition=p),
            lag_messages=self.lag_messages.labels(group=g, partition=p),
            lag_seconds=self.lag_seconds.labels(group=g, partition=p),
            duplicates=self.duplicates.labels(group=g, partition=p),
        )


class SymbolFigures(Protocol):
    """What `SymbolCollector` reads (`VwapHandler` is one): every symbol's aggregate and last
    price, callable from the scrape's thread."""

    def figures(self) -> tuple[dict[str, SymbolAggregate], dict[str, str]]: ...


class SymbolCollector(Collector):
    """Per-symbol figures of one worker of `group`, read from `source` at scrape time."""

    def __init__(self, group: str, source: SymbolFigures) -> None:
        self._group = group
        self._source = source

    def collect(self) -> Iterator[Metric]:
        aggregates, last_prices = self._source.figures()
        labels = ["group", "symbol"]
        ticks = CounterMetricFamily(
            "superticks_symbol_ticks", "Ticks of the symbol this worker handled.", labels=labels
        )
        volume = CounterMetricFamily(
            "superticks_symbol_volume", "Summed size of those ticks.", labels=labels
        )
        vwap = GaugeMetricFamily(
            "superticks_symbol_vwap", "Volume-weighted average price of those ticks.", labels=labels
        )
        last = GaugeMetricFamily(
            "superticks_symbol_last_price",
            "The symbol's last price in the last chunk handled before the scrape.",
            labels=labels,
        )
        g = self._group
        for symbol, a in aggregates.items():
            ticks.add_metric([g, symbol], a.count)
            volume.add_metric([g, symbol], float(a.volume))
            if a.vwap is not None:
                vwap.add_metric([g, symbol], float(a.vwap))
        for symbol, price in last_prices.items():
            try:
                last.add_metric([g, symbol], float(price))
            except ValueError:
                continue  # a price that is no number never got past the VWAP anyway
        yield from (ticks, volume, vwap, last)
