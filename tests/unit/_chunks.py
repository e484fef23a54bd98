"""A delivered chunk of ticks for the worker's unit tests."""

from __future__ import annotations

from partitioning.codec import format_body, frame_message
from superticks.streams import Chunk


def chunk_of_ticks(first: int, count: int) -> Chunk:
    """`count` AAPL ticks of partition ``ticks-0`` at offsets `first`...; sequence = offset."""
    messages = [
        frame_message(
            "AAPL",
            format_body(
                "AAPL", "XNAS", "1.5", "1", "1.6", "1", "1.55", "1", "10", 1_790_000_000_000_000, i
            ),
        )
        for i in range(first, first + count)
    ]
    return Chunk("ticks-0", first, 0, messages, count)
