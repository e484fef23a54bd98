"""`superticks produce` stamps ticks with the wall clock by default (so lag in seconds and
replay --from/--to with real times work), or with the simulated clock on request."""

from __future__ import annotations

import asyncio
import sys
import time
from asyncio.subprocess import PIPE

import pytest

from partitioning.simulator import DEFAULT_START_US
from superticks.settings import ConnectionSettings
from workers.replay import replay, replay_all

pytestmark = pytest.mark.cluster


async def _produce(super_stream: str, *flags: str) -> None:
    """`superticks produce` as its own process (it installs signal handlers)."""
    argv = ["produce", "--super-stream", super_stream, "--count", "300", "--symbols", "5", *flags]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "superticks", *argv, stdout=PIPE, stderr=PIPE
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, (out + err).decode()


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
