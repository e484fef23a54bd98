"""The cluster of docker-compose.yml: brought up, inspected and taken down.

`Cluster` is the one object that drives it. `up()` is idempotent: it makes sure a Docker engine
and a RabbitMQ >= 4.0 image are there, checks the published ports, runs `docker compose up`
(whose `certs` service first makes the TLS certificates if absent), waits until the three nodes
run as one cluster, and declares the least-privilege users (`cluster.users`). With
`SUPERTICKS_CLUSTER=external` it drives nothing and only reports on the cluster that
`SUPERTICKS_NODES` names.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, NoReturn

from testcontainers.compose import DockerCompose

from cluster.engine import ensure_engine
from cluster.image import ensure_exporter_image, ensure_images
from cluster.management import ManagementClient
from cluster.node import NODES, Node, node_named
from cluster.users import ensure_role_users
from superticks.errors import (
    ChaosRefused,
    ClusterError,
    NodeBootFailed,
    PortInUse,
)
from superticks.settings import ClusterBackend, ClusterSettings, ConnectionSettings

__all__ = [
    "BootWatch",
    "Cluster",
    "ClusterState",
    "ClusterStatus",
    "NodeStatus",
    "external_state",
]

# testcontainers logs a failed compose command's whole output at ERROR; we raise our own errors.
_tc_log = logging.getLogger("testcontainers")
_tc_log.addHandler(logging.NullHandler())
_tc_log.propagate = False


class ClusterState(StrEnum):
    DOWN = "down"  # no node runs
    STARTING = "starting"
    FORMED = "formed"  # three nodes run as one cluster
    DEGRADED = "degraded"  # some node is down, paused or cut off
    STOPPING = "stopping"


@dataclass(frozen=True, slots=True)
class NodeStatus:
    node: str
    container: str
    container_state: str  # running, exited, paused, missing (compose cluster); "-" (external)
    in_cluster: bool  # running as a member, as the other nodes see it
    ports: dict[str, int]


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    backend: str
    state: ClusterState
    rabbitmq_version: str
    erlang_version: str
    cluster_name: str
    nodes: list[NodeStatus] = field(default_factory=list)

    @property
    def formed(self) -> bool:
        return self.state is ClusterState.FORMED

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = str(self.state)
        data["formed"] = self.formed
        return data


MONITORING_PROFILE = "monitoring"
"""The compose profile of the lag exporter service (`exporter`)."""


class Cluster:
    """Drives the compose cluster. `start()`/`stop()` and `with Cluster(...)` bring it up and take
    down only what this object brought up; `up()`/`down()` act unconditionally.

    With `exporter=True`, `up()` also builds (when needed) and starts the lag exporter service
    (compose profile `monitoring`), as `superticks cluster up` does; the test suite leaves it
    out (its image build is not on `make test`'s path). `down()` removes it either way.
    """

    def __init__(
        self,
        settings: ClusterSettings | None = None,
        connection: ConnectionSettings | None = None,
        progress: Callable[[str], None] = lambda _msg: None,
        *,
        exporter: bool = False,
    ) -> None:
        self.settings = settings or ClusterSettings()
        self.connection = connection or ConnectionSettings()
        self._progress = progress
        self.exporter = exporter
        self._started_here = False
        self._compose_handle: DockerCompose | None = None
        self._compose_error = ""  # what a failed `docker compose up` said, for the boot error
        password = self.connection.password.get_secret_value()
        if self.is_external:
            hosts = {n.host for n in self.connection.nodes}
            urls = tuple(f"http://{h}:15672" for h in sorted(hosts))
        else:
            urls = tuple(f"http://127.0.0.1:{n.management_port}" for n in NODES)
        self.management = ManagementClient(urls, self.connection.username, password)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def is_external(self) -> bool:
        return self.settings.cluster is ClusterBackend.EXTERNAL

    def start(self) -> ClusterStatus:
        """Bring the cluster up; remember whether it was already up (then `stop()` keeps it).

        A cluster that already runs and is formed is used as it is: `docker compose up` from
        another checkout (other bind-mount paths) would recreate its containers."""
        already = not self.is_external and self._all_containers_running()
        if already:
            status = self.status()
            if status.formed:
                return status
        status = self.up()
        self._started_here = not already
        return status

    def stop(self) -> None:
        """Take down what `start()` brought up, with its volumes. Safe to call twice."""
        if self._started_here:
            self._started_here = False
            self.down(purge=True)

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- compose ---------------------------------------------------------------------------
    def _compose(self) -> DockerCompose:
        if self._compose_handle is None:
            if not self.settings.compose_file.is_file():
                raise ClusterError(
                    f"no compose file at {self.settings.compose_file}: set "
                    f"SUPERTICKS_COMPOSE_FILE to superticks' docker-compose.yml (or "
                    f"SUPERTICKS_CLUSTER=external for a cluster of your own)"
                )
            self._compose_handle = DockerCompose(
                context=str(self.settings.compose_file.parent),
                compose_file_name=self.settings.compose_file.name,
                wait=True,
                profiles=[MONITORING_PROFILE] if self.exporter else None,
            )
        return self._compose_handle

    def refuse_external(self, what: str) -> None:
        """Raise `ChaosRefused` unless this drives the compose cluster."""
        if self.is_external:
            raise ChaosRefused(
                f"`{what}` drives only the compose cluster; SUPERTICKS_CLUSTER=external points at "
                "a cluster superticks does not own (unset it to use docker-compose.yml)"
            )

    def up(self) -> ClusterStatus:
        """Idempotent: start whatever is not running and wait until three nodes form a cluster."""
        if self.is_external:
            return self.wait_until_formed()
        self._compose()  # a missing compose file fails here, before anything starts
        ensure_engine()
        images = ensure_images(self.settings, self._progress)
        if self.exporter:
            try:
                images["SUPERTICKS_EXPORTER_IMAGE"] = ensure_exporter_image(self._progress)
            except ClusterError as exc:  # the cluster is still worth starting: say so, go on
                self._progress(f"starting without the lag exporter: {exc}")
                self.exporter, self._compose_handle = False, None
        # docker compose interpolates ${SUPERTICKS_*_IMAGE} from this process's environment.
        os.environ.update(images)
        self._check_ports()
        self._progress(
            f"starting {len(NODES)} nodes from {images['SUPERTICKS_RABBITMQ_IMAGE']} and "
            f"Prometheus from {images['SUPERTICKS_PROMETHEUS_IMAGE']}"
            + (
                f", the lag exporter from {images['SUPERTICKS_EXPORTER_IMAGE']}"
                if self.exporter
                else ""
            )
            + " ..."
        )
        try:
            self._compose().start()
        except subprocess.CalledProcessError as exc:
            stderr = exc.stderr.decode(errors="replace")
            if "address already in use" in stderr or "port is already allocated" in stderr:
                raise ClusterError(f"a published port is taken: {stderr.strip()}") from None
            # `up --wait` also fails on transient states: containers being recreated (another
            # checkout's bind mounts), or stopped by a concurrent `up`. Whether the cluster
            # boots is decided by waiting for it to form (a container that stays exited fails).
            self._progress(
                "docker compose up did not confirm every container "
                f"({_last_line(stderr)}); waiting for the cluster to form"
            )
            self._compose_error = stderr.strip()[-300:]
        status = self.wait_until_formed()
        users = ensure_role_users(self.management, self.connection)
        self._progress("least-privilege users: " + ", ".join(u.username for u in users))
        return status

    def down(self, purge: bool = False) -> None:
        """Stop and remove the containers (and with `purge`, their data volumes)."""
        self.refuse_external("cluster down")
        # with the exporter's profile, or `down` would leave the exporter running
        cmd = [
            *self._compose().compose_command_property,
            *("--profile", MONITORING_PROFILE, "down", "--timeout", "20"),
        ]
        if purge:
            cmd.append("--volumes")
        subprocess.run(cmd, cwd=self.settings.compose_file.parent, capture_output=True, check=False)

    def logs(self, node: str, tail: int | None = None) -> str:
        self.refuse_external("cluster logs")
        target = node_named(node)
        cmd = ["docker", "logs", target.container]
        if tail is not None:
            cmd[2:2] = ["--tail", str(tail)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ClusterError(f"no logs for {target.name}: {result.stderr.strip()}")
        return result.stdout + result.stderr

    # -- state -----------------------------------------------------------------------------
    def container_states(self) -> dict[str, str]:
        """Docker's state of each node's container (running, exited, paused ...; missing)."""
        states = {n.name: "missing" for n in NODES}
        try:
            containers = self._compose().get_containers(include_all=True)
        except (subprocess.CalledProcessError, OSError):
            return states
        for c in containers:
            if c.Service in states:
                states[c.Service] = (c.State or "unknown").lower()
        return states

    def _all_containers_running(self) -> bool:
        try:
            return all(s == "running" for s in self.container_states().values())
        except ClusterError:
            return False

    def status(self) -> ClusterStatus:
        if self.is_external:
            return self._external_status()
        states = self.container_states()
        try:
            members = {n.name: n for n in self.management.nodes()}
            overview = self.management.overview()
        except ClusterError:
            members, overview = {}, None
        nodes = []
        for n in NODES:
            info = members.get(n.erlang_name)
            nodes.append(
                NodeStatus(
                    node=n.name,
                    container=n.container,
                    container_state=states[n.name],
                    in_cluster=bool(info and info.running and not info.partitions),
                    ports=n.ports,
                )
            )
        if all(ns.in_cluster for ns in nodes) and all(s == "running" for s in states.values()):
            state = ClusterState.FORMED
        elif all(s in {"missing", "exited"} for s in states.values()):
            state = ClusterState.DOWN
        elif any(ns.in_cluster for ns in nodes):
            state = ClusterState.DEGRADED
        else:
            state = ClusterState.STARTING
        return ClusterStatus(
            backend=str(self.settings.cluster),
            state=state,
            rabbitmq_version=overview.rabbitmq_version if overview else "",
            erlang_version=overview.erlang_version if overview else "",
            cluster_name=overview.cluster_name if overview else "",
            nodes=nodes,
        )

    def _external_status(self) -> ClusterStatus:
        """The cluster SUPERTICKS_NODES points at, as its management API describes it: its
        own node names (whatever they are), each running or not; no containers."""
        try:
            members = self.management.nodes()
            overview = self.management.overview()
        except ClusterError:
            members, overview = [], None
        nodes = [
            NodeStatus(
                node=m.name,
                container="-",
                container_state="-",
                in_cluster=m.running and not m.partitions,
                ports={},
            )
            for m in members
        ]
        return ClusterStatus(
            backend=str(self.settings.cluster),
            state=external_state(nodes, answered=overview is not None),
            rabbitmq_version=overview.rabbitmq_version if overview else "",
            erlang_version=overview.erlang_version if overview else "",
            cluster_name=overview.cluster_name if overview else "",
            nodes=nodes,
        )

    def wait_until_formed(self, timeout_s: float | None = None) -> ClusterStatus:
        """Block until three nodes run as one cluster and every stream port answers."""
        deadline = time.monotonic() + (timeout_s or self.settings.boot_timeout_s)
        watch = BootWatch()
        status = self.status()
        while time.monotonic() < deadline:
            status = self.status()
            if status.formed and self._stream_ports_answer():
                return status
            if not self.is_external:  # status() read the containers' states already
                states = {ns.node: ns.container_state for ns in status.nodes}
                failed = watch.observe(time.monotonic(), states)
                if failed is not None:
                    self._raise_node_failure(
                        node_named(failed),
                        f"its container stayed {states[failed]} for {watch.grace_s:.0f} s",
                    )
            time.sleep(0.5)
        missing = [ns.node for ns in status.nodes if not ns.in_cluster]
        if self.is_external:
            raise ClusterError(f"the external cluster is not whole: {missing} not running")
        compose_said = f" (docker compose up: {self._compose_error})" if self._compose_error else ""
        self._raise_node_failure(
            node_named(missing[0]) if missing else NODES[0],
            f"not a running cluster member after {timeout_s or self.settings.boot_timeout_s:.0f} s"
            + compose_said,
        )

    def _stream_ports_answer(self) -> bool:
        addrs = (
            [(a.host, a.port) for a in self.connection.nodes]
            if self.is_external
            else [("127.0.0.1", n.stream_port) for n in NODES]
        )
        for host, port in addrs:
            try:
                with socket.create_connection((host, port), timeout=1.0):
                    pass
            except OSError:
                return False
        return True

    def _check_ports(self) -> None:
        states = self.container_states()
        for n in NODES:
            if states[n.name] not in {"missing", "exited"}:
                continue  # its ports are its own (or it is being recreated right now)
            for kind, port in n.ports.items():
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        s.bind(("127.0.0.1", port))
                    except OSError:
                        raise PortInUse(port, f"{n.name} {kind}") from None

    def _raise_node_failure(self, node: Node, reason: str) -> NoReturn:
        lines: list[str] = []
        with contextlib.suppress(ClusterError):
            lines = self.logs(node.name, tail=15).splitlines()
        raise NodeBootFailed(node.name, reason, lines)


def external_state(nodes: list[NodeStatus], *, answered: bool) -> ClusterState:
    """The state of an external cluster from its management API's node list: DOWN when no
    node's API answered, FORMED when every listed node runs as a member, DEGRADED when some
    do, STARTING when none does yet."""
    if not answered or not nodes:
        return ClusterState.DOWN
    if all(n.in_cluster for n in nodes):
        return ClusterState.FORMED
    if any(n.in_cluster for n in nodes):
        return ClusterState.DEGRADED
    return ClusterState.STARTING


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


class BootWatch:
    """Tells a node that failed to boot from one that is only passing through a transient
    state. While compose recreates a container (another checkout's bind mounts, a concurrent
    `up`), it is for a while exited, removed (missing), created or restarting: all waited out.
    A node fails only when its container stays exited (or dead) for `grace_s` in a row."""

    STOPPED = frozenset({"exited", "dead"})

    def __init__(self, grace_s: float = 15.0) -> None:
        self.grace_s = grace_s
        self._stopped_since: dict[str, float] = {}

    def observe(self, now: float, states: dict[str, str]) -> str | None:
        """Record the containers' states at `now`; the first node that stayed stopped for
        `grace_s`, or None."""
        for node, state in states.items():
            if state not in self.STOPPED:
                self._stopped_since.pop(node, None)
                continue
            since = self._stopped_since.setdefault(node, now)
            if now - since >= self.grace_s:
                return node
        return None
