"""Offsets stored by a group worker. The hot path writes a store frame (which has no answer)
only to a node heard from a moment before: one written to a node that froze is applied when it
thaws and sets the group's offset back. Otherwise the store task is woken to store it, asking
the node first. And a stored offset found behind the one the worker confirmed is stored again.
A stopping worker stores its last offsets through another node when its admin's node froze.
The admin connection is scripted here; what the broker does with a late frame, and a worker
stopped during a freeze, are in tests/integration/test_worker_outages.py."""

from __future__ import annotations

import asyncio
import logging

import pytest
from _chunks import chunk_of_ticks

from workers import group
from workers.group import GroupWorker, WorkerConfig, WorkerState, _Partition
from workers.handlers import CountingHandler


class _Admin:
    def __init__(self, fresh: bool, reads: list[int] | None = None) -> None:
        self.fresh = fresh
        self.stored: list[int] = []
        self.reads = reads or []  # what stored_offset answers, in turn
        self.sealed: list[dict[tuple[str, str], int]] = []

    async def stored_offset(self, stream: str, reference: str) -> int | None:
        return self.reads.pop(0)

    def heard_within(self, seconds: float) -> bool:
        return self.fresh

    async def store_offset(self, stream: str, reference: str, offset: int) -> None:
        self.stored.append(offset)

    async def seal(self, offsets: dict[tuple[str, str], int]) -> int:
        self.sealed.append(offsets)
        return len(offsets)


def _worker(admin: _Admin) -> tuple[GroupWorker, _Partition]:
    worker = GroupWorker(WorkerConfig(group="g", lag_interval_s=0), CountingHandler())
    worker._admin = admin  # type: ignore[assignment]
    part = _Partition(0, "ticks-0", worker.metrics.partition(0))
    part.active = True
    part.processed = 20_000
    return worker, part


async def test_a_due_store_goes_to_a_node_that_answered_a_moment_ago() -> None:
    admin = _Admin(fresh=True)
    worker, part = _worker(admin)

    await worker._write_store(part)

    assert admin.stored == [20_000]
    assert not worker._store_wanted.is_set()


async def test_a_due_store_is_not_written_to_a_node_not_heard_from_lately() -> None:
    admin = _Admin(fresh=False)
    worker, part = _worker(admin)

    await worker._write_store(part)

    assert admin.stored == []
    assert worker._store_wanted.is_set()  # the store task asks the node first, then stores


async def test_a_stored_offset_that_went_back_is_stored_again() -> None:
    # read back: 5 (a late frame landed), asked again before storing: 5, after storing: 20,000
    admin = _Admin(fresh=True, reads=[5, 5, 20_000])
    worker, part = _worker(admin)
    part.stored = part.written = 20_000

    await worker._verify(part)

    assert admin.stored == [20_000]
    assert part.stored == 20_000


async def test_a_stored_offset_that_did_not_go_back_is_left_alone() -> None:
    admin = _Admin(fresh=True, reads=[20_000])
    worker, part = _worker(admin)
    part.stored = part.written = 20_000

    await worker._verify(part)

    assert admin.stored == []


class _Hung(_Admin):
    """Nodes that froze: nothing asked is answered, whichever node the admin reconnects to."""

    reconnects = 0

    async def stored_offset(self, stream: str, reference: str) -> int | None:
        await asyncio.sleep(3600)
        return None

    async def reconnect(self, *, silent: bool = False) -> None:
        self.reconnects += 1


class _Thawing(_Admin):
    """The admin's node froze; any other node answers."""

    def __init__(self) -> None:
        super().__init__(fresh=False, reads=[18_000, 20_000])
        self.frozen = True

    async def stored_offset(self, stream: str, reference: str) -> int | None:
        if self.frozen:
            await asyncio.sleep(3600)
        return await super().stored_offset(stream, reference)

    async def reconnect(self, *, silent: bool = False) -> None:
        self.frozen = False


