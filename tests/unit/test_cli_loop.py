"""`superticks.cli.loop.run`: a command's coroutine runs on the event loop and hands back its
result, which is never formatted (on Python 3.11 `uvloop.run` formats `repr()` of the result
twice when it restores the SIGINT handler: seconds for a replay of a million ticks)."""

from __future__ import annotations

import asyncio

import pytest

from superticks.cli.loop import run


class _Result:
    """A result that counts how often it was formatted."""

    formatted = 0

    def __repr__(self) -> str:
        _Result.formatted += 1
        return "_Result()"


async def _make() -> _Result:
    await asyncio.sleep(0)
    return _Result()


def test_run_returns_the_coroutines_result_without_formatting_it() -> None:
    _Result.formatted = 0
    result = run(_make())
    assert isinstance(result, _Result)
    assert _Result.formatted == 0


async def _fail() -> None:
    await asyncio.sleep(0)
    raise LookupError("what the command raised")


def test_run_lets_the_coroutines_exception_through() -> None:
    with pytest.raises(LookupError, match="what the command raised"):
        run(_fail())
