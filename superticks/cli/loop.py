"""`run(coro)`: every command's way onto the event loop (uvloop).

Why not `uvloop.run(coro)` itself: on Python 3.11, `asyncio.Runner.run` installs a SIGINT
handler that holds the main task (a `functools.partial`) and, when the coroutine has returned,
reads the handler back twice through `signal.getsignal`/`signal.signal`. Each turns the handler
into a `signal.Handlers` enum member; the lookup fails, and its error message is formatted with
`repr(handler)`, which formats the finished task and so `repr()` of the coroutine's whole
result, twice, to be thrown away. `superticks replay` of 1,000,000 ticks spent 3.5 s of its
11.5 s there (py-spy). Here the task returns None and the result travels beside it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run"]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a new uvloop event loop and return its result (its
    exception propagates; Ctrl-C cancels it as `asyncio.run` does)."""
    import uvloop

    box: list[T] = []

    async def main() -> None:
        box.append(await coro)

    uvloop.run(main())
    return box[0]
