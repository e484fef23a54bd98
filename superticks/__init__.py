"""superticks: market-data ticks on RabbitMQ Super Streams.

This package holds what every part shares: `settings` (frozen connection and cluster
settings), `errors` (the one exception tree), `streams` (the adapter, the only module that
imports rstream), `tasks` (what owned task loops need from asyncio) and `cli` (the `superticks`
command). The parts themselves are the top-level
packages `cluster`, `partitioning`, `workers` and `bench`.

The settings names are imported when first used (pydantic-settings takes ~0.3 s to import), so
`superticks --help` and other quick commands do not pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from superticks.errors import SuperticksError

if TYPE_CHECKING:
    from superticks.settings import ClusterSettings, ConnectionSettings, load_settings

__all__ = ["ClusterSettings", "ConnectionSettings", "SuperticksError", "load_settings"]

_FROM_SETTINGS = frozenset({"ClusterSettings", "ConnectionSettings", "load_settings"})


def __getattr__(name: str) -> Any:
    if name in _FROM_SETTINGS:
        from superticks import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'superticks' has no attribute {name!r}")
