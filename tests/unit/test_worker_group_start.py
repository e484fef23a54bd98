"""A fault bench's worker group that does not start says why: `WorkerGroup.wait_handling`
gives up at once when a worker exited, and `why_not_handling` names the partitions nobody
handled, the workers without a handled log, and each worker's exit status and log's end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from bench.workergroup import WorkerGroup


class _Exited:
    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode


def _group(tmp_path: Path, exits: dict[str, int | None]) -> WorkerGroup:
    group = WorkerGroup("s", "g", tmp_path)
    group.handled_dir.mkdir(parents=True)
    group.processes = cast(Any, {name: _Exited(code) for name, code in exits.items()})
    return group


async def test_a_worker_that_exited_ends_the_wait_at_once(tmp_path: Path) -> None:
    group = _group(tmp_path, {"w1": None, "w2": 2})

    async with asyncio.timeout(10):  # not the 600 s it would wait for a partition
        assert await group.wait_handling(3, timeout_s=600.0) is False


def test_why_not_handling_names_idle_partitions_missing_logs_and_exits(tmp_path: Path) -> None:
    group = _group(tmp_path, {"w1": None, "w2": 2})
    (group.handled_dir / "w1.handled").write_bytes(b"1 0 AAPL 0 1 2\n")
    (tmp_path / "w2.log").write_text("start\nStreamUnavailable: s-0 has no leader\n")

    why = group.why_not_handling(3)

    assert "partitions never handled: [0, 2]" in why
    assert "workers without a handled log: ['w2']" in why
    assert "w2 (exit 2)" in why
    assert "| StreamUnavailable: s-0 has no leader" in why
    assert "w1 (exit None)" in why
