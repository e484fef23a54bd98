"""Chaos primitives on the compose cluster's nodes: kill, restart, pause, partition; and
`drain`, what an operator does before a planned restart.

Each acts on one node's container with the Docker CLI and, where the node should come back
(`restart`, `unpause`, `heal`), waits until the three nodes run as one cluster again.
They refuse on an external cluster (`ChaosRefused`).

Why `drain` before a planned restart: a node asked to stop stops its RabbitMQ application
while its Erlang distribution still answers. For each stream it led, the stream coordinator
then asks it for the stream's tail, gets ``app_not_running``, and sleeps 5 s before trying again
(``maybe_sleep`` in ``rabbit_stream_coordinator``, RabbitMQ 4.x): the stream has no leader, and
takes no publish, for 5-6 s (measured: `bench failover --scenario rolling-restart`, producer gap
5.9 and 6.4 s when the restarted node led a partition). A stream whose leadership moved first
(``rabbitmq-streams transfer_leadership``) needs no election when the node stops.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable

from cluster.compose import Cluster, ClusterStatus
from cluster.node import NODES, Node, node_named
from superticks.errors import ClusterError

__all__ = [
    "drain",
    "drain_plan",
    "heal",
    "kill",
    "partition",
    "pause",
    "restart",
    "rolling_restart",
    "start_all",
    "unpause",
]


_DRAIN_S = 20.0  # how long `drain` keeps moving streams the broker left where they were


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


def drain_plan(
    leaders: Iterable[tuple[str, str, str]], node: str, nodes: Iterable[str]
) -> list[tuple[str, str, str]]:
    """Where each stream `node` leads goes: (vhost, stream, new leader), every stream to the
    other node leading the fewest streams at that point (ties: the first in `nodes`), so the
    moved leaders spread evenly. `leaders`: (vhost, stream, leader) of every stream; nodes by
    Erlang name (``rabbit@rabbit1``). Raises ValueError when no other node is left."""
    others = [n for n in nodes if n != node]
    if not others:
        raise ValueError(f"no node but {node} to lead its streams")
    leaders = list(leaders)
    counts = {n: 0 for n in others}
    for _, _, leader in leaders:
        if leader in counts:
            counts[leader] += 1
    plan = []
    for vhost, stream, leader in sorted(leaders):
        if leader == node:
            target = min(others, key=lambda n: (counts[n], others.index(n)))
            counts[target] += 1
            plan.append((vhost, stream, target))
    return plan


def drain(cluster: Cluster, name: str) -> list[tuple[str, str, str]]:
    """Move the leadership of every stream the node leads to the other nodes (`drain_plan`),
    one ``rabbitmq-streams transfer_leadership`` each (~1 s; the stream's publishers and
    consumers reconnect to its new leader at once), until it leads none; returns the moves,
    (vhost, stream, asked-for leader). Before a planned restart (see the module docstring).
    The node keeps its replicas and serves clients meanwhile.

    The broker may keep a stream's leader where it was when the asked-for node's replica is
    behind (it elects the member with the longest log): such streams are moved again, to the
    node then leading the fewest, for up to `_DRAIN_S`; raises ClusterError if the node still
    leads streams then."""
    node = _target(cluster, name, "drain")
    nodes = [n.erlang_name for n in NODES]
    moves: list[tuple[str, str, str]] = []
    deadline = time.monotonic() + _DRAIN_S
    while True:
        plan = drain_plan(cluster.management.stream_leaders(), node.erlang_name, nodes)
        if not plan:
            return moves
        if time.monotonic() > deadline:
            streams = ", ".join(stream for _, stream, _ in plan)
            raise ClusterError(
                f"{node.name} still leads {streams} after {_DRAIN_S:g} s of transfers: see "
                f"`superticks cluster logs {node.name}`, and drain it again"
            )
        for vhost, stream, target in plan:
            _docker(
                "exec", node.container,
                "rabbitmq-streams", "transfer_leadership", "--vhost", vhost, stream, target,
            )  # fmt: skip
        moves += plan
        time.sleep(0.3)  # the streams' records follow their new leaders; a replica catches up


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


def rolling_restart(
    cluster: Cluster, progress: Callable[[str], None] | None = None
) -> ClusterStatus:
    """Restart the nodes one at a time, as a planned restart (an upgrade, a config change) is
    done: each is drained first (`drain`), then restarted, and the next waits until the three
    run as one cluster again. Streams keep a leader throughout (measured with a live feed and a
    worker group: the longest any partition went unhandled was 0.71-2.31 s per run).

    Refuses (ClusterError, nothing touched) unless the three nodes run as one cluster: with a
    node already down, stopping another would leave one node, which cannot elect a leader."""
    cluster.refuse_external("cluster rolling-restart")
    status = cluster.status()
    if not status.formed:
        down = [n.node for n in status.nodes if not n.in_cluster] or ["some node"]
        raise ClusterError(
            f"the cluster is not whole ({status.state}; not in it: {', '.join(down)}): "
            "a rolling restart stops one node at a time and needs the other two; bring it "
            "back first (`superticks cluster restart NODE`, then `superticks cluster status`)"
        )
    for node in NODES:
        moves = drain(cluster, node.name)
        if progress is not None:
            progress(f"{node.name}: drained ({len(moves)} stream leaderships moved); restarting")
        status = restart(cluster, node.name)
        if progress is not None:
            progress(f"{node.name}: back in the cluster")
    return status


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
