"""superticks: market-data ticks on RabbitMQ Super Streams.

This package holds what every part shares: `settings` (frozen connection and cluster
settings), `errors` (the one exception tree), `streams` (the adapter, the only module that
imports rstream) and `cli` (the `superticks` command). The parts themselves are the top-level
packages `cluster`, `partitioning`, `workers` and `bench`.
"""

from superticks.errors import SuperticksError
from superticks.settings import ClusterSettings, ConnectionSettings, load_settings

__all__ = ["ClusterSettings", "ConnectionSettings", "SuperticksError", "load_settings"]
