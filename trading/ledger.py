"""Rebuild by replay: positions, average cost and P&L as a pure fold over trading events.

`Ledger.apply(event)` folds one event, given as its parsed wire body (a dict with the keys of
`trading.events.EVENT_FIELDS`), into the state; `Ledger.apply_json(body)` folds one from its JSON
body, decoded straight into a `WireEvent` (msgspec: no dict, attribute reads; the replay's path,
~15% faster), to the same state and refusals; `rebuild(events, until_us=..., marks=...)` folds
a whole log. Nothing else is read: the same events give the same state, in any process, at any
time, which is what makes "what did we hold at 15:47?" answerable from the audit log alone.

Accounting (average cost, per symbol):

* fills (``order_partially_filled``, ``order_filled``) move the position: a buy adds
  ``+quantity``, a sell ``-quantity``; ``cost`` is the signed cost of the open position
  (``position * average_cost``);
* a fill that reduces the position realises ``closed * price - cost * closed / |position|``
  (signed: a short is closed by buying back), that share of the cost rounded to
  `COST_QUANTUM` (1e-8) when it does not divide exactly -- a full close takes all that is
  left, so the rounding never accumulates past a flat position -- and a fill that crosses zero
  opens the rest at the fill's price;
* unrealised P&L is ``position * mark - cost`` for a mark (the last tick's price at that time).

Validation: an event that does not fit the state -- a fill for an unknown order, an overfill, a
fill or cancel after the order was filled, cancelled or rejected, an ``order_filled`` that
leaves the order incomplete, a ``position_updated`` that disagrees with the fills, a duplicate
order id, a malformed field -- is recorded in `Ledger.invalid` with the offending event and
its position in the log, and is not applied. The fold never raises for bad input.

Events whose timestamp is after `until_us` are skipped (the log is in publish order, which
interleaves producers, so each event's own timestamp decides).

Memory: a ledger remembers every order, so that an event for a closed one is refused as such.
A long-lived one (a strategy's, folding its own events all day) sets `Ledger.closed_kept`: it
then forgets the oldest closed (filled, cancelled, rejected) orders beyond that many, and an
event for one of those is refused as for an unknown order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from partitioning.model import format_timestamp_us, parse_timestamp_us

__all__ = ["COST_QUANTUM", "Invalid", "Ledger", "Order", "Position", "WireEvent", "rebuild"]

_ZERO = Decimal(0)
COST_QUANTUM = Decimal("1e-8")
"""A partial close takes its share of the position's cost rounded to this (half even)."""
_OPEN = ("open", "partially_filled")


class WireEvent(msgspec.Struct, gc=False):
    """An event's wire body as the fold reads it: every field as the JSON had it (any type,
    None when absent; unknown keys dropped), checked by the fold itself. Decoding a body
    straight into it (`Ledger.apply_json`) is the replay's fast path; `Ledger.apply` takes the
    wire dict."""

    version: Any = None
    event_id: Any = None
    timestamp: Any = None
    type: Any = None
    order_id: Any = None
    symbol: Any = None
    side: Any = None
    quantity: Any = None
    price: Any = None
    reason: Any = None


_WIRE_DECODER = msgspec.json.Decoder(WireEvent)
_WIRE_FIELDS = WireEvent.__struct_fields__


@dataclass(slots=True)
class Order:
    order_id: str
    symbol: str
    side: str
    quantity: Decimal
    filled: Decimal = _ZERO
    status: str = "open"  # open, partially_filled, filled, cancelled, rejected


@dataclass(slots=True)
class Position:
    symbol: str
    quantity: Decimal = _ZERO  # signed: > 0 long, < 0 short
    cost: Decimal = _ZERO  # signed cost of the open position (quantity * average cost)
    realised: Decimal = _ZERO
    fills: int = 0
    bought: Decimal = _ZERO
    sold: Decimal = _ZERO

    @property
    def average_cost(self) -> Decimal | None:
        """cost / position, rounded to 1e-8 when it has more digits (None when flat)."""
        if not self.quantity:
            return None
        return _rounded(self.cost / self.quantity)

    def unrealised(self, mark: Decimal | None) -> Decimal | None:
        if not self.quantity:
            return _ZERO
        return None if mark is None else self.quantity * mark - self.cost

    def to_dict(self, mark: Decimal | None = None) -> dict[str, Any]:
        """JSON-able: decimals as strings (exact)."""
        average = self.average_cost
        unrealised = self.unrealised(mark)
        return {
            "symbol": self.symbol,
            "position": str(self.quantity),
            "average_cost": None if average is None else str(average),
            "realised_pnl": str(self.realised),
            "unrealised_pnl": None if unrealised is None else str(unrealised),
            "mark": None if mark is None else str(mark),
            "fills": self.fills,
            "bought": str(self.bought),
            "sold": str(self.sold),
        }


