"""A producer's name lock joins its group on the super stream's first partition. A partition
without a leader at that moment (just created, or its node just went down) is asked again
within the lock's wait, not a failure at once (CI: a bench's feed failed to start right after
its fresh stream was created). The broker side is in tests/integration/test_producer_names.py."""

from __future__ import annotations

import pytest

from superticks.errors import StreamUnavailable
from superticks.settings import ConnectionSettings
from superticks.streams import NameLock


def _lock(unavailable: int, monkeypatch: pytest.MonkeyPatch) -> tuple[NameLock, list[str]]:
    """A lock whose first `unavailable` joins find no leader; the next one is activated."""
    lock = NameLock(ConnectionSettings(), "s-0", "superticks-producer-feed")
    calls: list[str] = []

    async def join() -> None:
        calls.append("join")
        if calls.count("join") <= unavailable:
            raise StreamUnavailable("the stream has no leader right now")
        lock.held.set()

    async def leave() -> None:
        calls.append("leave")

    monkeypatch.setattr(lock, "_join", join)
    monkeypatch.setattr(lock, "_leave", leave)
    monkeypatch.setattr(lock, "_keep", leave)
    return lock, calls


async def test_a_partition_without_a_leader_is_asked_again_within_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lock, calls = _lock(2, monkeypatch)

    assert await lock.acquire(timeout_s=3.0)

    assert calls[:5] == ["join", "leave", "join", "leave", "join"]  # each failed join closed
    await lock.release()


async def test_a_partition_still_without_a_leader_when_the_wait_ends_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lock, calls = _lock(1_000, monkeypatch)

    with pytest.raises(StreamUnavailable):
        await lock.acquire(timeout_s=0.3)

    assert 2 <= calls.count("join") <= 5
    assert calls[-1] == "leave"
