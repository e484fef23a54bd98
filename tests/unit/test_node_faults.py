"""Every fault `cluster.chaos` makes on a node is counted (`node_faults`): the test suite fails
a test that broke a node without the `chaos` mark (tests/conftest.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cluster import chaos, node_faults


class _LocalCluster:
    """A compose cluster that acts on nothing (the Docker CLI is replaced below)."""

    settings = SimpleNamespace(project="superticks")

    def __init__(self, state: str = "running") -> None:
        self.state = state

    def refuse_external(self, what: str) -> None:
        pass

    def container_states(self) -> dict[str, str]:
        return {"rabbit1": "running", "rabbit2": self.state, "rabbit3": "running"}

    def wait_until_formed(self) -> None:
        pass


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The Docker CLI replaced by a list of its calls; this test's faults (on nothing)
    forgotten after it, so that the suite's check does not fail it."""
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(chaos, "_docker", lambda *args, **_: calls.append(args) or "")
    monkeypatch.setattr(chaos, "_faults", [node_faults()])
    return calls


@pytest.mark.parametrize("action", [chaos.kill, chaos.pause, chaos.partition])
def test_each_fault_on_a_node_is_counted(action: object, no_docker: list[tuple[str, ...]]) -> None:
    before = node_faults()

    action(_LocalCluster(), "rabbit2")  # type: ignore[operator]

    assert node_faults() == before + 1
    assert len(no_docker) == 1


@pytest.mark.parametrize(("state", "counted"), [("running", 1), ("exited", 0), ("paused", 0)])
def test_a_restart_is_a_fault_only_when_it_stops_a_running_node(
    state: str, counted: int, no_docker: list[tuple[str, ...]]
) -> None:
    before = node_faults()

    chaos.restart(_LocalCluster(state), "rabbit2")  # type: ignore[arg-type]

    assert node_faults() == before + counted


def test_repairs_are_not_faults(no_docker: list[tuple[str, ...]]) -> None:
    before = node_faults()

    chaos.unpause(_LocalCluster(), "rabbit2")  # type: ignore[arg-type]
    chaos.heal(_LocalCluster(), "rabbit2")  # type: ignore[arg-type]
    chaos.start_all(_LocalCluster("exited"))  # type: ignore[arg-type]

    assert node_faults() == before
    assert len(no_docker) == 3


def test_a_refused_fault_is_not_counted(no_docker: list[tuple[str, ...]]) -> None:
    class External(_LocalCluster):
        def refuse_external(self, what: str) -> None:
            raise chaos.ClusterError(f"{what}: refused on an external cluster")

    before = node_faults()
    with pytest.raises(chaos.ClusterError):
        chaos.kill(External(), "rabbit2")  # type: ignore[arg-type]

    assert node_faults() == before
    assert no_docker == []
