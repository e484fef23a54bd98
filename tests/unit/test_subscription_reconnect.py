"""A lost subscription is made again at once: its old connections are closed without a word to
the broker (which drops a closed connection's subscriptions itself), not through rstream's
unsubscribe and close request, each of which waits up to 5 s for an answer a lost connection
never gives. The broker side is in tests/integration; here the consumer is a stand-in."""

from __future__ import annotations

import asyncio

import pytest

from superticks import streams
from superticks.settings import ConnectionSettings
from superticks.streams import Chunk, Offset, Subscription


async def _ignore(_chunk: Chunk) -> None:
    return None


@pytest.mark.parametrize(
    "why",
    [
        "nothing heard from localhost:5552 for 9.0 s",
        "metadata update for s-0 (leader moved or stream deleted)",
        "Connection Closed, localhost:5553",
        "this process did not run for 7.2 s",
    ],
)
async def test_a_lost_subscription_closes_its_old_connections_without_unsubscribing(
    monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    closed: list[tuple[object, bool]] = []
    opened = asyncio.Event()

    async def close(consumer: object, *, unsubscribe: bool = True) -> None:
        closed.append((consumer, unsubscribe))

    async def reopen(_offset: Offset) -> None:
        opened.set()

    monkeypatch.setattr(streams, "_close_consumer", close)
    subscription = Subscription(ConnectionSettings(), "s-0", _ignore, Offset.next(), name="t")
    old = object()
    subscription._consumer = old  # type: ignore[assignment]
    monkeypatch.setattr(subscription, "_open", reopen)

    subscription._lose(why)
    async with asyncio.timeout(5):
        await opened.wait()

    assert closed == [(old, False)]
    assert subscription.reconnects == 1
