"""What every owned, long-running task loop of ours needs from asyncio: `checkpoint()`.

On Python 3.11, `asyncio.wait_for` returns the awaited result instead of raising
`CancelledError` when a cancellation arrives in the same loop iteration as that result
(bpo-42130, fixed by the rewrite of wait_for in 3.12). The cancelled task then runs on, and
its owner, awaiting it in `stop()`, waits forever: seen in CI as a worker whose offset-storing
loop outlived its cancellation while rstream's request (a `wait_for` inside rstream) completed.
Our own code uses `asyncio.timeout` instead (ruff bans `asyncio.wait_for`); rstream's cannot
be changed, so every loop of an owned task calls `checkpoint()` once per round, which raises
a cancellation that was requested but lost.
"""

from __future__ import annotations

import asyncio

__all__ = ["checkpoint"]


def checkpoint() -> None:
    """Raise `CancelledError` if the current task was asked to cancel and that request was
    lost on the way (see the module docstring); a no-op otherwise.

    Call it at the top of each round of a task's loop, never in cleanup code (an `except` or
    `finally` that runs because of a cancellation: it would stop that cleanup)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
