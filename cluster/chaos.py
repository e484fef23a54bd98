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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cluster.compose import Cluster, ClusterStatus
from cluster.management import QueueInfo
from cluster.node import NODES, Node, node_named
from superticks.errors import ClusterError

__all__ = [
    "Drain",
    "coordinator_leader",
    "drain",
    "drain_plan",
    "heal",
    "kill",
    "node_faults",
    "partition",
    "pause",
    "restart",
    "rolling_restart",
    "start_all",
    "unpause",
]


_DRAIN_S = 20.0  # how long `drain` keeps moving streams the broker left where they were


def _docker(*args: str, timeout_s: float | None = None) -> str:
    """Run `docker ARGS`; its standard output. ClusterError when it fails or times out."""
    try:
        result = subprocess.run(
            ["docker", *args], capture_output=True, text=True, check=False, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise ClusterError(f"`docker {' '.join(args)}` took over {timeout_s:g} s") from None
    if result.returncode != 0:
        raise ClusterError(f"`docker {' '.join(args)}` failed: {result.stderr.strip()}")
    return result.stdout


def coordinator_leader(cluster: Cluster) -> str | None:
    """The node whose member leads the stream coordinator (the Raft cluster that places stream
    members and runs the single-active-consumer groups), as the first running node that
    answers says; None when none does."""
    states = cluster.container_states()
    for node in NODES:
        if states.get(node.name) != "running":
            continue
        try:
            said = _docker(
                "exec", node.container, "rabbitmqctl", "eval",
                "ra_leaderboard:lookup_leader(rabbit_stream_coordinator).",
                timeout_s=30,
            )  # fmt: skip
        except ClusterError:
            continue
        # "{rabbit_stream_coordinator,rabbit@rabbit2}", or "undefined" while there is none
        leader = next((n.name for n in NODES if f",{n.erlang_name}}}" in said), None)
        if leader is not None:
            return leader
    return None


_faults = [0]  # node faults this process made (`node_faults`)


def node_faults() -> int:
    """How many faults this process has made on nodes so far: each `kill`, `pause`,
    `partition`, and `restart` of a running node (so each node of a `rolling_restart`); not
    `drain` (leaderships move, every node stays up) nor the repairs. A test suite compares
    it before and after each test to know whether the test broke a node."""
    return _faults[0]


def _target(cluster: Cluster, name: str, what: str) -> Node:
    cluster.refuse_external(f"cluster {what}")
    return node_named(name)


def _network(cluster: Cluster) -> str:
    return f"{cluster.settings.project}_cluster"


def kill(cluster: Cluster, name: str) -> None:
    """SIGKILL the node's container: a crashed broker process (the page cache survives)."""
    node = _target(cluster, name, "kill")
    _faults[0] += 1
    _docker("kill", "--signal", "KILL", node.container)


@dataclass(frozen=True, slots=True)
class Drain:
    """What `drain` did: `moves`, (vhost, stream, asked-for leader) of each transfer the broker
    took; `stuck`, (vhost, stream) of the streams the node still led when it gave up (no other
    member, none that ran in time, or the broker kept electing the node: its other replicas are
    behind);
    `refused`, (vhost, stream, why) of the last transfer refused for each stream still stuck."""

    moves: tuple[tuple[str, str, str], ...]
    stuck: tuple[tuple[str, str], ...]
    refused: tuple[tuple[str, str, str], ...] = ()


def drain_plan(
    streams: Iterable[QueueInfo], node: str, nodes: Iterable[str]
) -> list[tuple[str, str, str]]:
    """Where each stream `node` leads goes: (vhost, stream, new leader), every stream to the
    other running member leading the fewest streams at that point (ties: the first in `nodes`),
    so the moved leaders spread evenly. A stream with no other member running has nowhere to go
    and is left out. Nodes by Erlang name (``rabbit@rabbit1``); a stream that lists no running
    members (an older broker) counts every node as one. Raises ValueError when no other
    node is left."""
    others = [n for n in nodes if n != node]
    if not others:
        raise ValueError(f"no node but {node} to lead its streams")
    streams = list(streams)
    counts = {n: 0 for n in others}
    for s in streams:
        if s.leader in counts:
            counts[s.leader] += 1
    plan = []
    for s in sorted(streams, key=lambda s: (s.vhost, s.name)):
        if s.leader != node:
            continue
        candidates = [n for n in others if not s.online or n in s.online]
        if candidates:
            target = min(candidates, key=lambda n: (counts[n], others.index(n)))
            counts[target] += 1
            plan.append((s.vhost, s.name, target))
    return plan


def drain(cluster: Cluster, name: str) -> Drain:
    """Move the leadership of every stream the node leads to the other nodes (`drain_plan`),
    asked of the node in one go (`_transfer`; the stream's publishers and consumers reconnect
    to its new leader at once), until it leads none. Before a planned restart (see the module
    docstring). The node keeps its replicas and serves clients meanwhile.

    The broker keeps a stream's leader where it was when the asked-for node's replica is behind
    (it elects the member with the longest log; under a live feed the leader is often ahead):
    such streams are asked again, to the node then leading the fewest, for up to `_DRAIN_S`; so
    are streams whose other members do not run at that moment (a node that just rejoined, or a
    transfer that restarts them), once they do. A stream with no other member is not asked.
    What the node still leads then is returned as `Drain.stuck` rather than raised: those
    streams elect a new leader when the node stops, as without a drain (Kafka's controlled
    shutdown gives up the same way after its retries)."""
    node = _target(cluster, name, "drain")
    nodes = [n.erlang_name for n in NODES]
    moves: list[tuple[str, str, str]] = []
    refused: dict[tuple[str, str], str] = {}
    deadline = time.monotonic() + _DRAIN_S
    while True:
        streams = cluster.management.streams()
        plan = drain_plan(streams, node.erlang_name, nodes)
        # a stream whose other members do not run right now (a node that just rejoined, or
        # a transfer that restarts them) is asked again once they do
        movable = [s for s in streams if _movable(s, node.erlang_name)]
        if not movable or time.monotonic() > deadline:
            stuck = sorted((s.vhost, s.name) for s in streams if s.leader == node.erlang_name)
            why = tuple((*key, refused[key]) for key in stuck if key in refused)
            return Drain(tuple(moves), tuple(stuck), why)
        for (vhost, stream, target), refusal in zip(
            plan, _transfer(node.container, plan), strict=True
        ):
            if refusal is not None:  # deleted meanwhile, or refused: asked again
                refused[vhost, stream] = refusal
                continue
            refused.pop((vhost, stream), None)
            moves.append((vhost, stream, target))
        time.sleep(0.3)  # the streams' records follow their new leaders; a replica catches up


_TRANSFERRED = "superticks-transfer"


def _transfer(container: str, plan: Sequence[tuple[str, str, str]]) -> list[str | None]:
    """Ask the node in `container` to move each (vhost, stream, new leader) of `plan`, in one
    ``rabbitmqctl eval`` of what ``rabbitmq-streams transfer_leadership`` calls for each
    (`rabbit_stream_queue:transfer_leadership/3`): one Erlang CLI start-up (~1 s on these
    machines) for the whole plan, not one a stream. Returns, in plan order, None for a
    transfer the broker took and the broker's answer for one it refused."""
    if not plan:
        return []
    asks = ",".join(
        f"{{{i},{_erl_binary(vhost)},{_erl_binary(stream)},{_erl_binary(target)}}}"
        for i, (vhost, stream, target) in enumerate(plan)
    )
    expression = (
        f'[io:format("{_TRANSFERRED} ~b ~w~n", [I, catch rabbit_stream_queue:'
        f"transfer_leadership(V, S, binary_to_atom(N, utf8))]) || {{I, V, S, N}} <- [{asks}]], ok."
    )
    try:
        said = _docker("exec", container, "rabbitmqctl", "eval", expression, timeout_s=120)
    except ClusterError as exc:
        return [str(exc)] * len(plan)
    answers: dict[int, str] = {}
    for line in said.splitlines():
        marker, _, rest = line.partition(" ")
        index, _, answer = rest.partition(" ")
        if marker == _TRANSFERRED and index.isdigit():
            answers[int(index)] = answer.strip()
    return [
        None if answers.get(i, "").startswith("{ok,") else answers.get(i, "no answer")
        for i in range(len(plan))
    ]


def _erl_binary(text: str) -> str:
    """`text` as an Erlang binary literal of its UTF-8 bytes (no quoting to get wrong)."""
    return "<<" + ",".join(str(byte) for byte in text.encode()) + ">>"


def _movable(stream: QueueInfo, node: str) -> bool:
    """Whether `stream`, led by `node`, has another member that could lead it, running or
    not (one that lists no members, an older broker, counts as movable)."""
    return stream.leader == node and any(m != node for m in stream.members or ("?",))


def await_members(cluster: Cluster, timeout_s: float = _DRAIN_S) -> list[str]:
    """Wait until every member of every stream runs again (after a node restart: the cluster
    forms before the node's stream replicas have started), for up to
    `timeout_s`; returns the streams still missing a member then. A planned restart waits for
    this before it stops the next node, or that node's streams could not be moved to it."""
    deadline = time.monotonic() + timeout_s
    while True:
        missing = sorted(
            s.name for s in cluster.management.streams() if set(s.members) - set(s.online)
        )
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.3)


