"""Every error superticks raises, in one tree. rstream's and Docker's exceptions never leak out:
the adapter and the cluster package map them onto these, and each message says what to do.

::

    SuperticksError                      base: catch this to catch everything of ours
    ├── ConfigError                      a bad flag, env var or setting (raised before any work)
    ├── ClusterError                     the docker-compose cluster cannot be driven
    │   ├── EngineUnavailable            no Docker engine / Compose v2 answers
    │   ├── PortInUse                    a port the cluster publishes is taken (names it)
    │   ├── NodeBootFailed               a node did not join (carries its last log lines)
    │   ├── UnknownNode                  a node name that is not rabbit1..rabbit3
    │   └── ChaosRefused                 chaos asked of an external cluster
    ├── StreamError                      talking to RabbitMQ Streams failed
    │   ├── ConnectionFailed             no node could be reached, or it dropped
    │   │   ├── AuthenticationFailed     the broker refused the credentials or the vhost
    │   │   └── TlsError                 the TLS handshake failed (names the CA file to check)
    │   ├── PermissionDenied             the broker refused the user an operation (names user,
    │   │                                permission and resource, and how to grant it)
    │   ├── TopologyError                a stream/super stream cannot be created as asked
    │   │   └── TopologyMismatch         it exists with another shape (e.g. partition count)
    │   ├── StreamNotFound               a stream/super stream that does not exist
    │   ├── StreamUnavailable            it exists but has no leader right now (a node just went
    │   │                                down; retrying shortly works)
    │   ├── PublishTimeout               a send stayed unconfirmed past its deadline
    │   ├── ProducerClosed               send() on a producer that is stopping or stopped
    │   └── ProducerNameInUse            another live producer holds this producer name
    ├── TickError                        a tick that is not valid (carries the field and value)
    │   ├── DecodeError                  bytes that are not a tick of our wire format
    │   └── TickTooLarge                 a tick whose publish frame exceeds the broker's frame_max
    ├── ReplayTimeout                    a replay did not reach its end offsets in time
    ├── ManagementUnavailable            no node's management HTTP API answered (the monitor)
    └── SourceUnavailable                a monitoring source (Prometheus, an exporter) gave no
                                         usable answer (names it and why)
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "ChaosRefused",
    "ClusterError",
    "ConfigError",
    "ConnectionFailed",
    "DecodeError",
    "EngineUnavailable",
    "ManagementUnavailable",
    "NodeBootFailed",
    "PermissionDenied",
    "PortInUse",
    "ProducerClosed",
    "ProducerNameInUse",
    "PublishTimeout",
    "ReplayTimeout",
    "SourceUnavailable",
    "StreamError",
    "StreamNotFound",
    "StreamUnavailable",
    "SuperticksError",
    "TickError",
    "TickTooLarge",
    "TlsError",
    "TopologyError",
    "TopologyMismatch",
    "UnknownNode",
]


class SuperticksError(Exception):
    """Base of every superticks error."""


class ConfigError(SuperticksError):
    """A setting, flag or environment variable is invalid. Raised before any work starts."""


class ClusterError(SuperticksError):
    """The docker-compose cluster could not be brought up, inspected or changed."""


class EngineUnavailable(ClusterError):
    """No Docker engine (or no Compose v2) answers."""


class PortInUse(ClusterError):
    """A host port that docker-compose.yml publishes is already taken."""

    def __init__(self, port: int, service: str) -> None:
        self.port = port
        self.service = service
        super().__init__(
            f"port 127.0.0.1:{port} (for {service}) is already in use: stop whatever listens "
            f"there (`ss -ltnp 'sport = :{port}'` shows it) or run `superticks cluster down`"
        )


class NodeBootFailed(ClusterError):
    """A node did not start or did not join the cluster in time."""

    def __init__(self, node: str, reason: str, last_log_lines: list[str]) -> None:
        self.node = node
        self.last_log_lines = last_log_lines
        tail = "\n".join(f"    {line}" for line in last_log_lines)
        super().__init__(
            f"node {node} failed to boot: {reason}\n  last log lines "
            f"(`superticks cluster logs {node}` shows all):\n{tail}"
        )


class UnknownNode(ClusterError):
    """A node name that the cluster does not have."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        self.name = name
        super().__init__(f"unknown node {name!r}: the cluster's nodes are {', '.join(known)}")