@dataclass(frozen=True, slots=True)
class Invalid:
    """An event the fold refused: where it is in the log, which event, and why."""

    index: int  # 0-based position among the events given to the ledger (or the stream offset)
    event_id: str | None
    type: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "event_id": self.event_id,
            "type": self.type,
            "reason": self.reason,
        }


class _Refused(Exception):
    """The event does not fit the state (its message says why)."""


@dataclass(slots=True)
class Ledger:
    """The state the events so far imply (see the module docstring)."""

    until_us: int | None = None
    closed_kept: int | None = None
    """How many closed orders to remember (the oldest forgotten first); None: all."""
    orders: dict[str, Order] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    invalid: list[Invalid] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    applied: int = 0
    skipped: int = 0  # after `until_us`
    last_timestamp_us: int | None = None  # of events not in the fixed-width form
    _until_text: str | None = None
    _last_text: str | None = None  # the latest fixed-width timestamp applied
    _closed: deque[str] = field(default_factory=deque)  # ids of closed orders, oldest first

    def __post_init__(self) -> None:
        if self.until_us is not None:
            self._until_text = format_timestamp_us(self.until_us)
        if self.closed_kept is not None and self.closed_kept < 0:
            raise ValueError(f"closed_kept={self.closed_kept}: must be >= 0 (or None: all)")

    def _closing(self, order_id: str) -> None:
        """`order_id` was just closed: with `closed_kept`, forget the oldest beyond it."""
        kept = self.closed_kept
        if kept is None:
            return
        closed = self._closed
        closed.append(order_id)
        while len(closed) > kept:
            self.orders.pop(closed.popleft(), None)

    # -- folding -------------------------------------------------------------------------
    def apply(self, event: Mapping[str, Any], index: int | None = None) -> bool:
        """Fold one event (its wire dict); False if it was skipped or refused."""
        where = self.applied + self.skipped + len(self.invalid) if index is None else index
        if type(event) is not dict and not isinstance(event, Mapping):  # dict: no ABC check
            kind = type(event).__name__
            self.refuse(where, event, f"an event must be a JSON object, not {kind}")
            return False
        get = event.get
        return self.apply_wire(WireEvent(*[get(name) for name in _WIRE_FIELDS]), where)

    def apply_json(self, body: bytes, index: int) -> bool:
        """Fold one event from its JSON body (the replay's path: decoded straight into a
        `WireEvent`); False if it was skipped or refused (not JSON, not an object, ...)."""
        try:
            event = _WIRE_DECODER.decode(body)
        except msgspec.ValidationError as exc:  # valid JSON, not an object
            self.refuse(index, None, f"an event must be a JSON object: {exc}")
            return False
        except msgspec.DecodeError as exc:
            self.refuse(index, None, f"not a trading event: {exc}")
            return False
        return self.apply_wire(event, index)

    def apply_wire(self, event: WireEvent, index: int) -> bool:
        """Fold one decoded event; False if it was skipped or refused."""
        try:
            return self._fold(event)
        except _Refused as exc:
            self.refuse(index, event, str(exc))
        except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            self.refuse(index, event, f"malformed event: {type(exc).__name__}: {exc}")
        return False

    def _fold(self, event: WireEvent) -> bool:
        stamp = event.timestamp
        if type(stamp) is not str:
            raise _Refused("timestamp: missing or not a string")
        until = self._until_text
        # Our own timestamps have one fixed width: compare the text; parse anything else.
        micros: int | None = None
        if len(stamp) == 27 and stamp[26] == "Z":
            if until is not None and stamp > until:
                self.skipped += 1
                return False
        else:
            micros = _micros(stamp)
            if self.until_us is not None and micros > self.until_us:
                self.skipped += 1
                return False
        if event.version != 1:
            raise _Refused(f"unknown event schema version {event.version!r}")
        kind = event.type
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise _Refused(f"unknown event type {kind!r}")
        handler(self, event)
        self.applied += 1
        counts = self.counts
        counts[kind] = counts.get(kind, 0) + 1
        if micros is None:
            if self._last_text is None or stamp > self._last_text:
                self._last_text = stamp
        elif self.last_timestamp_us is None or micros > self.last_timestamp_us:
            self.last_timestamp_us = micros
        return True

    def refuse(self, where: int, event: object, reason: str) -> None:
        """Record `event` (at position `where`) as refused for `reason`."""
        if isinstance(event, WireEvent):
            event_id, kind = event.event_id, event.type
        elif isinstance(event, Mapping):
            event_id, kind = event.get("event_id"), event.get("type")
        else:
            event_id = kind = None
        self.invalid.append(
            Invalid(
                where,
                event_id if isinstance(event_id, str) else None,
                kind if isinstance(kind, str) else None,
                reason,
            )
        )

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position(symbol)
        return pos

    # -- results -------------------------------------------------------------------------
    def last_event_us(self) -> int | None:
        """The latest timestamp among the events applied."""
        texts = None if self._last_text is None else _micros(self._last_text)
        stamps = [t for t in (texts, self.last_timestamp_us) if t is not None]
        return max(stamps) if stamps else None

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.status in _OPEN]

    def summary(self, marks: Mapping[str, Decimal] | None = None) -> dict[str, Any]:
        """JSON-able state: per-symbol positions and P&L (marked to `marks`), totals, the
        refused events."""
        marks = marks or {}
        symbols = [self.positions[s].to_dict(marks.get(s)) for s in sorted(self.positions)]
        realised = sum((p.realised for p in self.positions.values()), _ZERO)
        unrealised: Decimal | None = _ZERO
        for pos in self.positions.values():
            value = pos.unrealised(marks.get(pos.symbol))
            unrealised = None if value is None or unrealised is None else unrealised + value
        return {
            "until": None if self.until_us is None else format_timestamp_us(self.until_us),
            "last_event": None
            if (last := self.last_event_us()) is None
            else format_timestamp_us(last),
            "events": self.applied + self.skipped + len(self.invalid),
            "applied": self.applied,
            "skipped_after_until": self.skipped,
            "invalid": len(self.invalid),
            "counts": dict(sorted(self.counts.items())),
            "open_orders": len(self.open_orders()),
            "realised_pnl": str(realised),
            "unrealised_pnl": None if unrealised is None else str(unrealised),
            "symbols": symbols,
            "invalid_events": [i.to_dict() for i in self.invalid],
        }


