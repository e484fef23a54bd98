"""Frozen settings shared by every command: where the cluster is and how to reach it.

One `ConnectionSettings` is embedded in the producer's and the worker's configs, so the options
that say how to reach RabbitMQ cannot drift between them. Values come from `SUPERTICKS_*`
environment variables, then from CLI flags (which build a copy with `model_copy(update=...)`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = [
    "TLS_NODES",
    "ClusterBackend",
    "ClusterSettings",
    "ConnectionSettings",
    "NodeAddress",
    "Role",
    "default_compose_file",
    "load_settings",
]

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_compose_file() -> Path:
    """The checkout's docker-compose.yml; installed as a package (no checkout), the copy the
    wheel ships in `cluster/_compose/` (with the configs it mounts, in the same layout)."""
    checkout = REPO_ROOT / "docker-compose.yml"
    if checkout.is_file():
        return checkout
    return REPO_ROOT / "cluster" / "_compose" / "docker-compose.yml"


class NodeAddress(BaseModel):
    """One node's stream endpoint as seen from the client."""

    model_config = ConfigDict(frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)

    @classmethod
    def parse(cls, text: str) -> NodeAddress:
        host, sep, port = text.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"node address {text!r} is not HOST:PORT (e.g. localhost:5552)")
        return cls(host=host, port=int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _parse_nodes(value: Any) -> Any:
    if isinstance(value, str):
        parts = [p for p in value.split(",") if p.strip()]
        if not parts:
            raise ValueError("at least one node address is needed (HOST:PORT,...)")
        return [NodeAddress.parse(p) for p in parts]
    return value


class Role(StrEnum):
    """Who a command connects as (least privilege; see `ConnectionSettings.for_role`)."""

    ADMIN = "admin"  # topology: create/delete streams and super streams (and the users)
    PRODUCER = "producer"  # writes the super stream's partitions
    WORKER = "worker"  # reads the partitions, stores offsets, writes the dead-letter stream
    MONITORING = "monitoring"  # reads metadata only (and the management API, tag monitoring)
    STRATEGY = "strategy"  # a worker that also writes the trading audit log
    AGGREGATOR = "aggregator"  # reads the venues' super streams, writes the unified one


ROLE_USERS = (Role.PRODUCER, Role.WORKER, Role.MONITORING, Role.STRATEGY, Role.AGGREGATOR)
"""The roles that have a user of their own (the admin's is `username`)."""


# The compose cluster's stream-over-TLS endpoints (each node's own published port).
TLS_NODES = (
    NodeAddress(host="localhost", port=5562),
    NodeAddress(host="localhost", port=5563),
    NodeAddress(host="localhost", port=5564),
)


def _existing_file(value: Path | None) -> Path | None:
    if value is not None and not value.is_file():
        raise ValueError(f"{value} is not a readable file")
    return value


class ConnectionSettings(BaseSettings):
    """How to reach RabbitMQ Streams. Env: SUPERTICKS_NODES, SUPERTICKS_USERNAME, ...

    `nodes` lists every node's stream endpoint; clients start at the first that answers and follow
    the broker's metadata to each partition's leader (the compose cluster advertises
    localhost:5552..5554, its published ports).

    TLS: with `tls` (SUPERTICKS_TLS=true) every connection is TLS, `nodes` are TLS endpoints
    (default localhost:5562..5564, the compose cluster's TLS ports, whose metadata then
    advertises the TLS ports too), the server's certificate must chain to `ca_file`
    (SUPERTICKS_CA_FILE; default: the system's trust store) and name the host connected to.
    `cert_file`/`key_file` (SUPERTICKS_CERT_FILE/KEY_FILE) present a client certificate.

    Roles: `username`/`password` are the admin's (and everyone's by default);
    SUPERTICKS_PRODUCER_USERNAME/PASSWORD, SUPERTICKS_WORKER_USERNAME/PASSWORD,
    SUPERTICKS_MONITORING_USERNAME/PASSWORD, SUPERTICKS_STRATEGY_USERNAME/PASSWORD and
    SUPERTICKS_AGGREGATOR_USERNAME/PASSWORD name a least-privilege user per role (`for_role`).
    """

    model_config = SettingsConfigDict(env_prefix="SUPERTICKS_", frozen=True, extra="ignore")

    nodes: Annotated[tuple[NodeAddress, ...], NoDecode] = (
        NodeAddress(host="localhost", port=5552),
        NodeAddress(host="localhost", port=5553),
        NodeAddress(host="localhost", port=5554),
    )
    username: str = Field(default="superticks", min_length=1)
    password: SecretStr = SecretStr("superticks")
    vhost: str = Field(default="/", min_length=1)
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    producer_username: str | None = Field(default=None, min_length=1)
    producer_password: SecretStr | None = None
    worker_username: str | None = Field(default=None, min_length=1)
    worker_password: SecretStr | None = None
    monitoring_username: str | None = Field(default=None, min_length=1)
    monitoring_password: SecretStr | None = None
    strategy_username: str | None = Field(default=None, min_length=1)
    strategy_password: SecretStr | None = None
    aggregator_username: str | None = Field(default=None, min_length=1)
    aggregator_password: SecretStr | None = None
    # 3 s: the broker drops a hung client (SIGSTOP, frozen VM) after ~2.7 heartbeats, ~8 s,
    # so its partitions move within 10 s; a busy async handler never blocks the heartbeats.
    heartbeat_s: int = Field(default=3, ge=1, le=600)
    connect_timeout_s: float = Field(default=10.0, gt=0)

    _split_nodes = field_validator("nodes", mode="before")(_parse_nodes)
    _files_exist = field_validator("ca_file", "cert_file", "key_file")(_existing_file)

    @model_validator(mode="after")
    def _tls_defaults(self) -> ConnectionSettings:
        if self.tls and "nodes" not in self.model_fields_set:
            object.__setattr__(self, "nodes", TLS_NODES)  # frozen: set once, while validating
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs both cert_file and key_file")
        for role in ROLE_USERS:
            if getattr(self, f"{role}_username") and getattr(self, f"{role}_password") is None:
                raise ValueError(f"{role}_username is set without {role}_password")
        return self

    def for_role(self, role: Role | str) -> ConnectionSettings:
        """These settings as `role`'s user: its own if one is configured, else the admin's."""
        role = Role(role)
        username = getattr(self, f"{role}_username", None) if role is not Role.ADMIN else None
        if username is None:
            return self
        password = getattr(self, f"{role}_password")
        return self.model_copy(update={"username": username, "password": password})


class ClusterBackend(StrEnum):
    COMPOSE = "compose"
    EXTERNAL = "external"


class ClusterSettings(BaseSettings):
    """Which cluster the commands drive. Env: SUPERTICKS_CLUSTER, SUPERTICKS_RABBITMQ_IMAGE, ...

    `compose` (default): the three nodes of docker-compose.yml, which `superticks cluster` brings
    up and the chaos commands may kill. `external`: an existing cluster named by
    SUPERTICKS_NODES; `superticks cluster` then only reports and refuses chaos.
    """

    model_config = SettingsConfigDict(env_prefix="SUPERTICKS_", frozen=True, extra="ignore")

    cluster: ClusterBackend = ClusterBackend.COMPOSE
    compose_file: Path = Field(default_factory=default_compose_file)
    """SUPERTICKS_COMPOSE_FILE; default: the checkout's, else the one installed with the package."""
    project: str = Field(default="superticks", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    rabbitmq_image: str | None = None
    boot_timeout_s: float = Field(default=180.0, gt=0)


def load_settings() -> tuple[ConnectionSettings, ClusterSettings]:
    """Read both settings objects from the environment, with clear errors."""
    from pydantic import ValidationError

    from superticks.errors import ConfigError

    try:
        return ConnectionSettings(), ClusterSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"SUPERTICKS_{'_'.join(str(p) for p in e['loc']).upper() or '*'}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
