"""The aggregate bench's venue feeds: the simulator's ticks are made before the timed window
and stamped with the wall clock as each batch is sent."""

from __future__ import annotations

import msgspec

from bench.trading import _feed_pool
from partitioning.codec import decode_body
from partitioning.model import format_timestamp_us
from partitioning.simulator import MarketSimulator

AT_US = 1_796_173_038_245_531


def test_a_pooled_tick_stamped_at_send_is_the_simulated_tick_with_that_timestamp() -> None:
    pool = _feed_pool("NYSE", 10, 200)
    simulated = MarketSimulator(10, exchanges=["NYSE"], seed=len("NYSE")).batch(200)
    stamp = format_timestamp_us(AT_US).encode()

    for (symbol, head, tail), (expected_symbol, body) in zip(pool, simulated, strict=True):
        tick = decode_body(head + stamp + tail)
        assert symbol == expected_symbol == tick.symbol
        assert tick == msgspec.structs.replace(decode_body(body), timestamp_us=AT_US)
