"""Chaos primitives on the compose cluster's nodes: kill, restart, pause, partition.

Each acts on one node's container with the Docker CLI and, where the node should come back
(`restart`, `unpause`, `heal`), waits until the three nodes run as one cluster again.
They refuse on an external cluster (`ChaosRefused`).
"""

from __future__ import annotations

import subprocess

from cluster.compose import Cluster, ClusterStatus
from cluster.node import NODES, Node, node_named
from superticks.errors import ClusterError

__all__ = ["heal", "kill", "partition", "pause", "restart", "start_all", "unpause"]


def _docker(*args: str) -> None:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ClusterError(f"`docker {' '.join(args)}` failed: {result.stderr.strip()}")


def _target(cluster: Cluster, name: str, what: str) -> Node:
    cluster.refuse_external(f"cluster {what}")
    return node_named(name)


def _network(cluster: Cluster) -> str:
    return f"{cluster.settings.project}_cluster"


def kill(cluster: Cluster, name: str) -> None:
    """SIGKILL the node's container: a crashed broker process (the page cache survives)."""
    node = _target(cluster, name, "kill")
    _docker("kill", "--signal", "KILL", node.container)


def restart(cluster: Cluster, name: str) -> ClusterStatus:
    """Start the node's container again (or restart it if it runs) and wait for the cluster."""
    node = _target(cluster, name, "restart")
    state = cluster.container_states()[node.name]
    if state == "paused":
        _docker("unpause", node.container)
    elif state == "running":
        _docker("restart", "--time", "10", node.container)
    else:
        _docker("start", node.container)
    return cluster.wait_until_formed()


def start_all(cluster: Cluster) -> ClusterStatus:
    """Start every node that is not running (after a whole-cluster outage: one node alone
    cannot form the cluster, so all start at once), then wait for the cluster."""
    cluster.refuse_external("cluster start")
    states = cluster.container_states()
    stopped = [n.container for n in NODES if states.get(n.name) != "running"]
    if stopped:
        _docker("start", *stopped)
    return cluster.wait_until_formed()


def pause(cluster: Cluster, name: str) -> None:
    """Freeze the node (cgroup freezer): a hung broker that holds its connections open."""
    node = _target(cluster, name, "pause")
    _docker("pause", node.container)


def unpause(cluster: Cluster, name: str, wait: bool = True) -> ClusterStatus | None:
    """Thaw the node; with `wait`, block until the three nodes form one cluster again."""
    node = _target(cluster, name, "unpause")
    _docker("unpause", node.container)
    return cluster.wait_until_formed() if wait else None


def partition(cluster: Cluster, name: str) -> None:
    """Cut the node off the cluster network (and so off its published ports too)."""
    node = _target(cluster, name, "partition")
    _docker("network", "disconnect", _network(cluster), node.container)


def heal(cluster: Cluster, name: str) -> ClusterStatus:
    """Connect the node back (with its hostname as alias) and wait for the cluster."""
    node = _target(cluster, name, "heal")
    _docker("network", "connect", "--alias", node.name, _network(cluster), node.container)
    return cluster.wait_until_formed()
