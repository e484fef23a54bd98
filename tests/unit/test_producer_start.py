"""A producer's start when a partition's leader does not answer yet (its node restarting):
the partition's link is started again for a while, then the error stands; a refused login is
not tried again; a running producer reconnects for ever, but not to a deleted stream. The link
is scripted here; a node killed under a running producer is in
tests/integration/test_partitioning.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from partitioning import producer as producer_module
from partitioning.producer import Producer, ProducerConfig
from superticks.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    StreamNotFound,
    StreamUnavailable,
)


class _Link:
    stream = "ticks-2"

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.starts = 0

    async def start(self) -> int:
        self.starts += 1
        if self.failures:
            raise self.failures.pop(0)
        return 41  # the last id stored under the producer's name


def _part(link: _Link) -> Any:
    return cast(Any, SimpleNamespace(index=2, link=link))


async def test_a_leader_that_does_not_answer_yet_is_tried_again_until_it_does() -> None:
    producer = Producer(ProducerConfig(reconnect_delay_s=0.001))
    link = _Link(
        [
            ConnectionFailed("connecting to localhost:5554: connection failed ()"),
            StreamUnavailable("locating the leader of ticks-2: the stream has no leader"),
        ]
    )

    assert await producer._start_link(_part(link)) == 41
    assert link.starts == 3


async def test_a_leader_that_never_answers_fails_the_start_in_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(producer_module, "_START_RETRY_S", 0.05)
    producer = Producer(ProducerConfig(reconnect_delay_s=0.001))
    link = _Link([ConnectionFailed("connection failed ()") for _ in range(1000)])

    with pytest.raises(ConnectionFailed):
        await producer._start_link(_part(link))
    assert link.starts > 1


async def test_a_refused_login_is_not_tried_again() -> None:
    producer = Producer(ProducerConfig(reconnect_delay_s=0.001))
    link = _Link([AuthenticationFailed("authentication failed"), ConnectionFailed("x")])

    with pytest.raises(AuthenticationFailed):
        await producer._start_link(_part(link))
    assert link.starts == 1


async def test_a_running_producer_reconnects_for_ever_but_fails_on_a_deleted_stream() -> None:
    producer = Producer(ProducerConfig(reconnect_delay_s=0.001))
    link = _Link(
        [ConnectionFailed("connection failed ()"), StreamUnavailable("no leader")] * 5
        + [StreamNotFound("stream 'ticks-2' does not exist")]
    )

    await producer._recover(_part(link))

    assert link.starts == 11  # every error but the last was tried again
    assert isinstance(producer._failure, StreamNotFound)
