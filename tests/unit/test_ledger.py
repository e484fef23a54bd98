"""The rebuild is a pure fold over events: positions, average cost, P&L, refused events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from partitioning.codec import frame_message
from partitioning.model import parse_timestamp_us
from trading.audit import fold_messages
from trading.ledger import Ledger, rebuild

T0 = "2026-11-25T14:30:00.000000Z"


def ev(kind: str, n: int = 0, **fields: Any) -> dict[str, Any]:
    """A wire dict; timestamp 14:30:00 + n seconds."""
    body: dict[str, Any] = {
        "version": 1,
        "event_id": f"e{n}-{kind}",
        "timestamp": f"2026-11-25T14:30:{n:02d}.000000Z",
        "type": kind,
        "order_id": None,
        "symbol": None,
        "side": None,
        "quantity": None,
        "price": None,
        "reason": None,
        "source": None,
    }
    body.update(fields)
    return body


def created(oid: str, side: str, qty: str, n: int = 0, symbol: str = "AAPL") -> dict[str, Any]:
    return ev("order_created", n, order_id=oid, symbol=symbol, side=side, quantity=qty)


def fill(
    oid: str, side: str, qty: str, price: str, n: int = 0, *, last: bool = True, symbol="AAPL"
) -> dict[str, Any]:
    kind = "order_filled" if last else "order_partially_filled"
    return ev(kind, n, order_id=oid, symbol=symbol, side=side, quantity=qty, price=price)


def position(ledger: Ledger, symbol: str = "AAPL") -> tuple[str, str | None, str]:
    pos = ledger.positions[symbol]
    avg = pos.average_cost
    return str(pos.quantity), None if avg is None else str(avg), str(pos.realised)


# (events, expected (position, average cost, realised))
VECTORS = [
    pytest.param(
        [created("a", "buy", "100"), fill("a", "buy", "100", "10.00")],
        ("100", "10.00", "0"),
        id="one buy",
    ),
    pytest.param(
        [
            created("a", "buy", "100"),
            fill("a", "buy", "40", "10.00", last=False),
            fill("a", "buy", "60", "11.00"),
        ],
        ("100", "10.60", "0"),
        id="partial fills average the cost",
    ),
    pytest.param(
        [
            created("a", "buy", "100"),
            fill("a", "buy", "100", "10.00"),
            created("b", "sell", "40"),
            fill("b", "sell", "40", "12.50"),
        ],
        ("60", "10.00", "100.00"),
        id="a sell realises against the average cost",
    ),
    pytest.param(
        [
            created("a", "sell", "100"),
            fill("a", "sell", "100", "10.00"),
            created("b", "buy", "150"),
            fill("b", "buy", "150", "8.00"),
        ],
        ("50", "8.00", "200.00"),
        id="a buy closes a short and opens a long at the fill price",
    ),
    pytest.param(
        [
            created("a", "buy", "300"),
            fill("a", "buy", "300", "10.01"),
            created("b", "sell", "300"),
            fill("b", "sell", "300", "10.00"),
        ],
        ("0", None, "-3.00"),
        id="flat after a round trip, cost exactly zero",
    ),
]


@pytest.mark.parametrize(("events", "expected"), VECTORS)
def test_positions_average_cost_and_realised_pnl(events, expected) -> None:
    ledger = rebuild(events)
    assert ledger.invalid == []
    assert position(ledger) == expected


def test_unrealised_pnl_is_marked_to_the_given_price() -> None:
    ledger = rebuild([created("a", "buy", "100"), fill("a", "buy", "100", "10.00")])
    summary = ledger.summary({"AAPL": Decimal("10.25")})
    assert summary["symbols"][0]["unrealised_pnl"] == "25.00"
    assert summary["unrealised_pnl"] == "25.00"


def test_without_a_mark_unrealised_pnl_is_unknown() -> None:
    ledger = rebuild([created("a", "buy", "100"), fill("a", "buy", "100", "10.00")])
    assert ledger.summary()["unrealised_pnl"] is None


INVALID = [
    pytest.param([fill("x", "buy", "10", "1.00")], "fill for unknown order 'x'", id="unknown"),
    pytest.param(
        [created("a", "buy", "100"), fill("a", "buy", "150", "1.00")],
        "overfill: 150 of an order for 100 (0 filled before)",
        id="overfill",
    ),
    pytest.param(
        [
            created("a", "buy", "100"),
            fill("a", "buy", "100", "1.00"),
            ev("order_cancelled", order_id="a"),
        ],
        "cancel after the order was filled",
        id="cancel after fill",
    ),
    pytest.param(
        [
            created("a", "buy", "100"),
            ev("order_cancelled", order_id="a"),
            fill("a", "buy", "100", "1.00"),
        ],
        "fill after the order was cancelled",
        id="fill after cancel",
    ),
    pytest.param(
        [created("a", "buy", "100"), fill("a", "buy", "40", "1.00")],
        "order_filled leaves 60 of 100 open",
        id="filled but incomplete",
    ),
    pytest.param(
        [created("a", "buy", "100"), created("a", "buy", "100")],
        "duplicate order id 'a'",
        id="duplicate order",
    ),
    pytest.param(
        [
            created("a", "buy", "100"),
            fill("a", "buy", "100", "1.00"),
            ev("position_updated", symbol="AAPL", quantity="90"),
        ],
        "position_updated says 90 AAPL, the fills say 100",
        id="position disagrees",
    ),
    pytest.param(
        [created("a", "buy", "NaN")], "quantity='NaN': not finite", id="not a finite decimal"
    ),
    pytest.param(
        [created("a", "buy", 100)], "quantity: not a decimal string", id="number not string"
    ),
    pytest.param([ev("order_teleported")], "unknown event type 'order_teleported'", id="type"),
    pytest.param([{"type": "order_created"}], "timestamp: missing or not a string", id="no time"),
    pytest.param([[1, 2]], "an event must be a JSON object, not list", id="not an object"),
]


@pytest.mark.parametrize(("events", "reason"), INVALID)
def test_an_invalid_event_is_reported_with_its_position_and_not_applied(events, reason) -> None:
    ledger = rebuild(events)
    assert [i.reason for i in ledger.invalid] == [reason]
    assert ledger.invalid[0].index == len(events) - 1
    expected_applied = len(events) - 1
    assert ledger.applied == expected_applied


def test_the_rebuild_goes_on_after_an_invalid_event() -> None:
    ledger = rebuild(
        [
            fill("ghost", "buy", "10", "1.00"),
            created("a", "buy", "100"),
            fill("a", "buy", "100", "2.00"),
        ]
    )
    assert len(ledger.invalid) == 1
    assert position(ledger) == ("100", "2.00", "0")


def test_until_skips_later_events_by_their_own_timestamp() -> None:
    events = [
        created("a", "buy", "100", n=1),
        fill("a", "buy", "100", "10.00", n=2),
        created("b", "sell", "100", n=5),
        fill("b", "sell", "100", "11.00", n=6),
        created("c", "buy", "10", n=3),  # published late, but before the cut
    ]
    ledger = rebuild(events, until_us=parse_timestamp_us("2026-11-25T14:30:04Z"))
    assert position(ledger) == ("100", "10.00", "0")
    assert ledger.skipped == 2
    assert "c" in ledger.orders


def test_until_compares_other_timestamp_forms_by_value() -> None:
    late = created("a", "buy", "1")
    late["timestamp"] = "2026-11-25T14:30:05+00:00"
    early = created("b", "buy", "1")
    early["timestamp"] = "2026-11-25T14:30:01.5Z"
    ledger = rebuild([late, early], until_us=parse_timestamp_us("2026-11-25T14:30:02Z"))
    assert list(ledger.orders) == ["b"]


def test_a_rejection_of_an_unknown_order_records_it_as_rejected() -> None:
    ledger = rebuild([ev("order_rejected", order_id="r", symbol="AAPL", reason="limit")])
    assert ledger.orders["r"].status == "rejected"
    assert ledger.invalid == []


def test_a_partial_close_takes_its_cost_share_rounded_and_a_full_close_the_rest() -> None:
    ledger = rebuild(
        [
            created("a", "buy", "3"),
            fill("a", "buy", "3", "10.00"),  # cost 30.00 for 3
            created("b", "buy", "0.5"),
            fill("b", "buy", "0.5", "10.01"),  # cost 35.005 for 3.5: average 10.00142857...
            created("c", "sell", "1"),
            fill("c", "sell", "1", "10.00"),  # takes 35.005 / 3.5 = 10.00142857 of the cost
            created("d", "sell", "2.5"),
            fill("d", "sell", "2.5", "10.00"),  # takes the rest: 25.00357143
        ]
    )
    assert position(ledger) == ("0.0", None, "-0.00500000")
    assert ledger.positions["AAPL"].cost == 0


def test_folding_log_messages_equals_folding_their_wire_dicts() -> None:
    events: list[Any] = [
        created("a", "buy", "100"),
        fill("a", "buy", "40", "10.00", last=False),
        fill("ghost", "buy", "10", "1.00"),  # refused: unknown order
        created("b", "sell", 5),  # refused: a number, not a decimal string
        fill("a", "buy", "60", "11.00", n=1),
        ev("position_updated", n=1, symbol="AAPL", quantity="100", extra="ignored"),
    ]
    messages = [frame_message("AAPL", orjson.dumps(e)) for e in events]
    from_log = Ledger()
    fold_messages(from_log, 10, messages)
    from_dicts = Ledger()
    for offset, event in enumerate(events, start=10):
        from_dicts.apply(event, offset)
    assert from_log.summary() == from_dicts.summary()
    assert [(i.index, i.reason) for i in from_log.invalid] == [
        (12, "fill for unknown order 'ghost'"),
        (13, "quantity: not a decimal string"),
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not a trading event"),
        (b"[1, 2]", "an event must be a JSON object"),
    ],
)
def test_a_log_message_that_is_not_an_event_object_is_refused_at_its_offset(
    body: bytes, reason: str
) -> None:
    ledger = Ledger()
    fold_messages(ledger, 7, [frame_message("AAPL", body)])
    [refused] = ledger.invalid
    assert refused.index == 7
    assert refused.reason.startswith(reason)


def test_a_ledger_that_keeps_n_closed_orders_forgets_the_oldest_closed_never_an_open_one() -> None:
    ledger = Ledger(closed_kept=2)
    for event in [
        created("open", "buy", "100", 0),
        created("a", "buy", "100", 1),
        fill("a", "buy", "100", "10.00", 1),
        created("b", "buy", "100", 2),
        ev("order_cancelled", 2, order_id="b", symbol="AAPL"),
        ev("order_rejected", 3, order_id="c", symbol="AAPL", side="buy", quantity="100"),
        created("d", "sell", "50", 4),
        fill("d", "sell", "50", "11.00", 4),
    ]:
        assert ledger.apply(event), event

    assert sorted(ledger.orders) == ["c", "d", "open"]  # a and b, the oldest closed, forgotten
    assert position(ledger) == ("50", "10.00", "50.00")  # the fills still counted


def test_an_event_for_a_forgotten_order_is_refused_as_for_an_unknown_one() -> None:
    ledger = Ledger(closed_kept=0)
    ledger.apply(created("a", "buy", "100"))
    ledger.apply(fill("a", "buy", "100", "10.00"))

    assert not ledger.apply(ev("order_cancelled", 1, order_id="a", symbol="AAPL"))
    assert ledger.invalid[-1].reason == "cancel for unknown order 'a'"


def test_a_ledger_remembers_every_order_unless_told() -> None:
    ledger = Ledger()
    ledger.apply(created("a", "buy", "100"))
    ledger.apply(fill("a", "buy", "100", "10.00"))

    assert not ledger.apply(ev("order_cancelled", 1, order_id="a", symbol="AAPL"))
    assert ledger.invalid[-1].reason == "cancel after the order was filled"
    with pytest.raises(ValueError, match="closed_kept=-1"):
        Ledger(closed_kept=-1)
