"""Handlers that do more than `TickHandler` asks: a `Settling` one (effects complete after its
call returned) bounds the offsets the worker stores; a `MessageHandler` one takes undecoded
messages and what it refuses is dead-lettered."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from _streams import SYMBOLS, eventually, publish_ticks, read_dead_letters, ticks_of_every_symbol

from partitioning.codec import Tick, split_message
from superticks.settings import ConnectionSettings
from superticks.streams import Admin
from workers.group import GroupWorker, WorkerConfig
from workers.handlers import CountingHandler, MessageHandler, Settling

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(60)]

TICKS = 10 * len(SYMBOLS)


class HeldBack(CountingHandler):
    """Counts ticks; its effects from offset `hold` on stay unsettled until `settle()`."""

    def __init__(self, hold: int) -> None:
        super().__init__()
        self.hold: int | None = hold
        self.settled: list[int] = []

    def unsettled(self, partition: int) -> int | None:
        return self.hold

    async def settle(self, partition: int) -> None:
        self.settled.append(partition)
        self.hold = None


async def one_partition_of_ticks(
    connection: ConnectionSettings, new_super_stream: Callable[[int], Awaitable[str]]
) -> tuple[str, str]:
    super_stream = await new_super_stream(1)
    await publish_ticks(connection, super_stream, ticks_of_every_symbol(0, TICKS // len(SYMBOLS)))
    return super_stream, f"{super_stream}-0"


def eager(connection: ConnectionSettings, super_stream: str) -> WorkerConfig:
    return WorkerConfig(
        connection=connection,
        super_stream=super_stream,
        group=f"{super_stream}-g",
        name="w",
        lag_interval_s=0,
        store_every_ticks=1,
        store_every_ms=1,
        max_unstored_ms=60_000,
    )


async def test_no_offset_is_stored_past_what_a_settling_handler_has_not_settled(
    connection: ConnectionSettings, new_super_stream: Callable[[int], Awaitable[str]]
) -> None:
    super_stream, partition = await one_partition_of_ticks(connection, new_super_stream)
    handler = HeldBack(hold=100)
    assert isinstance(handler, Settling)
    config = eager(connection, super_stream)
    worker = GroupWorker(config, handler)
    try:
        await worker.start()
        await eventually(lambda: len(handler) == TICKS, "every tick handled")
        async with Admin(connection) as admin:
            await asyncio.sleep(0.5)  # it stores every ms: anything past 99 would show by now
            assert await admin.stored_offset(partition, config.group) == 99
    finally:
        await worker.abort()


async def test_a_stopping_worker_settles_its_handler_then_stores_everything(
    connection: ConnectionSettings, new_super_stream: Callable[[int], Awaitable[str]]
) -> None:
    super_stream, partition = await one_partition_of_ticks(connection, new_super_stream)
    handler = HeldBack(hold=100)
    config = eager(connection, super_stream)
    async with GroupWorker(config, handler):
        await eventually(lambda: len(handler) == TICKS, "every tick handled")
    assert handler.settled == [0]
    async with Admin(connection) as admin:
        assert await admin.stored_offset(partition, config.group) == TICKS - 1


class Refusing:
    """Takes messages undecoded; refuses those whose symbol is S03."""

    def __init__(self) -> None:
        self.taken: list[int] = []

    async def handle_messages(
        self, partition: int, first_offset: int, messages: Sequence[bytes]
    ) -> list[tuple[int, str]]:
        refused = []
        for offset, message in enumerate(messages, start=first_offset):
            if split_message(message)[0]["symbol"] == "S03":
                refused.append((offset, "S03 is not wanted here"))
            else:
                self.taken.append(offset)
        return refused

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        raise AssertionError("a MessageHandler is never given decoded ticks")


async def test_a_message_handler_gets_undecoded_messages_and_its_refusals_are_dead_lettered(
    connection: ConnectionSettings, new_super_stream: Callable[[int], Awaitable[str]]
) -> None:
    super_stream, _ = await one_partition_of_ticks(connection, new_super_stream)
    handler = Refusing()
    assert isinstance(handler, MessageHandler)
    refused = TICKS // len(SYMBOLS)
    async with GroupWorker(eager(connection, super_stream), handler) as worker:
        await eventually(lambda: len(handler.taken) == TICKS - refused, "all but S03 taken")
        await eventually(lambda: worker.dead_letters == refused, "S03 dead-lettered")
    letters = await read_dead_letters(connection, f"{super_stream}-dlq", refused)
    assert {letter["error"] for letter in letters} == {"S03 is not wanted here"}
    assert sorted(handler.taken + [letter["offset"] for letter in letters]) == list(range(TICKS))


@pytest.mark.parametrize("handler", ["vwap", "count", "verify"])
async def test_the_worker_command_exits_0_after_draining_with_each_plain_handler(
    connection: ConnectionSettings,
    new_super_stream: Callable[[int], Awaitable[str]],
    tmp_path: Path,
    handler: str,
) -> None:
    super_stream, _ = await one_partition_of_ticks(connection, new_super_stream)
    record = ["--record-dir", str(tmp_path)] if handler == "verify" else []
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; from superticks.cli.main import main; sys.exit(main())",
        "worker", "--group", f"{super_stream}-g", "--name", "w", "--handler", handler, *record,
        "--super-stream", super_stream, "--exit-when-idle", "1", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await worker.communicate()

    assert worker.returncode == 0, err.decode()[-2000:]
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert (summary["state"], summary["consumed"]) == ("stopped", TICKS)
