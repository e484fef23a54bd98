"""The README's 3:47 PM story runs as written (with this test's own stream names)."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from partitioning.topology import delete_topology
from superticks.settings import ConnectionSettings
from superticks.streams import Admin
from trading.strategy import checkpoint_stream

pytestmark = pytest.mark.cluster

README = Path(__file__).resolve().parents[2] / "README.md"


def story_commands() -> list[list[str]]:
    text = README.read_text()
    section = text[text.index("### The 3:47 PM story") :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


@pytest.fixture
async def story(connection: ConnectionSettings, unique: str) -> AsyncIterator[str]:
    yield unique
    await delete_topology(connection, unique)
    async with Admin(connection) as admin:
        # the strategy's checkpoint stream is made when a partition becomes its worker's
        for stream in (f"{unique}_audit", checkpoint_stream(f"{unique}_audit"), f"{unique}-dlq"):
            await admin.delete_stream(stream)


async def run(argv: list[str]) -> str:
    assert argv[0] == "superticks"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "superticks", *argv[1:],
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(240):
        out, err = await process.communicate()
    assert process.returncode == 0, f"{shlex.join(argv)}: {err.decode()[-2000:]}"
    return out.decode()


async def test_the_347_pm_story_runs(story: str) -> None:
    names = {"story": story, "story_audit": f"{story}_audit"}
    commands = [[names.get(a, a) for a in argv] for argv in story_commands()]
    assert [c[1] for c in commands] == ["topology", "produce", "worker", "audit", "audit"]
    outputs = [await run(argv) for argv in commands]
    day, moment = outputs[3], outputs[4]
    assert "as of 2026-11-25T20:47:00.000000Z" in day
    assert "since 2026-11-25T14:30:00.000000Z: realised" in day
    assert " 0 invalid" in day
    trades = [line for line in moment.splitlines() if line.startswith("2026-11-25T20:47:00.")]
    assert trades, moment
    assert "since 2026-11-25T20:47:00.000000Z: realised" in moment
    summary = json.loads(await run([*commands[4], "--json"]))
    assert len(summary["trades"]) == len(trades)
    assert summary["pnl_impact"]["total_pnl"] is not None
