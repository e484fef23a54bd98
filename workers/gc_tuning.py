"""Garbage-collector settings for a process whose work is a stream of short-lived objects.

A worker allocates a dict per tick (the JSON parser's) and a `Tick`, hundreds per chunk, all
freed by reference counting the moment the chunk is handled: they never form cycles, yet every
700 container allocations CPython's cyclic collector walks the young generation, and every
tenth of those the next one, over the long-lived objects of the process (modules, clients,
aggregates). Measured on decode + VWAP of 100,000 ticks: ~11% of the time went to collections.

`tune_for_throughput()` moves everything alive at start-up into the permanent generation
(`gc.freeze()`: never scanned again) and collects the young generation every 50,000
allocations instead of 700. Cyclic garbage is still collected, just less often; acyclic garbage
(the ticks) is freed at once as before, so memory does not grow.
"""

from __future__ import annotations

import gc as _gc

__all__ = ["YOUNG_THRESHOLD", "tune_for_throughput"]

YOUNG_THRESHOLD = 50_000


def tune_for_throughput() -> None:
    """Freeze the objects alive now and make young collections rare (call once per process,
    after start-up, before the hot path)."""
    _gc.freeze()
    _, older, oldest = _gc.get_threshold()
    _gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
