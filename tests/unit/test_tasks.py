"""checkpoint(): a cancellation that was requested but lost inside a task (Python 3.11's
wait_for, inside rstream) is raised at the task's next round."""

from __future__ import annotations

import asyncio
import contextlib

from superticks.tasks import checkpoint


async def _loop_that_loses_one_cancellation(rounds: list[int]) -> None:
    while True:
        checkpoint()
        rounds.append(len(rounds))
        # what wait_for does in the race: the result wins, the request is lost
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.01)


async def test_a_lost_cancellation_is_raised_at_the_next_checkpoint() -> None:
    rounds: list[int] = []
    task = asyncio.create_task(_loop_that_loses_one_cancellation(rounds))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.wait([task], timeout=2)
    assert task.cancelled()


async def test_a_task_not_asked_to_cancel_runs_on() -> None:
    rounds: list[int] = []
    task = asyncio.create_task(_loop_that_loses_one_cancellation(rounds))
    await asyncio.sleep(0.1)
    assert not task.done()
    assert len(rounds) > 3
    task.cancel()
    await asyncio.wait([task], timeout=2)
    assert task.cancelled()