class ChaosRefused(ClusterError):
    """Chaos commands only drive the compose cluster, never an external one."""


class StreamError(SuperticksError):
    """An operation on RabbitMQ Streams failed."""


class ConnectionFailed(StreamError):
    """No node answered, or the connection dropped and could not be recovered."""


class AuthenticationFailed(ConnectionFailed):
    """The broker refused the username/password or access to the virtual host: trying another
    node will not help."""


class TlsError(ConnectionFailed):
    """The TLS handshake failed: the server's certificate is not trusted or not for its name."""


class PermissionDenied(StreamError):
    """The broker refused an operation for lack of a permission (stream protocol code 16)."""

    def __init__(self, what: str, user: str, permission: str, resource: str, vhost: str) -> None:
        self.user = user
        self.permission = permission
        self.resource = resource
        super().__init__(
            f"{what}: access refused: user {user!r} has no {permission} permission on "
            f"{resource!r} in vhost {vhost!r}. Use the user of the role that does this (README, "
            f"'Users and permissions'), or grant it: rabbitmqctl set_permissions -p {vhost} "
            f"{user} CONFIGURE WRITE READ (regular expressions; {permission} must match "
            f"{resource!r})"
        )


class TopologyError(StreamError):
    """A stream or super stream could not be declared or deleted as asked."""


class TopologyMismatch(TopologyError):
    """A super stream exists with another shape than the one asked for."""


class StreamNotFound(StreamError):
    """The stream or super stream does not exist."""


class StreamUnavailable(StreamError):
    """The stream exists but cannot serve now (no leader elected yet after a node went down)."""


class PublishTimeout(StreamError):
    """A message was not confirmed before its deadline."""


class ProducerClosed(StreamError):
    """The producer is stopping or stopped and takes no more sends."""


class ProducerNameInUse(StreamError):
    """Another live producer publishes under this name to this super stream. Two producers
    with one name would share publishing ids, and broker deduplication would drop (and
    confirm) what the second sends, so the second is refused before it sends anything."""

    def __init__(self, name: str, super_stream: str, waited_s: float) -> None:
        self.name = name
        self.super_stream = super_stream
        super().__init__(
            f"producer name {name!r} is in use by another live producer on super stream "
            f"{super_stream!r} (it did not become free within {waited_s:g} s): give this "
            f"producer another name (`superticks produce --name NAME`), or stop the other one "
            f"first (a producer that died without closing its connection holds its name until "
            f"the broker notices, about 10 s)"
        )


class TickError(SuperticksError, ValueError):
    """A tick that breaks the model's rules; names the field and what was wrong."""


class DecodeError(TickError):
    """Bytes that are not a tick in superticks' wire format."""


class TickTooLarge(TickError):
    """A tick too large for one publish frame: the broker would close the connection."""

    def __init__(self, symbol: str, frame_size: int, frame_max: int) -> None:
        self.symbol = symbol
        self.frame_size = frame_size
        self.frame_max = frame_max
        super().__init__(
            f"tick of {symbol!r} refused before sending: its publish frame would be "
            f"{frame_size:,} bytes, over the broker's frame limit of {frame_max:,} bytes "
            f"(stream.frame_max); nothing of this call was sent. Send smaller ticks."
        )


class ReplayTimeout(SuperticksError):
    """A replay did not reach the end offsets it set itself before its timeout."""


class ManagementUnavailable(SuperticksError):
    """No node's management HTTP API answered (the monitor reports it as a metric)."""


class SourceUnavailable(SuperticksError):
    """A monitoring source (Prometheus' API, an exporter's /metrics) did not answer, or answered
    something that is not what its API promises."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"no data from {source}: {reason} (is it running, and is the URL right?)")
