"""Monitoring: the broker-side lag exporter (`superticks monitor`), the Burrow-style status
rules of a consumer group, and, beside this package, Prometheus' configuration and alert rules
(`prometheus.yml`, `alerts.yml`, `alerts_test.yml`).

It may import the adapter, the settings and the errors (and partitioning's topology); never a
worker's internals, and the data path (partitioning, workers) never imports it.
"""

from monitoring.exporter import (
    DEFAULT_MANAGEMENT_URLS,
    GroupPartition,
    Monitor,
    MonitorCollector,
    MonitorConfig,
    MonitorState,
    PartitionState,
    Snapshot,
    SourceHealth,
    render,
    serve,
)
from monitoring.management import ActiveConsumer, ManagementApi, QueueReplicas
from monitoring.status import STATUSES, Sample, Status, group_status, partition_status

__all__ = [
    "DEFAULT_MANAGEMENT_URLS",
    "STATUSES",
    "ActiveConsumer",
    "GroupPartition",
    "ManagementApi",
    "Monitor",
    "MonitorCollector",
    "MonitorConfig",
    "MonitorState",
    "PartitionState",
    "QueueReplicas",
    "Sample",
    "Snapshot",
    "SourceHealth",
    "Status",
    "group_status",
    "partition_status",
    "render",
    "serve",
]
