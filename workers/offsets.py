"""The group worker's pure offset policy: which redelivered messages are duplicates (`fence`),
what was processed after a chunk (`processed_after`) and when a processed offset is due to be
stored (`store_due`)."""

from __future__ import annotations

__all__ = ["fence", "processed_after", "store_due"]


def fence(first_offset: int, count: int, last_processed: int) -> int:
    """How many of a chunk's `count` messages (offsets from `first_offset`) are duplicates:
    those at or below `last_processed` (-1: nothing processed)."""
    return max(0, min(count, last_processed + 1 - first_offset))


def processed_after(last_processed: int, first_offset: int, count: int) -> int:
    """The last processed offset once a chunk's `count` messages from `first_offset` were
    handled: it only ever grows. A chunk wholly before `last_processed` (the broker may resume
    a newly active member thousands of offsets before the offset it answered, and the chunk
    arrives with nothing left after the duplicates are cut) must not move it back, or every
    later redelivered message would pass the fence and be handled twice."""
    return max(last_processed, first_offset + count - 1)


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
