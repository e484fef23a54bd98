"""The latency probe records each tick once, in the window its creation stamp falls into."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bench.probe import LatencyProbe, Window
from partitioning.codec import Tick


def _tick(ts: int) -> Tick:
    return Tick("AAPL", "NYSE", "1.00", "1", "1.01", "1", "1.00", "1", "1", ts, 0, 1)


class _Inner:
    def __init__(self) -> None:
        self.seen = 0

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        self.seen += len(ticks)


async def test_ticks_are_recorded_in_their_window_with_their_age() -> None:
    now = time.time_ns() // 1000
    inner = _Inner()
    probe = LatencyProbe(inner)
    probe.open(Window("a", now - 10_000_000, now - 5_000_000))
    probe.open(Window("b", now - 5_000_000, now + 1))
    ticks = [_tick(now - 8_000_000), _tick(now - 1_000_000), _tick(now - 20_000_000)]
    await probe.handle_batch(0, [0, 1, 2], ticks)
    a, b = probe.window("a"), probe.window("b")
    assert a is not None
    assert b is not None
    assert (a.count, b.count) == (1, 1)  # the third tick is in no window
    assert 8_000_000 <= a.histogram.max < 8_100_000
    assert 1_000_000 <= b.histogram.max < 1_100_000
    assert inner.seen == probe.handled == 3
