"""Monitoring: the broker-side lag exporter (`superticks monitor`), the Burrow-style status
rules of a consumer group, and, beside this package, Prometheus' configuration and alert rules
(`prometheus.yml`, `alerts.yml`, `alerts_test.yml`).

It may import the adapter, the settings and the errors (and partitioning's topology); never a
worker's internals, and the data path (partitioning, workers) never imports it.

The dashboard: :mod:`monitoring.promql` is a small typed client of Prometheus' HTTP API and
of `/metrics` pages (pure parsers, `SourceUnavailable` when a source gives no usable answer);
:mod:`monitoring.panels` turns samples into the dashboard's rows and series (pure);
:mod:`monitoring.sources` reads every source of a `DashboardConfig` and remembers when each last
answered; :mod:`monitoring.dashboard` is the Streamlit script (`superticks dashboard`), imported
only by Streamlit. Nothing here imports the data path's internals: the figures come from
Prometheus and `/metrics` pages.
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
from monitoring.panels import (
    GroupCell,
    History,
    LagRow,
    NodeRow,
    PartitionRow,
    ProducerRow,
    SymbolRow,
    lag_rows,
    merge_current,
    node_rows,
    partition_map,
    producer_rows,
    rate_series,
    symbol_rows,
)
from monitoring.promql import (
    Alert,
    MetricSample,
    PrometheusClient,
    Series,
    parse_alerts,
    parse_exposition,
    parse_matrix,
    parse_vector,
    scrape,
)
from monitoring.sources import DashboardConfig, Reading, Sources, SourceState
from monitoring.status import STATUSES, Sample, Status, group_status, partition_status

__all__ = [
    "DEFAULT_MANAGEMENT_URLS",
    "STATUSES",
    "ActiveConsumer",
    "Alert",
    "DashboardConfig",
    "GroupCell",
    "GroupPartition",
    "History",
    "LagRow",
    "ManagementApi",
    "MetricSample",
    "Monitor",
    "MonitorCollector",
    "MonitorConfig",
    "MonitorState",
    "NodeRow",
    "PartitionRow",
    "PartitionState",
    "ProducerRow",
    "PrometheusClient",
    "QueueReplicas",
    "Reading",
    "Sample",
    "Series",
    "Snapshot",
    "SourceHealth",
    "SourceState",
    "Sources",
    "Status",
    "SymbolRow",
    "group_status",
    "lag_rows",
    "merge_current",
    "node_rows",
    "parse_alerts",
    "parse_exposition",
    "parse_matrix",
    "parse_vector",
    "partition_map",
    "partition_status",
    "producer_rows",
    "rate_series",
    "render",
    "scrape",
    "serve",
    "symbol_rows",
]
