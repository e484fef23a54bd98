"""The three nodes of docker-compose.yml: names, containers and the host ports they publish."""

from __future__ import annotations

from dataclasses import dataclass

from superticks.errors import UnknownNode

__all__ = ["NODES", "Node", "node_named"]


@dataclass(frozen=True, slots=True)
class Node:
    """One RabbitMQ node of the compose cluster, as docker-compose.yml defines it."""

    name: str  # compose service and hostname: rabbit1
    stream_port: int  # published on 127.0.0.1
    amqp_port: int
    management_port: int
    prometheus_port: int
    stream_tls_port: int  # the stream protocol over TLS

    @property
    def erlang_name(self) -> str:
        return f"rabbit@{self.name}"

    @property
    def container(self) -> str:
        return f"superticks-{self.name}"

    @property
    def ports(self) -> dict[str, int]:
        return {
            "stream": self.stream_port,
            "amqp": self.amqp_port,
            "management": self.management_port,
            "prometheus": self.prometheus_port,
            "stream_tls": self.stream_tls_port,
        }


NODES: tuple[Node, ...] = tuple(
    Node(f"rabbit{i}", 5551 + i, 5671 + i, 15671 + i, 15691 + i, 5561 + i) for i in (1, 2, 3)
)


def node_named(name: str) -> Node:
    """The node called `name` (rabbit1, rabbit2, rabbit3; `rabbit@rabbit2` and `2` also work)."""
    key = name.removeprefix("rabbit@")
    if key.isdigit():
        key = f"rabbit{key}"
    for node in NODES:
        if node.name == key or node.container == key:
            return node
    raise UnknownNode(name, tuple(n.name for n in NODES))
