"""Worker-side logic: what a single-active-consumer worker computes from the ticks it consumes.

:mod:`workers.vwap` keeps exact per-symbol VWAP, high, low and volume aggregates.
"""

from workers.vwap import RunningVwap, SymbolAggregate, aggregate_by_symbol

__all__ = [
    "RunningVwap",
    "SymbolAggregate",
    "aggregate_by_symbol",
]
