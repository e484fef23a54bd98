"""The parts of RabbitMQ's management HTTP API the exporter reads, from whichever node answers.

Every call tries the URLs in turn (one per node: 15672-15674 on the compose cluster) with a
short timeout, and remembers the order: a node that answered is asked first next time, one
that failed goes last, so a dead or paused node costs one timeout, not one per call. A call
that no node answers raises `ManagementUnavailable` (bad credentials: `ConfigError`).

Calls block (urllib); the exporter runs them in threads (`asyncio.to_thread`).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from superticks.errors import ConfigError, ManagementUnavailable

__all__ = ["ActiveConsumer", "ManagementApi", "QueueReplicas"]


@dataclass(frozen=True, slots=True)
class QueueReplicas:
    """A stream's replicas as the broker sees them (Erlang node names)."""

    leader: str
    members: tuple[str, ...]
    online: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ActiveConsumer:
    """A consumer the broker lists: its stream, group (`properties.name`), super stream and
    whether it is the group's active one; `connection` is the connection's name as the broker
    shows it ("peer -> host", "" until the broker's stats know it, ~5 s)."""

    stream: str
    group: str
    super_stream: str
    active: bool
    connection: str


class ManagementApi:
    """A client of the management API of any reachable node (see the module's docstring)."""

    def __init__(
        self,
        urls: tuple[str, ...],
        username: str,
        password: str,
        vhost: str = "/",
        timeout_s: float = 2.0,
    ) -> None:
        if not urls:
            raise ConfigError("at least one management API URL is needed")
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._auth = f"Basic {token}"
        self._order = [u.rstrip("/") for u in urls]
        self._lock = threading.Lock()
        self._timeout = timeout_s
        self._vhost = quote(vhost, safe="")

    def get(self, path: str) -> Any:
        """GET `path` (JSON) from the first node that answers."""
        errors: list[str] = []
        with self._lock:
            order = list(self._order)
        for url in order:
            request = urllib.request.Request(url + path)
            request.add_header("Authorization", self._auth)
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:
                    data = json.loads(response.read())
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    raise ConfigError(
                        f"{url} refused the credentials: check SUPERTICKS_USERNAME/PASSWORD"
                    ) from None
                if exc.code == 404:
                    raise  # the object does not exist: the caller decides
                errors.append(f"{url}: HTTP {exc.code}")
            except (OSError, ValueError) as exc:
                errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
            else:
                self._promote(url)
                return data
            self._demote(url)
        raise ManagementUnavailable("no node's management API answered (" + "; ".join(errors) + ")")

    def _promote(self, url: str) -> None:
        with self._lock:
            if self._order[0] != url:
                self._order.remove(url)
                self._order.insert(0, url)

    def _demote(self, url: str) -> None:
        with self._lock:
            self._order.remove(url)
            self._order.append(url)

    # -- the calls -----------------------------------------------------------------------------
    def super_streams(self) -> dict[str, list[str]]:
        """Every super stream of the vhost with its partition streams, in partition order."""
        bindings = self.get(f"/api/bindings/{self._vhost}")
        found: dict[str, list[tuple[int, str]]] = {}
        for b in bindings:
            order = (b.get("arguments") or {}).get("x-stream-partition-order")
            if isinstance(order, int) and b.get("destination_type") == "queue":
                found.setdefault(str(b["source"]), []).append((order, str(b["destination"])))
        return {name: [s for _, s in sorted(parts)] for name, parts in found.items()}

    def replicas(self) -> dict[str, QueueReplicas]:
        """Leader, members and online members of every stream of the vhost."""
        queues = self.get(
            f"/api/queues/{self._vhost}?columns=name,type,leader,members,online&disable_stats=true"
        )
        return {
            str(q["name"]): QueueReplicas(
                leader=str(q.get("leader") or ""),
                members=tuple(q.get("members") or ()),
                online=tuple(q.get("online") or ()),
            )
            for q in queues
            if q.get("type") == "stream"
        }

    def tracked_offsets(self, stream: str) -> dict[str, int]:
        """Every reference with a stored offset on `stream` (consumer groups), and the offset."""
        try:
            data = self.get(
                f"/api/stream/{self._vhost}/{quote(stream, safe='')}/tracking?type=offset"
            )
        except urllib.error.HTTPError:
            return {}  # the stream is gone
        return {str(k): int(v) for k, v in (data.get("offsets") or {}).items()}

    def consumers(self) -> list[ActiveConsumer]:
        """Every stream consumer of the vhost that belongs to a group."""
        out = []
        for c in self.get(f"/api/stream/consumers/{self._vhost}"):
            props = c.get("properties") or {}
            if "name" not in props:
                continue
            out.append(
                ActiveConsumer(
                    stream=str((c.get("queue") or {}).get("name", "")),
                    group=str(props["name"]),
                    super_stream=str(props.get("super-stream", "")),
                    active=bool(c.get("active")),
                    connection=str((c.get("connection_details") or {}).get("name", "")),
                )
            )
        return out

    def connection_names(self) -> dict[str, str]:
        """Stream connections: the broker's name ("peer -> host") -> the client-provided name."""
        conns = self.get(f"/api/stream/connections/{self._vhost}")
        return {
            str(c["name"]): str(c.get("user_provided_name") or c.get("name"))
            for c in conns
            if "name" in c
        }

    def nodes(self) -> dict[str, bool]:
        """Cluster members and whether each runs."""
        return {str(n["name"]): bool(n.get("running")) for n in self.get("/api/nodes")}
