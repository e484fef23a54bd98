"""One live producer per name: two producers started at the same instant under one name (two
feeds, or a restart that overlaps the old process) must not share publishing ids, or broker
deduplication drops what the second sends and confirms it. Exactly one runs; the other is
refused with `ProducerNameInUse` before it sends anything; nothing confirmed is lost."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from partitioning.codec import format_body
from partitioning.producer import Producer, ProducerConfig
from superticks.errors import ProducerNameInUse
from superticks.settings import ConnectionSettings
from superticks.streams import Admin

pytestmark = pytest.mark.cluster

CLI = "import sys; from superticks.cli.main import main; sys.exit(main())"


def _ticks(count: int, tag: str) -> list[tuple[str, bytes]]:
    return [
        (
            f"{tag}{i % 20}",
            format_body(
                f"{tag}{i % 20}", "NYSE", "1.00", "1", "1.02", "1", "1.01", "1", "100",
                1_764_072_000_000_000 + i, i // 20,
            ),
        )
        for i in range(count)
    ]  # fmt: skip


async def _stored(connection: ConnectionSettings, super_stream: str) -> int:
    async with Admin(connection) as admin:
        return sum([await admin.last_offset(s) + 1 for s in await admin.partitions(super_stream)])


async def test_two_producers_started_at_once_under_one_name_one_runs_the_other_is_refused(
    connection: ConnectionSettings, unique: str, super_stream: str
) -> None:
    config = ProducerConfig(connection=connection, super_stream=unique, name="feed")
    producers = [Producer(config), Producer(config)]
    outcomes = await asyncio.gather(*(p.start() for p in producers), return_exceptions=True)
    try:
        started = [p for p, outcome in zip(producers, outcomes, strict=True) if outcome is None]
        refused = [o for o in outcomes if isinstance(o, ProducerNameInUse)]
        assert len(started) == 1, outcomes
        assert len(refused) == 1, outcomes
        assert "'feed'" in str(refused[0])
        assert "--name" in str(refused[0])
        for producer in started:
            await producer.send_batch(_ticks(5_000, "A"))
            await producer.flush(30)
        confirmed = sum(p.metrics.confirmed for p in started)
    finally:
        for producer in producers:
            await producer.stop()
    assert confirmed == 5_000
    assert await _stored(connection, unique) == confirmed


async def test_the_name_frees_when_its_producer_stops_and_ids_continue(
    connection: ConnectionSettings, unique: str, super_stream: str
) -> None:
    config = ProducerConfig(connection=connection, super_stream=unique, name="feed")
    async with Producer(config) as first:
        await first.send_batch(_ticks(1_000, "A"))
        await first.flush(30)
        with pytest.raises(ProducerNameInUse):
            await Producer(config.model_copy(update={"name_wait_s": 0.5})).start()
    async with Producer(config) as restarted:
        await restarted.send_batch(_ticks(1_000, "B"))
        await restarted.flush(30)
    assert await _stored(connection, unique) == 2_000


async def test_the_same_name_on_another_super_stream_is_free(
    connection: ConnectionSettings, unique: str, new_super_stream: object
) -> None:
    make = new_super_stream  # type: ignore[assignment]
    first, second = await make(1), await make(1)  # type: ignore[operator]
    async with (
        Producer(ProducerConfig(connection=connection, super_stream=first, name="feed")),
        Producer(ProducerConfig(connection=connection, super_stream=second, name="feed")),
    ):
        pass


def test_two_produce_commands_at_once_with_default_flags_lose_nothing(
    connection: ConnectionSettings, super_stream: str
) -> None:
    command = [
        sys.executable, "-c", CLI, "produce", "--super-stream", super_stream,
        "--count", "20000", "--rate", "5000", "--json",
    ]  # fmt: skip
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        results = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    finally:
        for run in runs:
            run.kill()
            run.communicate()
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, _, err in results if code == 2)
    assert "producer name 'superticks' is in use" in refused
    summary = json.loads(next(out for code, out, _ in results if code == 0).splitlines()[-1])
    assert summary["confirmed"] == 20_000
    assert asyncio.run(_stored(connection, super_stream)) == 20_000


def test_a_producer_restarted_after_a_kill_gets_its_name_back_and_continues(
    connection: ConnectionSettings, super_stream: str
) -> None:
    command = [
        sys.executable, "-c", CLI, "produce", "--super-stream", super_stream,
        "--rate", "2000", "--duration", "60", "--name", "feed",
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        assert run.stderr is not None
        assert run.stderr.readline().startswith("sent ")  # it holds the name and sends
        run.kill()
        run.communicate()

    async def restart() -> int:
        config = ProducerConfig(connection=connection, super_stream=super_stream, name="feed")
        before = await _stored(connection, super_stream)
        async with Producer(config) as producer:
            await producer.send_batch(_ticks(1_000, "B"))
            await producer.flush(30)
        return await _stored(connection, super_stream) - before

    assert asyncio.run(restart()) == 1_000