def restart(cluster: Cluster, name: str) -> ClusterStatus:
    """Start the node's container again (or restart it if it runs) and wait for the cluster."""
    node = _target(cluster, name, "restart")
    state = cluster.container_states()[node.name]
    if state == "paused":
        _docker("unpause", node.container)
    elif state == "running":
        _faults[0] += 1
        _docker("restart", "--time", "10", node.container)
    else:
        _docker("start", node.container)
    return cluster.wait_until_formed()


def rolling_restart(
    cluster: Cluster, progress: Callable[[str], None] | None = None
) -> ClusterStatus:
    """Restart the nodes one at a time, as a planned restart (an upgrade, a config change) is
    done: each is drained first (`drain`), then restarted, and the next waits until the three
    run as one cluster again and every stream's members run (`await_members`: else the next
    node's streams would have nowhere to go). Streams keep a leader throughout (measured with
    a live feed and a worker group: the longest any partition went unhandled was 0.71-2.31 s
    per run).

    Refuses (ClusterError, nothing touched) unless the three nodes run as one cluster: with a
    node already down, stopping another would leave one node, which cannot elect a leader.
    Streams a drain could not move (`Drain.stuck`) are named through `progress`, and the
    restart goes on: they elect a new leader when their node stops."""
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
        drained = drain(cluster, node.name)
        if progress is not None:
            progress(
                f"{node.name}: drained ({len(drained.moves)} stream leaderships moved); restarting"
            )
            if drained.stuck:
                streams = ", ".join(stream for _, stream in drained.stuck)
                progress(
                    f"{node.name}: still leads {streams} (no other member ran in time, or its "
                    "replicas are behind): they elect a new leader when it stops, 5-6 s without one"
                )
        status = restart(cluster, node.name)
        missing = await_members(cluster)
        if progress is not None:
            progress(f"{node.name}: back in the cluster")
            if missing:
                progress(
                    f"{node.name}: after {_DRAIN_S:g} s, these streams still miss a member: "
                    f"{', '.join(missing)}"
                )
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
    _faults[0] += 1
    _docker("pause", node.container)


def unpause(cluster: Cluster, name: str, wait: bool = True) -> ClusterStatus | None:
    """Thaw the node; with `wait`, block until the three nodes form one cluster again."""
    node = _target(cluster, name, "unpause")
    _docker("unpause", node.container)
    return cluster.wait_until_formed() if wait else None


def partition(cluster: Cluster, name: str) -> None:
    """Cut the node off the cluster network (and so off its published ports too)."""
    node = _target(cluster, name, "partition")
    _faults[0] += 1
    _docker("network", "disconnect", _network(cluster), node.container)


def heal(cluster: Cluster, name: str) -> ClusterStatus:
    """Connect the node back (with its hostname as alias) and wait for the cluster."""
    node = _target(cluster, name, "heal")
    _docker("network", "connect", "--alias", node.name, _network(cluster), node.container)
    return cluster.wait_until_formed()
