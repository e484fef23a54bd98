"""Monitoring: what operators watch. Beside Prometheus' configuration (`prometheus.yml`):

:mod:`monitoring.promql` is a small typed client of Prometheus' HTTP API and of `/metrics`
pages (pure parsers, `SourceUnavailable` when a source gives no usable answer);
:mod:`monitoring.panels` turns samples into the dashboard's rows and series (pure);
:mod:`monitoring.sources` reads every source of a `DashboardConfig` and remembers when each last
answered; :mod:`monitoring.dashboard` is the Streamlit script (`superticks dashboard`), imported
only by Streamlit. Nothing here imports the data path's internals: the figures come from
Prometheus and `/metrics` pages.
"""

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
    PrometheusClient,
    Sample,
    Series,
    parse_alerts,
    parse_exposition,
    parse_matrix,
    parse_vector,
    scrape,
)
from monitoring.sources import DashboardConfig, Reading, Sources, SourceState

__all__ = [
    "Alert",
    "DashboardConfig",
    "GroupCell",
    "History",
    "LagRow",
    "NodeRow",
    "PartitionRow",
    "ProducerRow",
    "PrometheusClient",
    "Reading",
    "Sample",
    "Series",
    "SourceState",
    "Sources",
    "SymbolRow",
    "lag_rows",
    "merge_current",
    "node_rows",
    "parse_alerts",
    "parse_exposition",
    "parse_matrix",
    "parse_vector",
    "partition_map",
    "producer_rows",
    "rate_series",
    "scrape",
    "symbol_rows",
]
