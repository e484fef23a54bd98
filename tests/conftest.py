"""Fixtures shared by the unit and integration suites.

Integration tests (`@pytest.mark.cluster`) run against the three-node cluster of
docker-compose.yml, brought up once per session by `cluster.Cluster` (the object under test for
issue 10). A cluster that was already up is reused and left running; one that the session
started is taken down with its volumes at the end, unless SUPERTICKS_KEEP_CLUSTER=1 (fast local
re-runs). Every test uses its own stream names.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from cluster import Cluster, node_faults
from superticks.settings import ClusterSettings, ConnectionSettings


@pytest.fixture(scope="session")
def connection() -> ConnectionSettings:
    return ConnectionSettings()


@pytest.fixture(scope="session")
def compose_cluster(connection: ConnectionSettings) -> Iterator[Cluster]:
    cluster = Cluster(ClusterSettings(), connection, progress=lambda m: print(m, file=sys.stderr))
    cluster.start()
    try:
        yield cluster
    finally:
        if os.environ.get("SUPERTICKS_KEEP_CLUSTER") != "1":
            cluster.stop()


_unsure = {"whole": True}  # False once checked, until a test breaks a node


@pytest.fixture
def cluster(compose_cluster: Cluster, request: pytest.FixtureRequest) -> Cluster:
    """The compose cluster, whole again before each test that follows a chaos test (which may
    have left it not). Every test that breaks a node is marked `chaos` and uses this fixture;
    checking before every test instead cost each 0.15-0.3 s (`docker compose ps`)."""
    if _unsure["whole"] and not compose_cluster.status().formed:
        compose_cluster.up()
    _unsure["whole"] = request.node.get_closest_marker("chaos") is not None
    return compose_cluster


@pytest.fixture(autouse=True)
def node_faults_are_marked_chaos(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that broke a node (`cluster.chaos.node_faults`: kill, pause, partition, a
    restart) without the `chaos` mark fails: `make test` budgets and `-m` selections rely on
    the mark, and the `cluster` fixture would not make sure the cluster is whole after it.
    Whatever the mark, the next test using `cluster` checks the cluster first."""
    before = node_faults()
    yield
    if node_faults() == before:
        return
    _unsure["whole"] = True
    if request.node.get_closest_marker("chaos") is None:
        pytest.fail(
            f"{request.node.nodeid} broke a node ({node_faults() - before} faults) but is not "
            "marked chaos: add @pytest.mark.chaos"
        )


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh name for this test's streams and groups. A cluster test that leaves a stream
    named after it fails: the cluster is shared (by the suite, and by users who keep it up),
    so its fixtures delete what it made. Fixtures that use the name depend on this one, so
    they have cleaned up before the check."""
    name = f"t{uuid.uuid4().hex[:10]}"
    cluster = None
    if request.node.get_closest_marker("cluster") is not None:
        cluster = request.getfixturevalue("compose_cluster")
    yield name
    if cluster is None:
        return
    left = sorted(q.name for q in cluster.management.streams() if q.name.startswith(name))
    if left:
        pytest.fail(
            f"{request.node.nodeid} left streams behind: {', '.join(left)} (delete them in the "
            "fixture that made them)"
        )


@pytest.fixture(autouse=True)
async def no_task_outlives_its_test() -> AsyncIterator[None]:
    """Every task a test starts has an owner that cancels and awaits it: one still running
    when the test and its fixtures are done fails the test (with its stack) instead of hanging
    the session's event loop at its close."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() - before if t is not current and not t.done()}
    if left:
        _, left = await asyncio.wait(left, timeout=2)  # finishing on its own: not a leak
    if not left:
        return
    stacks = []
    for task in left:
        lines = io.StringIO()
        task.print_stack(file=lines)
        stacks.append(lines.getvalue())
        task.cancel()
    _, stuck = await asyncio.wait(left, timeout=5)
    pytest.fail(
        f"{len(left)} task(s) outlived the test ({len(stuck)} did not even stop when cancelled):\n"
        + "\n".join(stacks)
    )