def _stopping(admin: _Admin, monkeypatch: pytest.MonkeyPatch) -> tuple[GroupWorker, _Partition]:
    """A stopping worker whose group's offset is 2,000 ticks behind what it handled; its
    admin calls time out after 10 ms."""
    monkeypatch.setattr(group, "_ADMIN_TIMEOUT_S", 0.01)
    worker, part = _worker(admin)
    worker._partitions = [part]
    worker.state = WorkerState.STOPPING
    part.stored = 18_000
    return worker, part


async def test_a_stopping_worker_stores_its_offsets_through_another_node(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = _Thawing()
    worker, part = _stopping(admin, monkeypatch)

    await worker._store_all(confirm=True, patience_s=1.0)

    assert admin.stored == [20_000]
    assert part.stored == 20_000  # the successor starts after the last tick handled here


async def test_a_stopping_worker_that_cannot_store_says_which_offsets_a_successor_redoes(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = _Hung(fresh=True)
    worker, part = _stopping(admin, monkeypatch)

    with caplog.at_level(logging.WARNING, logger="superticks.worker"):
        await worker._store_all(confirm=True, patience_s=0.3)

    assert part.stored == 18_000
    assert admin.reconnects >= 2  # tried again, through other nodes, until its patience ran out
    assert (
        "partition 0: storing the offset failed: the cluster did not answer an admin call "
        "within 0.01 s; the group's offset stays at 18000, so a successor handles offsets 18001 "
        "to 20000 again"
    ) in caplog.messages


async def test_a_closed_worker_opens_no_connection_to_store(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = _Hung(fresh=True)
    worker, _ = _stopping(admin, monkeypatch)
    worker._admin_closed = True

    with caplog.at_level(logging.WARNING, logger="superticks.worker"):
        await worker._store_all(confirm=True)

    assert admin.reconnects == 0
    assert "admin call after the worker closed its admin connection" in caplog.text


# --- the fence: handling waits once what was handled went unstored too long -----------------
def _fenced(unstored_for_ms: float) -> tuple[GroupWorker, _Partition]:
    """A running worker whose nodes froze (no store can succeed), with partition 0 stored up
    to offset 99 two seconds ago (max_unstored_ms 1000) and `unstored_for_ms` of handling
    since then not stored (0: it handled nothing after offset 99)."""
    worker, part = _worker(_Hung(fresh=False))
    worker._intake = True
    now = group._now_ms()
    part.stored = part.written = 99
    part.stored_at_ms = now - 2_000
    part.processed = 99 + (100 if unstored_for_ms else 0)
    part.unstored_since_ms = now - unstored_for_ms
    return worker, part


async def test_a_partition_quiet_since_its_last_store_handles_its_next_chunks_at_once() -> None:
    worker, part = _fenced(unstored_for_ms=0)

    async with asyncio.timeout(1):  # the old fence waited for a store here, forever
        await worker._process(part, chunk_of_ticks(100, 10))
        await worker._process(part, chunk_of_ticks(110, 10))

    assert part.processed == 119


async def test_a_partition_whose_handled_ticks_went_unstored_too_long_waits_for_a_store() -> None:
    worker, part = _fenced(unstored_for_ms=1_500)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await worker._process(part, chunk_of_ticks(200, 10))

    assert part.processed == 199  # nothing more handled


async def test_a_stopping_worker_seals_the_confirmed_offsets_of_the_partitions_it_still_owns() -> (
    None
):
    # behind store frames a frozen node may still hold (`Admin.seal`): see test_worker_outages
    admin = _Admin(fresh=True)
    worker, part = _worker(admin)
    part.stored = 20_000
    moved = _Partition(1, "ticks-1", worker.metrics.partition(1))
    moved.stored = 7_000  # moved away meanwhile: its offset is its successor's now
    unconfirmed = _Partition(2, "ticks-2", worker.metrics.partition(2))
    unconfirmed.active = True  # nothing confirmed here: nothing to seal with
    worker._partitions = [part, moved, unconfirmed]

    await worker._seal()

    assert admin.sealed == [{("ticks-0", "g"): 20_000}]


# --- a partition just activated proves that its stores go through ---------------------------
async def _activated(admin: _Admin) -> tuple[GroupWorker, _Partition]:
    """A running worker given partition 0, whose group's stored offset (read at activation)
    is 99."""
    worker, part = _worker(admin)
    worker._intake = True
    part.active = False
    part.processed = -1
    await worker._on_activation(part, True)
    assert part.active
    assert part.processed == 99
    return worker, part


class _WritesHang(_Admin):
    """The stored offset can be read once (at activation); every later call hangs, as stores
    did while the restarted cluster's stream leaders recovered."""

    async def stored_offset(self, stream: str, reference: str) -> int | None:
        if self.reads:
            return self.reads.pop(0)
        await asyncio.sleep(3600)
        return None

    async def reconnect(self, *, silent: bool = False) -> None:
        pass


async def test_a_partition_just_activated_handles_no_second_chunk_until_a_store_went_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(group, "_ADMIN_TIMEOUT_S", 0.01)
    worker, part = await _activated(_WritesHang(fresh=True, reads=[99]))

    await worker._process(part, chunk_of_ticks(100, 10))
    with pytest.raises(TimeoutError):  # within max_unstored_ms (1 s), the old fence let it on
        async with asyncio.timeout(0.3):
            await worker._process(part, chunk_of_ticks(110, 10))

    assert part.processed == 109  # a successor redoes one chunk, not a second of backlog


async def test_a_partition_just_activated_stores_its_first_chunk_then_handles_on() -> None:
    # read at activation: 99; before the store: 99; read back after it: 109
    admin = _Admin(fresh=True, reads=[99, 99, 109])
    worker, part = await _activated(admin)

    await worker._process(part, chunk_of_ticks(100, 10))
    await worker._process(part, chunk_of_ticks(110, 10))
    await worker._process(part, chunk_of_ticks(120, 10))

    assert admin.stored == [109]  # once, between the first chunk and the second
    assert part.stored == 109
    assert part.processed == 129


class _Closing(_Admin):
    """Answers a call on ticks-0 after 20 ms, on ticks-1 after 100 ms; once stopped, never
    again (its connection is gone)."""

    def __init__(self) -> None:
        super().__init__(fresh=True)
        self.offsets: dict[str, int] = {}
        self.asked = asyncio.Event()
        self.closed = False

    async def _answer(self, stream: str) -> None:
        self.asked.set()
        await asyncio.sleep(0.02 if stream == "ticks-0" else 0.1)
        if self.closed:  # no answer comes any more
            await asyncio.Event().wait()

    async def stored_offset(self, stream: str, reference: str) -> int | None:
        await self._answer(stream)
        return self.offsets.get(stream)

    async def store_offset(self, stream: str, reference: str, offset: int) -> None:
        await self._answer(stream)
        self.offsets[stream] = offset
        self.stored.append(offset)

    async def stop(self) -> None:
        self.closed = True


async def test_a_partition_moved_away_while_the_worker_stops_is_stored_before_the_admin_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The final stores run (partition 0 first) when the broker moves partition 1 away: the
    # final stores skip it (no longer active), its deactivation stores it, and the worker
    # must not close the admin under that store (its successor would redo 2,000 ticks).
    monkeypatch.setattr(group, "_ADMIN_TIMEOUT_S", 0.5)
    admin = _Closing()
    worker, p0 = _worker(admin)
    p1 = _Partition(1, "ticks-1", worker.metrics.partition(1))
    p1.active = True
    p0.stored, p1.processed, p1.stored = 18_000, 30_000, 28_000
    worker._partitions = [p0, p1]
    worker.state = WorkerState.RUNNING

    stopping = asyncio.create_task(worker.stop())
    await admin.asked.wait()  # the final stores are under way
    moved = asyncio.create_task(worker._on_activation(p1, False))
    async with asyncio.timeout(10):
        await stopping
        await moved

    assert admin.offsets == {"ticks-0": 20_000, "ticks-1": 30_000}
