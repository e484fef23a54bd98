"""A small client of RabbitMQ's management HTTP API: cluster membership, versions, partitions,
and the users and permissions `superticks cluster up` declares.

Cheaper than `rabbitmqctl` (no Erlang CLI start-up) and the same for a compose or an external
cluster. It asks each URL in turn and answers from the first node that responds.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from superticks.errors import ClusterError

__all__ = ["ManagementClient", "NodeInfo", "Overview", "QueueInfo"]


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    running: bool
    partitions: tuple[str, ...]
    uptime_ms: int


@dataclass(frozen=True, slots=True)
class Overview:
    rabbitmq_version: str
    erlang_version: str
    cluster_name: str
    answered_by: str


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue or stream; nodes by Erlang name (``rabbit@rabbit1``), `online`: its members
    that run."""

    name: str
    type: str
    leader: str
    members: tuple[str, ...]
    online: tuple[str, ...]
    messages: int
    vhost: str = "/"


def _queue_info(data: dict[str, Any]) -> QueueInfo:
    """A queue's JSON (`/api/queues`) as a QueueInfo."""
    return QueueInfo(
        name=str(data.get("name", "")),
        type=str(data.get("type", "")),
        leader=str(data.get("leader") or data.get("node") or ""),
        members=tuple(str(n) for n in data.get("members") or ()),
        online=tuple(str(n) for n in data.get("online") or ()),
        messages=int(data.get("messages") or 0),
        vhost=str(data.get("vhost", "/")),
    )


class ManagementClient:
    """Reads the management API of any reachable node (first answering URL wins)."""

    def __init__(self, urls: tuple[str, ...], username: str, password: str, timeout_s: float = 3.0):
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._auth = f"Basic {token}"
        self._urls = urls
        self._timeout = timeout_s

    def _get(self, path: str) -> Any:
        errors: list[str] = []
        for url in self._urls:
            request = urllib.request.Request(url.rstrip("/") + path)
            request.add_header("Authorization", self._auth)
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    raise ClusterError(
                        f"{url} refused the credentials: check SUPERTICKS_USERNAME/PASSWORD"
                    ) from None
                errors.append(f"{url}: HTTP {exc.code}")
            except (OSError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
        raise ClusterError("no node's management API answered (" + "; ".join(errors) + ")")

    def nodes(self) -> list[NodeInfo]:
        return [
            NodeInfo(
                name=n["name"],
                running=bool(n.get("running")),
                partitions=tuple(n.get("partitions") or ()),
                uptime_ms=int(n.get("uptime") or 0),
            )
            for n in self._get("/api/nodes")
        ]

    def overview(self) -> Overview:
        data = self._get("/api/overview")
        return Overview(
            rabbitmq_version=str(data.get("rabbitmq_version", "")),
            erlang_version=str(data.get("erlang_version", "")),
            cluster_name=str(data.get("cluster_name", "")),
            answered_by=str(data.get("node", "")),
        )

    def queue(self, name: str, vhost: str = "/") -> QueueInfo:
        """A queue's or stream's replicas as the broker sees them."""
        from urllib.parse import quote

        data = self._get(f"/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}")
        return _queue_info({"name": name, "vhost": vhost, **data})

    def leader_counts(self) -> dict[str, int]:
        """How many queues and streams each node leads, every vhost (what the broker's
        ``balanced`` leader locator weighs); nodes leading none are absent."""
        counts: dict[str, int] = {}
        for q in self._get("/api/queues?columns=name,node,leader"):
            node = str(q.get("leader") or q.get("node") or "")
            if node:
                counts[node] = counts.get(node, 0) + 1
        return counts

    def streams(self) -> list[QueueInfo]:
        """Every stream of every vhost that has a leader."""
        columns = "name,vhost,type,node,leader,members,online,messages"
        infos = [_queue_info(q) for q in self._get(f"/api/queues?columns={columns}")]
        return [q for q in infos if q.type == "stream" and q.leader]

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        """PUT/DELETE `path` (JSON `body`) on the first node that answers. Raises ClusterError
        naming the refusal (e.g. 401/403: the user may not manage users)."""
        data = json.dumps(body).encode() if body is not None else None
        errors: list[str] = []
        for url in self._urls:
            request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)
            request.add_header("Authorization", self._auth)
            request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=self._timeout):
                    return
            except urllib.error.HTTPError as exc:
                reason = exc.read().decode(errors="replace")[:200]
                raise ClusterError(
                    f"{method} {path} refused by {url}: HTTP {exc.code} {reason}"
                ) from None
            except OSError as exc:
                errors.append(f"{url}: {exc}")
        raise ClusterError("no node's management API answered (" + "; ".join(errors) + ")")

    def connections(self) -> dict[str, str]:
        """The broker's name of each client connection, by the name the client gave it
        (`connection_name`; connections appear once the broker's statistics list them, ~5 s)."""
        return {
            str((c.get("client_properties") or {}).get("connection_name")): str(c["name"])
            for c in self._get("/api/connections")
            if (c.get("client_properties") or {}).get("connection_name")
        }

    def close_connection(self, name: str) -> None:
        """Close a client connection from the broker's side (`name` as `connections` gives it)."""
        from urllib.parse import quote

        self.send("DELETE", f"/api/connections/{quote(name, safe='')}")
