"""Subscribing while the stream has no leader yet (one is being elected after a node fault):
a plain subscription gives up after the connect timeout, a group member (`leaderless_s`) tries
on, as a running worker does. The broker's answers are scripted here; what the broker decides
is in tests/integration."""

from __future__ import annotations

import math

import pytest

from superticks.errors import ConnectionFailed, StreamUnavailable
from superticks.settings import ConnectionSettings
from superticks.streams import Offset, Subscription


class _Scripted(Subscription):
    """`_open` fails with the scripted errors, then succeeds; nothing is started after."""

    def __init__(self, errors: list[Exception]) -> None:
        super().__init__(
            ConnectionSettings(connect_timeout_s=0.3), "s-0", _ignore, Offset.next(), name="t"
        )
        self.errors = errors
        self.opened = 0

    async def _open(self, offset: Offset) -> None:
        self.opened += 1
        if self.errors:
            raise self.errors.pop(0)

    async def _watch(self) -> None:
        return None


async def _ignore(_chunk: object) -> None:
    return None


def _leaderless(n: int) -> list[Exception]:
    return [StreamUnavailable("s-0 has no leader") for _ in range(n)]


async def test_a_stream_without_a_leader_past_the_connect_timeout_fails_a_plain_start() -> None:
    subscription = _Scripted(_leaderless(20))

    with pytest.raises(StreamUnavailable):
        await subscription.start()
    await subscription.stop()


async def test_a_group_member_waits_past_the_connect_timeout_for_a_leader() -> None:
    subscription = _Scripted(_leaderless(5))  # 1.5 s of retries

    await subscription.start(leaderless_s=math.inf)
    await subscription.stop()

    assert subscription.opened == 6


async def test_no_node_answering_fails_even_a_patient_start_after_the_connect_timeout() -> None:
    subscription = _Scripted([ConnectionFailed("no node answers") for _ in range(20)])

    with pytest.raises(ConnectionFailed):
        await subscription.start(leaderless_s=math.inf)
    await subscription.stop()
