"""`superticks consume`: a plain reader of the super stream from a chosen offset, optionally
only some symbols (filtered by the broker, then by the client). Progress goes to stderr once a
second; the summary (received vs delivered, per-symbol counts, seconds) to stdout at the end."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from superticks.cli.args import positive_float, positive_int, stream_name, symbol_list
from superticks.cli.loop import run

if TYPE_CHECKING:
    from partitioning.codec import Tick
    from superticks.settings import ConnectionSettings
    from superticks.streams import Offset

__all__ = ["parse_offset", "register"]


def parse_offset(text: str) -> Offset:
    """`first`, `last`, `next`, an offset (an integer >= 0, applied to every partition), or a
    time with a zone (ISO-8601, e.g. 2026-11-25T14:30:00Z: the broker's chunk time)."""
    from partitioning.model import parse_timestamp_us
    from superticks.streams import Offset

    word = text.strip().lower()
    if word in ("first", "last", "next"):
        return getattr(Offset, word)()  # type: ignore[no-any-return]
    if word.lstrip("-").isdigit():
        if int(word) < 0:
            raise argparse.ArgumentTypeError(f"an offset is >= 0, not {text}")
        return Offset.at(int(word))
    try:
        return Offset.since(parse_timestamp_us(text.strip()) // 1000)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"expected first, last, next, an offset (integer >= 0) or an ISO-8601 time with a "
            f"zone such as 2026-11-25T14:30:00Z, not {text!r}"
        )
    return Offset.since(int(moment.timestamp() * 1000))


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "consume", help="read ticks from an offset (first|last|next|N|time), optionally symbols"
    )
    parser.add_argument(
        "--offset",
        type=parse_offset,
        default=None,
        metavar="first|last|next|N|ISO-TIME",
        help="where each partition starts (default next: only new ticks)",
    )
    parser.add_argument(
        "--symbols", type=symbol_list, help="comma-separated symbols (broker- and client-filtered)"
    )
    parser.add_argument("--super-stream", type=stream_name, default="ticks")
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument(
        "--count", type=positive_int, help="stop after exactly this many ticks (printed: N)"
    )
    stop.add_argument("--duration", type=positive_float, help="stop after this many seconds")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    parser.set_defaults(handler=_consume)


async def consume(
    settings: ConnectionSettings,
    offset: Offset,
    *,
    super_stream: str = "ticks",
    symbols: list[str] | None = None,
    count: int | None = None,
    duration_s: float | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Read until `count` ticks were delivered, `duration_s` passed (or forever, until
    cancelled: the reader is stopped either way). Returns the summary; raises what the
    reader's failure was, if any.

    With `count`, exactly `count` ticks are taken (the broker delivers whole chunks: the rest
    of the last chunk, and whatever other partitions deliver meanwhile, is left out), and the
    summary describes those: `received` counts the messages up to the last tick taken."""
    import asyncio
    import contextlib

    from workers.reader import TickReader

    enough = asyncio.Event()
    delivered = 0
    taken: dict[str, Any] = {}  # with count: the summary's counters when the count was reached
    per_symbol: dict[str, int] = {}

    async def on_ticks(partition: str, offsets: list[int], ticks: list[Tick]) -> None:
        nonlocal delivered
        if count is None:
            delivered += len(ticks)
            return
        if enough.is_set():
            return
        ticks = ticks[: count - delivered]
        delivered += len(ticks)
        for tick in ticks:
            per_symbol[tick.symbol] = per_symbol.get(tick.symbol, 0) + 1
        if delivered >= count:
            m = reader.metrics
            next_offset = offsets[len(ticks) - 1] + 1
            # the reader counted this whole chunk (it ends at next_offsets[partition])
            left_out = m.next_offsets[partition] - next_offset
            taken.update(
                received=m.received - left_out,
                next_offsets={**m.next_offsets, partition: next_offset},
                chunks=m.chunks,
                undecodable=m.undecodable,
            )
            enough.set()

    reader = TickReader(
        settings,
        on_ticks,
        offset=offset,
        super_stream=super_stream,
        symbols=symbols,
        name="consume",
        on_failure=lambda _exc: enough.set(),
    )
    started = time.monotonic()
    deadline = started + duration_s if duration_s is not None else None
    async with reader:
        last = 0
        while not enough.is_set():
            wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if wait <= 0:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await enough.wait()
            m = reader.metrics
            if progress:
                print(
                    f"consume: received {m.received:,}, delivered {m.delivered:,} "
                    f"(+{m.delivered - last:,}), not ticks {m.undecodable}",
                    file=sys.stderr,
                )
            last = m.delivered
    if reader.failure is not None:
        raise reader.failure
    m = reader.metrics
    where = offset.kind.value if offset.value is None else f"{offset.kind.value}:{offset.value}"
    if not taken:  # no count, or fewer ticks than the count
        taken.update(
            received=m.received,
            next_offsets=m.next_offsets,
            chunks=m.chunks,
            undecodable=m.undecodable,
        )
    return {
        "super_stream": super_stream,
        "offset": where,
        "symbols": sorted(symbols) if symbols is not None else None,
        "partitions": sorted(reader.partitions),
        "received": taken["received"],
        "delivered": delivered if count is not None else m.delivered,
        "undecodable": taken["undecodable"],
        "chunks": taken["chunks"],
        "per_symbol": dict(sorted((per_symbol if count is not None else m.per_symbol).items())),
        "next_offsets": dict(sorted(taken["next_offsets"].items())),
        "seconds": round(time.monotonic() - started, 3),
    }


def _consume(args: argparse.Namespace) -> int:
    from superticks.settings import load_settings
    from superticks.streams import Offset

    connection, _ = load_settings()
    connection = connection.for_role("worker")  # SUPERTICKS_WORKER_USERNAME, else admin
    summary = run(
        consume(
            connection,
            args.offset if args.offset is not None else Offset.next(),
            super_stream=args.super_stream,
            symbols=args.symbols,
            count=args.count,
            duration_s=args.duration,
        )
    )
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"consumed {summary['super_stream']} from {summary['offset']}: received "
        f"{summary['received']:,} messages, delivered {summary['delivered']:,} ticks of "
        f"{len(summary['per_symbol'])} symbols, {summary['undecodable']} not ticks, "
        f"in {summary['seconds']:.2f} s"
    )
    for symbol, n in sorted(summary["per_symbol"].items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {symbol:10} {n:>9,}")
    return 0