def rebuild(
    events: Iterable[Mapping[str, Any]],
    *,
    until_us: int | None = None,
) -> Ledger:
    """Fold `events` (wire dicts, in log order) into a new `Ledger`."""
    ledger = Ledger(until_us=until_us)
    apply = ledger.apply
    for index, event in enumerate(events):
        apply(event, index)
    return ledger


# -- the event handlers (validate everything first, then change the state) --------------------


def _micros(text: str) -> int:
    try:
        return parse_timestamp_us(text)
    except ValueError as exc:
        raise _Refused(f"timestamp={text!r}: {exc}") from None


_DECIMALS: dict[str, Decimal] = {}
"""Cache: decimal strings already parsed and found finite (quantities and prices repeat)."""


def _decimal(value: Any, name: str) -> Decimal:
    if type(value) is not str:
        raise _Refused(f"{name}: {'missing' if value is None else 'not a decimal string'}")
    number = _DECIMALS.get(value)
    if number is not None:
        return number
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _Refused(f"{name}={value!r}: not a decimal") from None
    if not number.is_finite():
        raise _Refused(f"{name}={value!r}: not finite")
    if len(_DECIMALS) >= 65_536:
        _DECIMALS.clear()
    _DECIMALS[value] = number
    return number


def _positive(value: Any, name: str) -> Decimal:
    number = _decimal(value, name)
    if number <= 0:
        raise _Refused(f"{name}={value!r}: must be > 0")
    return number


def _string(value: Any, name: str) -> str:
    if type(value) is not str or not value:
        raise _Refused(f"{name}: missing or not a string")
    return value


def _side(event: WireEvent) -> str:
    side = event.side
    if side == "buy" or side == "sell":
        return str(side)
    raise _Refused(f"side={side!r}: must be 'buy' or 'sell'")


def _known(ledger: Ledger, event: WireEvent, what: str) -> Order:
    order_id = _string(event.order_id, "order_id")
    order = ledger.orders.get(order_id)
    if order is None:
        raise _Refused(f"{what} for unknown order {order_id!r}")
    symbol = event.symbol
    if symbol is not None and symbol != order.symbol:
        raise _Refused(f"{what} names symbol {symbol!r}, order {order_id!r} is {order.symbol!r}")
    return order


def _created(ledger: Ledger, event: WireEvent) -> None:
    order_id = _string(event.order_id, "order_id")
    symbol = _string(event.symbol, "symbol")
    side = _side(event)
    quantity = _positive(event.quantity, "quantity")
    if event.price is not None:
        _positive(event.price, "price")
    if order_id in ledger.orders:
        raise _Refused(f"duplicate order id {order_id!r}")
    ledger.orders[order_id] = Order(order_id, symbol, side, quantity)


