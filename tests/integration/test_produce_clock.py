"""`superticks produce` stamps ticks with the wall clock by default (so lag in seconds and
replay --from/--to with real times work), or with the simulated clock on request."""

from __future__ import annotations

import asyncio
import time

import pytest

from partitioning.simulator import DEFAULT_START_US
from superticks.cli.main import main
from superticks.settings import ConnectionSettings
from workers.replay import replay, replay_all

pytestmark = pytest.mark.cluster


async def _produce(super_stream: str, *flags: str) -> None:
    argv = ["produce", "--super-stream", super_stream, "--count", "300", "--symbols", "5", *flags]
    assert await asyncio.to_thread(main, argv) == 0


async def test_ticks_carry_the_wall_clock_by_default_and_replay_finds_them_by_real_time(
    connection: ConnectionSettings, super_stream: str
) -> None:
    before = time.time_ns() // 1000
    await _produce(super_stream)
    after = time.time_ns() // 1000
    result = await replay(connection, super_stream, start_us=before, end_us=after + 1)
    assert result.kept == 300


async def test_the_simulated_clock_stays_available(
    connection: ConnectionSettings, super_stream: str
) -> None:
    before = time.time_ns() // 1000
    await _produce(super_stream, "--clock", "sim")
    everything = await replay_all(connection, super_stream)
    stamps = [t.timestamp_us for ticks in everything.ticks.values() for t in ticks]
    assert len(stamps) == 300
    assert all(DEFAULT_START_US <= ts < DEFAULT_START_US + 60_000_000 for ts in stamps)
    assert (await replay(connection, super_stream, start_us=before)).kept == 0
