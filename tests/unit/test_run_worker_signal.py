"""A worker's stop is prompt: `run_worker` stops its worker as soon as SIGTERM arrives, not at
its next progress report (the worker behind it a fake with the lifecycle `run_worker` drives:
start, wait, stop), and an admin call made while the worker closes fails at once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any, cast

import pytest

from superticks.errors import ConnectionFailed
from workers.group import GroupWorker, WorkerConfig, WorkerState, run_worker
from workers.handlers import CountHandler


class _FakeWorker:
    """Started at once; runs until stopped; records when its stop began."""

    started = asyncio.Event()
    stop_called_at: float | None = None

    def __init__(self, config: WorkerConfig, handler: object, **_: object) -> None:
        self.state = WorkerState.NEW
        self.failure: BaseException | None = None
        self._done = asyncio.Event()

    async def start(self) -> None:
        self.state = WorkerState.RUNNING
        type(self).started.set()

    async def wait(self) -> None:
        await self._done.wait()

    async def stop(self) -> None:
        if type(self).stop_called_at is None:
            type(self).stop_called_at = time.monotonic()
        self.state = WorkerState.STOPPED
        self._done.set()


async def test_sigterm_stops_the_worker_at_once_not_at_the_next_progress_report() -> None:
    _FakeWorker.started = asyncio.Event()
    _FakeWorker.stop_called_at = None
    reports: list[int] = []
    task = asyncio.create_task(
        run_worker(
            WorkerConfig(group="g"),
            CountHandler(),
            progress=lambda _worker: reports.append(1),
            progress_every_s=60.0,  # a report a minute: the signal must not wait for it
            worker_type=cast(Any, _FakeWorker),
        )
    )
    async with asyncio.timeout(10):
        await _FakeWorker.started.wait()
        await asyncio.sleep(0.05)  # into the wait between two reports
        sent = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)  # run_worker's handler takes it
        worker = await task
    assert worker.state is WorkerState.STOPPED
    assert _FakeWorker.stop_called_at is not None
    assert _FakeWorker.stop_called_at - sent < 5.0  # not the 60 s to the next report


async def test_an_admin_call_once_the_worker_closed_its_admin_fails_at_once() -> None:
    # a deactivation the broker sends while the worker closes must not wait out the admin's
    # timeout (2 s) for an answer on a connection that is going away
    worker = GroupWorker(WorkerConfig(group="g"), CountHandler())
    worker._admin_closed = True
    never = asyncio.get_running_loop().create_future()

    async def call() -> None:
        await never

    async with asyncio.timeout(1):
        with pytest.raises(ConnectionFailed, match="closed its admin connection"):
            await worker._admin_call(call)
