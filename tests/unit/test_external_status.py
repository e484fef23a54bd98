"""`superticks cluster status` of an external cluster describes that cluster: its own node
names and their state from its management API, whatever the nodes are called."""

from __future__ import annotations

import pytest

from cluster.compose import Cluster, ClusterState, NodeStatus, external_state
from cluster.management import NodeInfo, Overview
from superticks.errors import ClusterError
from superticks.settings import ClusterBackend, ClusterSettings, ConnectionSettings


class _Management:
    """What a management API answers (a fake of its two reads)."""

    def __init__(self, nodes: list[NodeInfo] | None) -> None:
        self._nodes = nodes

    def nodes(self) -> list[NodeInfo]:
        if self._nodes is None:
            raise ClusterError("no node's management API answered")
        return self._nodes

    def overview(self) -> Overview:
        if self._nodes is None:
            raise ClusterError("no node's management API answered")
        return Overview("4.3.6", "29.1", "prod", "rabbit@alpha")


def _external(nodes: list[NodeInfo] | None) -> Cluster:
    cluster = Cluster(ClusterSettings(cluster=ClusterBackend.EXTERNAL), ConnectionSettings())
    cluster.management = _Management(nodes)  # type: ignore[assignment]
    return cluster


def _node(name: str, running: bool = True, partitions: tuple[str, ...] = ()) -> NodeInfo:
    return NodeInfo(name=name, running=running, partitions=partitions, uptime_ms=1)


def test_nodes_not_named_like_the_compose_ones_make_a_formed_cluster() -> None:
    status = _external(
        [_node("rabbit@alpha"), _node("rabbit@beta"), _node("rabbit@gamma")]
    ).status()
    assert status.state is ClusterState.FORMED
    assert [(n.node, n.in_cluster) for n in status.nodes] == [
        ("rabbit@alpha", True),
        ("rabbit@beta", True),
        ("rabbit@gamma", True),
    ]
    assert status.cluster_name == "prod"


def _external_status(nodes: list[NodeInfo] | None) -> ClusterState:
    return _external(nodes).status().state


@pytest.mark.parametrize(
    ("nodes", "state"),
    [
        ([_node("a"), _node("b", running=False)], ClusterState.DEGRADED),
        ([_node("a"), _node("b", partitions=("a",))], ClusterState.DEGRADED),
        ([_node("a", running=False)], ClusterState.STARTING),
        ([_node("solo")], ClusterState.FORMED),
        (None, ClusterState.DOWN),
    ],
)
def test_the_state_follows_what_the_api_says(
    nodes: list[NodeInfo] | None, state: ClusterState
) -> None:
    assert _external_status(nodes) is state


def test_no_answer_is_down_not_starting() -> None:
    nodes = [NodeStatus("x", "-", "-", in_cluster=True, ports={})]
    assert external_state(nodes, answered=False) is ClusterState.DOWN