def _fill(ledger: Ledger, event: WireEvent) -> None:
    order = _known(ledger, event, "fill")
    if order.status not in _OPEN:
        raise _Refused(f"fill after the order was {order.status}")
    if event.side is not None and event.side != order.side:
        raise _Refused(f"fill side {event.side!r} differs from the order's {order.side!r}")
    quantity = _positive(event.quantity, "quantity")
    price = _positive(event.price, "price")
    filled = order.filled + quantity
    if filled > order.quantity:
        raise _Refused(
            f"overfill: {filled} of an order for {order.quantity} ({order.filled} filled before)"
        )
    complete = filled == order.quantity
    if event.type == "order_filled" and not complete:
        raise _Refused(f"order_filled leaves {order.quantity - filled} of {order.quantity} open")
    if event.type == "order_partially_filled" and complete:
        raise _Refused("order_partially_filled completes the order (should be order_filled)")
    pos = ledger.positions.get(order.symbol) or Position(order.symbol)
    signed = quantity if order.side == "buy" else -quantity
    held, cost, realised = _after_fill(pos.quantity, pos.cost, pos.realised, signed, price)
    # nothing above changed the state: now apply
    order.filled = filled
    order.status = "filled" if complete else "partially_filled"
    if complete:
        ledger._closing(order.order_id)
    ledger.positions[order.symbol] = pos
    pos.quantity, pos.cost, pos.realised = held, cost, realised
    pos.fills += 1
    if order.side == "buy":
        pos.bought += quantity
    else:
        pos.sold += quantity


def _rounded(value: Decimal) -> Decimal:
    """`value` rounded to `COST_QUANTUM` if it has more digits after the point, else as is."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        return value.quantize(COST_QUANTUM)
    return value


def _after_fill(
    held: Decimal, cost: Decimal, realised: Decimal, signed: Decimal, price: Decimal
) -> tuple[Decimal, Decimal, Decimal]:
    """(position, cost, realised) after a fill of `signed` quantity at `price`."""
    if not held or (held > 0) == (signed > 0):
        return held + signed, cost + signed * price, realised
    size = abs(held)
    closing = min(abs(signed), size)
    removed = cost if closing == size else _rounded(cost * closing / size)
    direction = 1 if held > 0 else -1
    realised += direction * closing * price - removed
    held -= direction * closing
    cost -= removed
    rest = abs(signed) - closing
    if rest:
        opened = rest if signed > 0 else -rest
        return held + opened, opened * price, realised
    return held, cost if held else _ZERO, realised


def _cancelled(ledger: Ledger, event: WireEvent) -> None:
    order = _known(ledger, event, "cancel")
    if order.status not in _OPEN:
        raise _Refused(f"cancel after the order was {order.status}")
    order.status = "cancelled"
    ledger._closing(order.order_id)


def _rejected(ledger: Ledger, event: WireEvent) -> None:
    order_id = _string(event.order_id, "order_id")
    order = ledger.orders.get(order_id)
    if order is None:
        symbol = _string(event.symbol, "symbol")
        side = event.side
        quantity = event.quantity
        ledger.orders[order_id] = Order(
            order_id,
            symbol,
            side if isinstance(side, str) else "",
            _decimal(quantity, "quantity") if quantity is not None else _ZERO,
            status="rejected",
        )
        ledger._closing(order_id)
        return
    if order.status != "open":
        raise _Refused(f"reject after the order was {order.status}")
    order.status = "rejected"
    ledger._closing(order_id)


def _trade(ledger: Ledger, event: WireEvent) -> None:
    order = _known(ledger, event, "trade")
    _positive(event.quantity, "quantity")
    _positive(event.price, "price")
    if not order.filled:
        raise _Refused(f"trade for order {order.order_id!r} before any fill of it")


def _position(ledger: Ledger, event: WireEvent) -> None:
    symbol = _string(event.symbol, "symbol")
    stated = _decimal(event.quantity, "quantity")
    pos = ledger.positions.get(symbol)
    held = _ZERO if pos is None else pos.quantity
    if stated != held:
        raise _Refused(f"position_updated says {stated} {symbol}, the fills say {held}")


def _error(ledger: Ledger, event: WireEvent) -> None:
    _string(event.reason, "reason")


_HANDLERS = {
    "order_created": _created,
    "order_partially_filled": _fill,
    "order_filled": _fill,
    "order_cancelled": _cancelled,
    "order_rejected": _rejected,
    "trade_executed": _trade,
    "position_updated": _position,
    "error": _error,
}
