"""The three-node RabbitMQ cluster of docker-compose.yml: up/down/status and chaos primitives."""

from cluster.chaos import heal, kill, partition, pause, restart, unpause
from cluster.compose import Cluster, ClusterState, ClusterStatus, NodeStatus
from cluster.engine import engine_answers, ensure_engine, stop_started_engine
from cluster.image import ensure_images
from cluster.node import NODES, Node, node_named

__all__ = [
    "NODES",
    "Cluster",
    "ClusterState",
    "ClusterStatus",
    "Node",
    "NodeStatus",
    "engine_answers",
    "ensure_engine",
    "ensure_images",
    "heal",
    "kill",
    "node_named",
    "partition",
    "pause",
    "restart",
    "stop_started_engine",
    "unpause",
]
