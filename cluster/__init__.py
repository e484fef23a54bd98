"""The three-node RabbitMQ cluster of docker-compose.yml: up/down/status, its TLS certificates
and least-privilege users, and chaos primitives."""

from cluster.chaos import (
    Drain,
    await_members,
    coordinator_leader,
    drain,
    drain_plan,
    heal,
    kill,
    node_faults,
    partition,
    pause,
    restart,
    rolling_restart,
    unpause,
)
from cluster.compose import Cluster, ClusterState, ClusterStatus, NodeStatus
from cluster.engine import engine_answers, ensure_engine, stop_started_engine
from cluster.image import ensure_images
from cluster.node import NODES, Node, node_named
from cluster.users import Permissions, RoleUser, ensure_role_users, role_permissions, role_users

__all__ = [
    "NODES",
    "Cluster",
    "ClusterState",
    "ClusterStatus",
    "Drain",
    "Node",
    "NodeStatus",
    "Permissions",
    "RoleUser",
    "await_members",
    "coordinator_leader",
    "drain",
    "drain_plan",
    "engine_answers",
    "ensure_engine",
    "ensure_images",
    "ensure_role_users",
    "heal",
    "kill",
    "node_faults",
    "node_named",
    "partition",
    "pause",
    "restart",
    "role_permissions",
    "role_users",
    "rolling_restart",
    "stop_started_engine",
    "unpause",
]
