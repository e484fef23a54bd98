"""`superticks audit replay|tail`: the trading audit log rebuilt as of any instant, or followed."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from decimal import Decimal
from typing import Any

from superticks.cli.args import (
    iso_time_us,
    positive_float,
    positive_int,
    stream_name,
    symbol_list,
)
from superticks.cli.loop import run
from superticks.errors import ConfigError

__all__ = ["register"]

_TRADE_TYPES = ("order_filled", "order_partially_filled")


def register(commands: Any) -> None:
    parser = commands.add_parser("audit", help="the trading audit log: rebuild by replay, follow")
    sub = parser.add_subparsers(dest="audit", required=True, metavar="ACTION")
    replay = sub.add_parser(
        "replay",
        help="rebuild positions and P&L from the audit log as of a time",
        description=(
            "Fold the whole audit log (as stored now) into each symbol's position, average "
            "cost and realised P&L as of --until (default: the end), unrealised P&L marked to "
            "the last tick at that time in the ticks super stream. With --since, also the P&L "
            "as of --since and the change between the two (the impact of what happened in "
            "between); --trades lists the fills in that window. Events that do not fit (a fill "
            "for an unknown order, an overfill, a cancel after a fill, ...) are reported with "
            "their offset, never applied."
        ),
    )
    replay.add_argument("--until", type=iso_time_us, help="ISO-8601 UTC time (default: the end)")
    replay.add_argument("--since", type=iso_time_us, help="ISO-8601 UTC start of the window")
    replay.add_argument("--trades", action="store_true", help="list the fills in the window")
    replay.add_argument("--symbols", type=symbol_list, help="only these symbols in the output")
    replay.add_argument(
        "--stream", type=stream_name, default="trading_audit_log", help="the audit log stream"
    )
    replay.add_argument(
        "--ticks",
        type=stream_name,
        default="ticks",
        help="super stream to mark positions to (default ticks)",
    )
    replay.add_argument("--no-marks", action="store_true", help="do not read ticks for marks")
    replay.add_argument(
        "--timeout", type=positive_float, default=300.0, help="seconds (default 300)"
    )
    replay.add_argument("--json", action="store_true", help="print one JSON line")
    replay.set_defaults(handler=_replay)

    tail = sub.add_parser("tail", help="follow the audit log live, one line per event")
    tail.add_argument("--stream", type=stream_name, default="trading_audit_log")
    tail.add_argument(
        "--from-start", action="store_true", help="from the first event (default: new ones)"
    )
    tail.add_argument("--count", type=positive_int, help="exit after N events")
    tail.add_argument("--json", action="store_true", help="one JSON object per event")
    tail.set_defaults(handler=_tail)


def _replay(args: argparse.Namespace) -> int:
    if args.since is not None and args.until is not None and args.since > args.until:
        raise ConfigError("--since must not be after --until")
    from superticks.settings import load_settings

    connection, _ = load_settings()
    from trading.audit import replay_log
    from trading.ledger import Ledger
    from trading.reading import last_prices

    async def main() -> dict[str, Any]:
        before = Ledger(until_us=args.since) if args.since is not None else None
        trades: list[dict[str, Any]] = []
        lo = args.since if args.since is not None else -1

        def on_event(offset: int, event: dict[str, Any]) -> None:
            if before is not None:
                before.apply(event, offset)
            if args.trades and event.get("type") in _TRADE_TYPES:
                from partitioning.model import parse_timestamp_us

                try:
                    micros = parse_timestamp_us(event["timestamp"])
                except (ValueError, TypeError, KeyError):
                    return
                until = args.until if args.until is not None else 2**63
                if lo < micros <= until and (
                    args.symbols is None or event.get("symbol") in args.symbols
                ):
                    trades.append({"offset": offset, **event})

        ledger = await replay_log(
            connection,
            args.stream,
            until_us=args.until,
            on_event=on_event if (before is not None or args.trades) else None,
            timeout_s=args.timeout,
        )
        symbols = set(ledger.positions) if args.symbols is None else set(args.symbols)
        marks: dict[str, Decimal] = {}
        marks_before: dict[str, Decimal] = {}
        if not args.no_marks and symbols:
            marks = await last_prices(
                connection, args.ticks, symbols, until_us=args.until, timeout_s=args.timeout
            )
            if before is not None:
                marks_before = await last_prices(
                    connection, args.ticks, symbols, until_us=args.since, timeout_s=args.timeout
                )
        summary = _restrict(ledger.summary(marks), args.symbols)
        if before is not None:
            earlier = _restrict(before.summary(marks_before), args.symbols)
            summary["since"] = earlier["until"]
            summary["at_since"] = {
                k: earlier[k] for k in ("realised_pnl", "unrealised_pnl", "symbols")
            }
            summary["pnl_impact"] = _impact(earlier, summary)
        trades.sort(key=lambda t: (t["timestamp"], t["offset"]))
        if args.trades:
            summary["trades"] = trades
        return summary

    summary = run(main())
    if args.json:
        print(json.dumps(summary))
    else:
        _print(summary)
    return 0


def _restrict(summary: dict[str, Any], symbols: list[str] | None) -> dict[str, Any]:
    if symbols is None:
        return summary
    keep = set(symbols)
    rows = [row for row in summary["symbols"] if row["symbol"] in keep]
    summary["symbols"] = rows
    summary["realised_pnl"] = str(sum((Decimal(r["realised_pnl"]) for r in rows), Decimal(0)))
    unrealised = [r["unrealised_pnl"] for r in rows]
    summary["unrealised_pnl"] = (
        None if None in unrealised else str(sum((Decimal(u) for u in unrealised), Decimal(0)))
    )
    return summary


def _total(summary: dict[str, Any]) -> Decimal | None:
    if summary["unrealised_pnl"] is None:
        return None
    return Decimal(summary["realised_pnl"]) + Decimal(summary["unrealised_pnl"])


def _impact(before: dict[str, Any], after: dict[str, Any]) -> dict[str, str | None]:
    realised = Decimal(after["realised_pnl"]) - Decimal(before["realised_pnl"])
    total_after, total_before = _total(after), _total(before)
    total = None if total_after is None or total_before is None else total_after - total_before
    return {"realised_pnl": _show(realised), "total_pnl": None if total is None else _show(total)}


def _show(value: Decimal) -> str:
    """A decimal as text; zero as ``0`` whatever its exponent."""
    return "0" if value == 0 else str(value)


def _print(summary: dict[str, Any]) -> None:
    out = sys.stdout
    for trade in summary.get("trades", []):
        print(
            f"{trade['timestamp']}  {trade['symbol']:8} {trade['side']:4} {trade['quantity']:>8}"
            f" @ {trade['price']:>10}  {trade['order_id']}  ({trade['type']}, offset "
            f"{trade['offset']})",
            file=out,
        )
    until = summary["until"] or "the end of the log"
    print(
        f"as of {until}: {summary['applied']:,} events applied, {summary['invalid']:,} invalid, "
        f"{summary['skipped_after_until']:,} later; {summary['open_orders']} orders open",
        file=out,
    )
    print(
        f"  {'symbol':10} {'position':>10} {'avg cost':>14} {'realised':>14} {'unrealised':>14}"
        f" {'mark':>10}",
        file=out,
    )
    for row in summary["symbols"]:
        average = row["average_cost"]
        average = "-" if average is None else f"{Decimal(average):.4f}"
        unrealised = row["unrealised_pnl"] or "?"
        print(
            f"  {row['symbol']:10} {row['position']:>10} {average:>14} {row['realised_pnl']:>14}"
            f" {unrealised:>14} {row['mark'] or '-':>10}",
            file=out,
        )
    print(
        f"  realised {summary['realised_pnl']}, unrealised {summary['unrealised_pnl'] or '?'}",
        file=out,
    )
    if "pnl_impact" in summary:
        impact = summary["pnl_impact"]
        print(
            f"  since {summary['since']}: realised {impact['realised_pnl']}, "
            f"total (realised + unrealised) {impact['total_pnl'] or '?'}",
            file=out,
        )
    for bad in summary["invalid_events"][:20]:
        print(
            f"  INVALID offset {bad['index']} {bad['type']} {bad['event_id']}: {bad['reason']}",
            file=out,
        )


def _tail(args: argparse.Namespace) -> int:
    from superticks.errors import DecodeError
    from superticks.settings import load_settings
    from superticks.streams import Offset
    from trading.audit import tail_log

    connection, _ = load_settings()

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        seen = 0

        def on_event(offset: int, event: dict[str, Any] | DecodeError) -> None:
            nonlocal seen
            if stop.is_set():
                return
            seen += 1
            if isinstance(event, DecodeError):
                print(
                    json.dumps({"offset": offset, "error": str(event)})
                    if args.json
                    else f"{offset} NOT AN EVENT: {event}",
                    flush=True,
                )
            elif args.json:
                print(json.dumps({"offset": offset, **event}), flush=True)
            else:
                print(
                    f"{offset} {event.get('timestamp')} {event.get('type')} "
                    f"{event.get('symbol') or ''} {event.get('side') or ''} "
                    f"{event.get('quantity') or ''} {event.get('price') or ''} "
                    f"{event.get('order_id') or ''} {event.get('reason') or ''}".rstrip(),
                    flush=True,
                )
            if args.count is not None and seen >= args.count:
                stop.set()

        await tail_log(
            connection,
            on_event,
            args.stream,
            start=Offset.first() if args.from_start else Offset.next(),
            stop=stop,
        )
        return seen

    run(main())
    return 0
