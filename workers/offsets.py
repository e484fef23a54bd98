"""The group worker's pure offset policy: which redelivered messages are duplicates (`fence`)
and when a processed offset is due to be stored (`store_due`)."""

from __future__ import annotations

__all__ = ["fence", "store_due"]


def fence(first_offset: int, count: int, last_processed: int) -> int:
    """How many of a chunk's `count` messages (offsets from `first_offset`) are duplicates:
    those at or below `last_processed` (-1: nothing processed)."""
    return max(0, min(count, last_processed + 1 - first_offset))


def store_due(
    processed: int,
    stored: int,
    now_ms: float,
    stored_at_ms: float,
    every_ticks: int,
    every_ms: int,
) -> bool:
    """Whether to store `processed` now: something new was processed since `stored`, and
    either `every_ticks` offsets were processed or `every_ms` passed since the last store."""
    if processed <= stored:
        return False
    return processed - stored >= every_ticks or now_ms - stored_at_ms >= every_ms
