"""Worker-side logic: what a single-active-consumer worker computes from the ticks it consumes.

:mod:`workers.vwap` keeps exact per-symbol VWAP, high, low and volume aggregates.
:mod:`workers.group` is a worker of a consumer group on the super stream (SAC per partition,
stored offsets, duplicate fencing, dead letters); :mod:`workers.handlers` the tick handlers it
feeds, :mod:`workers.offsets` its offset fencing and store policy, :mod:`workers.deadletter` its
dead-letter records and writer, and :mod:`workers.metrics` its Prometheus metrics.
:mod:`workers.reader` is a plain (non-group) reader from a chosen offset, optionally of some
symbols (server-side filtered, then post-filtered). :mod:`workers.replay` reads back a time
range and symbols with a definite end, for backtests and audits. :mod:`workers.gc_tuning` sets
a worker process's garbage collector for throughput.
"""

from workers.gc_tuning import tune_for_throughput
from workers.group import GroupWorker, WorkerConfig, WorkerState, run_worker
from workers.handlers import (
    Closing,
    CountHandler,
    CountingHandler,
    MessageHandler,
    PartitionAssigning,
    PartitionReleasing,
    PerTick,
    PrintHandler,
    Settling,
    TickHandler,
    VwapHandler,
    handler_named,
)
from workers.metrics import SymbolCollector, SymbolFigures, WorkerMetrics
from workers.reader import ReaderMetrics, ReaderState, TickReader
from workers.replay import ReplayResult, replay, replay_all, replay_symbols, replay_time_range
from workers.vwap import RunningVwap, SymbolAggregate, aggregate_by_symbol

__all__ = [
    "Closing",
    "CountHandler",
    "CountingHandler",
    "GroupWorker",
    "MessageHandler",
    "PartitionAssigning",
    "PartitionReleasing",
    "PerTick",
    "PrintHandler",
    "ReaderMetrics",
    "ReaderState",
    "ReplayResult",
    "RunningVwap",
    "Settling",
    "SymbolAggregate",
    "SymbolCollector",
    "SymbolFigures",
    "TickHandler",
    "TickReader",
    "VwapHandler",
    "WorkerConfig",
    "WorkerMetrics",
    "WorkerState",
    "aggregate_by_symbol",
    "handler_named",
    "replay",
    "replay_all",
    "replay_symbols",
    "replay_time_range",
    "run_worker",
    "tune_for_throughput",
]
