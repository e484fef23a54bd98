"""The trading side: an event-sourced audit log, its rebuild, a paper strategy, venues merged.

* `trading.events`: `TradingEvent` (versioned, decimals exact) and its wire format;
* `trading.ledger`: `Ledger` / `rebuild`, positions and P&L as a pure fold over events;
* `trading.audit`: `AuditLog`, the lossless publisher of events to their own stream, and
  `replay_log` / `tail_log`, which read it back;
* `trading.reading`: reads to a definite end (the log, a partition's ticks, the last prices);
* `trading.strategy`: `MeanReversion` and `StrategyHandler`, a paper strategy in a worker;
* `trading.venues`: `Aggregator` (per-venue super streams merged into one) and the
  consolidated best bid and offer.

It may import the adapter, `partitioning` and the workers' handler protocol; never `bench`,
`cluster` or the CLI (tests/unit/test_layering.py).
"""

from trading.audit import AUDIT_STREAM, AuditConfig, AuditLog, replay_log, tail_log
from trading.events import EVENT_SCHEMA_VERSION, EventType, Side, TradingEvent
from trading.ledger import Invalid, Ledger, Order, Position, rebuild
from trading.reading import last_prices, read_to_end
from trading.strategy import MeanReversion, StrategyHandler, StrategyParams

__all__ = [
    "AUDIT_STREAM",
    "EVENT_SCHEMA_VERSION",
    "AuditConfig",
    "AuditLog",
    "EventType",
    "Invalid",
    "Ledger",
    "MeanReversion",
    "Order",
    "Position",
    "Side",
    "StrategyHandler",
    "StrategyParams",
    "TradingEvent",
    "last_prices",
    "read_to_end",
    "rebuild",
    "replay_log",
    "tail_log",
]
