"""Fixtures of the integration suite: super streams that exist for one test and are deleted
after it, with whatever dead-letter stream a worker made for them, also when the test fails."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from cluster import Cluster, RoleUser, ensure_role_users
from partitioning.model import StreamConfig
from partitioning.topology import create_topology, delete_topology
from superticks.errors import ClusterError, ConnectionFailed
from superticks.settings import ConnectionSettings, Role
from superticks.streams import Admin


async def _retrying(what: Callable[[], Awaitable[object]], timeout_s: float = 60) -> None:
    """Clean-up right after a chaos test may meet a node that is still coming back: retry."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await what()
        except ConnectionFailed:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
        else:
            return


@pytest.fixture
async def new_super_stream(
    connection: ConnectionSettings, unique: str, cluster: Cluster
) -> AsyncIterator[Callable[[int], Awaitable[str]]]:
    """`await new_super_stream(partitions)` creates a super stream named after the test."""
    made: list[str] = []

    async def make(partitions: int = 3) -> str:
        name = unique if not made else f"{unique}x{len(made)}"
        await create_topology(connection, StreamConfig(super_stream=name, partitions=partitions))
        made.append(name)
        return name

    yield make

    async def delete(name: str) -> None:
        await delete_topology(connection, name)
        async with Admin(connection) as admin:
            await admin.delete_stream(f"{name}-dlq")

    for name in made:
        await _retrying(functools.partial(delete, name))


@pytest.fixture
async def super_stream(new_super_stream: Callable[[int], Awaitable[str]]) -> str:
    """A 3-partition super stream named like `unique`, deleted after the test."""
    return await new_super_stream(3)


@pytest.fixture
async def stream(
    connection: ConnectionSettings, unique: str, cluster: Cluster
) -> AsyncIterator[str]:
    """A plain stream named `unique` (replicated on the three nodes), deleted after the test."""
    async with Admin(connection) as admin:
        await admin.create_stream(unique, {"max-length-bytes": 50_000_000})
    yield unique

    async def delete() -> None:
        async with Admin(connection) as admin:
            await admin.delete_stream(unique)

    await _retrying(delete)


@pytest.fixture
def audit_stream(super_stream: str) -> str:
    """This test's audit stream name (not created)."""
    return f"{super_stream}-audit"


@pytest.fixture
def as_role(
    cluster: Cluster, connection: ConnectionSettings, super_stream: str, audit_stream: str
) -> Iterator[Callable[[Role], ConnectionSettings]]:
    """`as_role(role)`: settings of a fresh user with `role`'s permissions on this test's
    streams (`super_stream`, `audit_stream`), made as `superticks cluster up` makes the real
    ones; deleted after the test."""
    made: list[str] = []

    def make(role: Role) -> ConnectionSettings:
        user = RoleUser(role, f"{super_stream}-{role}", f"pw-{role}")
        ensure_role_users(
            cluster.management, connection, super_stream, [user], audit_stream=audit_stream
        )
        made.append(user.username)
        return connection.model_copy(
            update={f"{role}_username": user.username, f"{role}_password": SecretStr(user.password)}
        ).for_role(role)

    yield make
    for name in made:
        with contextlib.suppress(ClusterError):
            cluster.management.send("DELETE", f"/api/users/{quote(name, safe='')}")
