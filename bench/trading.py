"""Benchmarks of the trading side: `superticks bench audit` and `superticks bench aggregate`.

`bench_rebuild` writes a synthetic log of `count` events to a fresh audit stream, exactly as
`AuditLog` writes them (AMQP 1.0 messages, created / partially filled / filled / trade /
position cycles over many symbols), then times `replay_log` rebuilding the ledger from that
stream: read from the broker, decoded and folded in this one process (one core). It checks
that the rebuild read every event, and also times the fold alone over the same messages in
memory (`fold_messages`, in chunks as the broker delivers them), to tell the rebuild's own
cost from the delivery's. Both are timed in each of `rounds` rounds, in turns (this machine's
speed moves by +-30% from one run to the next); the figures are the rounds' medians.

`bench_aggregate` feeds `venues` venue super streams at `rate` ticks/s each (wall-clock
timestamps: the simulator's ticks are made before the timed window, and each batch is stamped
with the wall clock as it is sent) for `seconds`, while a `superticks aggregate` process merges
them into a fresh unified super stream. The feeds publish a batch every 10 ms per venue, by
default as the README recommends for venue feeds (`FEED_SUB_ENTRY_SIZE`, `FEED_LINGER_MS`). It
reports the rates, whether every tick arrived once,
the aggregator's lag (per chunk, its last tick's timestamp to the confirm of its republished
copy: p50, p99, max; it includes the feed's own publishing delay), its forwarding time (receipt
to that confirm), the feeds' own confirm time (per batch: its ticks' creation until the feed
handled the broker's confirm; it includes the feed process's own waits for a core, so it can
exceed the lag), the aggregator's CPU time per forwarded tick (from the feed's start until all
arrived) and the machine's load average (other processes share the cores).

The aggregator runs in a session of its own, as a service started by itself does: with the
kernel's autogroup scheduling (on here), a child in the bench's session shares one CPU share
with the bench's feeds (measured, three runs each way: its forwarding time p99 0.93-1.06 s in
the bench's session, 0.39-0.53 s in its own; the lag p99 alike, 1.9-2.5 s and 2.0-2.7 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import sys
import time
import uuid
from functools import partial
from typing import Any, Literal

import orjson

from bench.cliworker import cpu_seconds
from bench.report import Progress, cpu_shares, cpu_times
from partitioning.codec import frame_message
from partitioning.model import StreamConfig, format_timestamp_us
from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from partitioning.topology import create_topology, delete_topology
from superticks.errors import StreamError
from superticks.histogram import LatencyHistogram
from superticks.settings import ConnectionSettings
from superticks.streams import Admin
from trading.audit import AuditConfig, audit_arguments, fold_messages, replay_log
from trading.ledger import Ledger
from trading.reading import read_to_end
from trading.venues import quantiles

__all__ = [
    "FEED_COMPRESSION",
    "FEED_LINGER_MS",
    "FEED_SUB_ENTRY_SIZE",
    "bench_aggregate",
    "bench_rebuild",
    "synthetic_log",
]

_START_US = 1_795_617_000_000_000


def synthetic_log(count: int, symbols: int = 200) -> list[tuple[str, bytes]]:
    """`count` events as (symbol, AMQP message as `TradingEvent.to_message` writes it): per
    order created, two partial fills, a fill, their trades and positions (9 events), orders
    alternating buy and sell per symbol."""
    names = [f"S{i:03d}" for i in range(symbols)]
    held = dict.fromkeys(names, 0)
    out: list[tuple[str, bytes]] = []
    n = 0
    order = 0
    while len(out) < count:
        symbol = names[order % symbols]
        side = "buy" if (order // symbols) % 2 == 0 else "sell"
        oid = f"o{order}"
        price = 100 + order % 37
        events: list[dict[str, Any]] = [
            {"type": "order_created", "quantity": "300", "price": f"{price}.00"}
        ]
        for kind, qty in (
            ("order_partially_filled", 100),
            ("order_partially_filled", 100),
            ("order_filled", 100),
        ):
            held[symbol] += qty if side == "buy" else -qty
            fill = {"quantity": str(qty), "price": f"{price}.{qty % 97:02d}"}
            events.append({"type": kind, **fill})
            events.append({"type": "trade_executed", **fill})
            events.append({"type": "position_updated", "quantity": str(held[symbol])})
        for fields in events:
            is_position = fields["type"] == "position_updated"
            body = {
                "version": 1,
                "event_id": f"bench:{n}",
                "timestamp": format_timestamp_us(_START_US + n * 10),
                "type": fields["type"],
                "order_id": None if is_position else oid,
                "symbol": symbol,
                "side": None if is_position else side,
                "quantity": fields["quantity"],
                "price": fields.get("price"),
                "reason": None,
                "source": f"bench@{n}",
            }
            out.append((symbol, frame_message(symbol, orjson.dumps(body))))
            n += 1
        order += 1
    return out[:count]


async def bench_rebuild(
    settings: ConnectionSettings,
    count: int = 1_000_000,
    symbols: int = 200,
    chunk: int = 1000,
    rounds: int = 3,
    show_progress: bool = False,
) -> dict[str, Any]:
    """See the module docstring. The stream is made for the run and deleted after it. Each of
    `rounds` rounds times the fold alone and then the rebuild from the log, so both meet the
    same machine; the figures are the rounds' medians, each round listed beside them.
    `show_progress`: a bar on stderr (a terminal only): writing, then the rounds."""
    started = time.perf_counter()
    log = synthetic_log(count, symbols)
    encoded_s = time.perf_counter() - started
    messages = [message for _, message in log]

    config = AuditConfig(connection=settings, stream=f"bench-{uuid.uuid4().hex[:6]}-audit")
    async with Admin(settings) as admin:
        await admin.create_stream(config.stream, audit_arguments(config))
    folds: list[tuple[float, float]] = []  # (wall s, CPU s) per round
    replays: list[tuple[float, float, int]] = []  # (wall s, CPU s, events read)
    bar = Progress("audit", len(log) + rounds * len(log), enabled=show_progress)
    try:
        started = time.perf_counter()
        producer = Producer(
            ProducerConfig(connection=settings, stream=config.stream, name="bench-audit")
        )
        async with producer:
            step = 10_000
            for first in range(0, len(log), step):
                part = log[first : first + step]
                await producer.send_with_ids(
                    [(first + i + 1, symbol, m) for i, (symbol, m) in enumerate(part)]
                )
                bar.update(first + len(part), "writing the log")
            await producer.flush(300)
        written_s = time.perf_counter() - started
        del log
        for round_ in range(rounds):
            bar.update((round_ + 1) * len(messages), f"round {round_ + 1} of {rounds}")
            memory = Ledger()
            started = time.perf_counter()
            cpu = time.process_time()
            for first in range(0, len(messages), chunk):
                fold_messages(memory, first, messages[first : first + chunk])
            folds.append((time.perf_counter() - started, time.process_time() - cpu))
            expected = memory.summary()
            del memory
            started = time.perf_counter()
            cpu = time.process_time()
            ledger = await replay_log(settings, config.stream, timeout_s=600)
            seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
            replays.append((seconds, cpu_s, ledger.applied + ledger.skipped + len(ledger.invalid)))
            rebuilt = ledger.summary()
            same = rebuilt == expected
            if not same:
                break
    finally:
        bar.close()
        async with Admin(settings) as admin:
            await admin.delete_stream(config.stream)
    read = min(r for _, _, r in replays)
    per_cpu = [r / c if c else 0.0 for _, c, r in replays]
    per_s = [r / w for w, _, r in replays]
    fold_per_cpu = [len(messages) / c if c else 0.0 for _, c in folds]
    return {
        "bench": "audit-rebuild",
        "events": count,
        "symbols": symbols,
        "rounds": len(replays),
        "encode_seconds": round(encoded_s, 3),
        "write_seconds": round(written_s, 3),
        "from_log": {
            "events_read": read,
            "seconds": round(statistics.median(w for w, _, _ in replays), 3),
            "cpu_seconds": round(statistics.median(c for _, c, _ in replays), 3),
            "events_per_s": round(statistics.median(per_s), 1),
            "events_per_cpu_s": round(statistics.median(per_cpu), 1),
            "events_per_cpu_s_rounds": [round(x, 1) for x in per_cpu],
        },
        "fold_only": {
            "seconds": round(statistics.median(w for w, _ in folds), 3),
            "cpu_seconds": round(statistics.median(c for _, c in folds), 3),
            "events_per_cpu_s": round(statistics.median(fold_per_cpu), 1),
            "events_per_cpu_s_rounds": [round(x, 1) for x in fold_per_cpu],
        },
        "target_events_per_s": 200_000,
        "read_every_event": read == count,
        "same_as_in_memory": same,
        "applied": ledger.applied,
        "invalid": len(ledger.invalid),
        "realised_pnl": rebuilt["realised_pnl"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


FEED_SUB_ENTRY_SIZE = 100
FEED_LINGER_MS = 50.0
FEED_COMPRESSION: Literal["none", "gzip", "zstd"] = "none"
"""The venue feeds' defaults, as the README recommends publishing a venue feed (`superticks
produce --sub-entry-size 100 --linger-ms 50`): the venue streams' only reader is the
aggregator, which reads sub-entry batches, and the nodes' work is mostly per chunk and per
entry. Feeds that sent a message per tick, or a frame per partition every 10 ms, left the
aggregator 3 x 30,000 ticks/s behind on these 2 cores. zstd (`--feed-compression`) cuts the
bytes the nodes write, which reach the disk ~30 s later, but costs the feeds and the
aggregator CPU: in 10 s runs it did worse (README, Benchmarks)."""

_VENUES = ("NYSE", "NASDAQ", "CBOE", "IEX", "ARCA", "BATS", "EDGX", "MEMX")


async def _count(admin: Admin, super_stream: str) -> int:
    """One past the last offset of each partition, summed: at least the messages stored (the
    nodes give offsets to tracking entries too, e.g. one at each new segment file), so it says
    when all may have arrived, and `_messages` counts them."""
    total = 0
    for partition in await admin.partitions(super_stream):
        total += await admin.last_offset(partition) + 1
    return total


async def _messages(settings: ConnectionSettings, super_stream: str) -> int:
    """The messages the super stream holds, read back from the first offset of every
    partition up to its last offset now (counted, not decoded)."""
    async with Admin(settings) as admin:
        partitions = await admin.partitions(super_stream)
    counted = 0

    def count(_first: int, messages: list[bytes]) -> None:
        nonlocal counted
        counted += len(messages)

    await asyncio.gather(*(read_to_end(settings, p, count) for p in partitions))
    return counted


async def bench_aggregate(
    settings: ConnectionSettings,
    *,
    venues: int = 3,
    rate: float = 30_000,
    seconds: float = 10.0,
    symbols: int = 100,
    partitions: int = 3,
    linger_ms: float | None = None,
    sub_entry_size: int | None = None,
    feed_sub_entry_size: int = FEED_SUB_ENTRY_SIZE,
    feed_linger_ms: float = FEED_LINGER_MS,
    feed_compression: Literal["none", "gzip", "zstd"] = FEED_COMPRESSION,
    show_progress: bool = False,
) -> dict[str, Any]:
    """See the module docstring. Streams are made for the run and deleted after it.
    `linger_ms`, `sub_entry_size`: the aggregator's `--linger-ms`, `--sub-entry-size` (None:
    its default). `feed_sub_entry_size`, `feed_linger_ms`, `feed_compression`: the venue
    feeds' (`superticks produce --sub-entry-size`, `--linger-ms`, `--compression`; the venue
    streams' only reader is the aggregator; compression applies to batches, so with
    `feed_sub_entry_size` 1 the feeds are uncompressed). `forwarded` is what the unified
    super stream holds once the aggregator stopped, read back and counted. `show_progress`: a
    bar on stderr (a terminal only): the feeds' seconds, then what has arrived."""
    if not 1 <= venues <= len(_VENUES):
        raise ValueError(f"venues: 1 .. {len(_VENUES)}")
    tag = f"bench-{uuid.uuid4().hex[:6]}"
    compression = feed_compression if feed_sub_entry_size > 1 else "none"  # batches only
    names = _VENUES[:venues]
    target = f"{tag}-ticks"
    sources = {v: f"{tag}-{v.lower()}" for v in names}
    for stream in (target, *sources.values()):
        await create_topology(settings, StreamConfig(super_stream=stream, partitions=partitions))
    command = [sys.executable, "-m", "superticks", "aggregate", "--venues",
               ",".join(names), "--target", target, "--group", f"{tag}-agg", "--json"]  # fmt: skip
    for venue, stream in sources.items():
        command += ["--source", f"{venue}={stream}"]
    if linger_ms is not None:
        command += ["--linger-ms", str(linger_ms)]
    if sub_entry_size is not None:
        command += ["--sub-entry-size", str(sub_entry_size)]
    aggregator = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    sent = 0
    feed_s = LatencyHistogram()  # per feed batch: its ticks' creation to the feed's confirm
    bar = Progress("aggregate", seconds, enabled=show_progress)
    try:
        started = time.monotonic()
        step = max(1, int(rate / 100))
        # the feeds' ticks, made before the timed window and stamped as they are sent: making
        # them (2-3 us each, a third of a core at 90,000/s) would leave the feeds behind
        pools = {
            v: MarketSimulator(symbols, exchanges=[v], seed=len(v)).unstamped(
                int(rate * seconds) + 2 * step
            )
            for v in sources
        }
        # the aggregator joins its groups (3 s in all)
        await asyncio.sleep(max(0.5, 3.0 - (time.monotonic() - started)))

        def confirmed(created: float, future: asyncio.Future[None]) -> None:
            if not future.cancelled() and future.exception() is None:
                feed_s.record(time.time() - created)

        async def feed(venue: str, stream: str) -> tuple[int, float]:
            """(ticks sent, seconds of sending): the producer's start and its last
            confirms are outside those seconds."""
            pool = pools[venue]
            config = ProducerConfig(
                connection=settings,
                super_stream=stream,
                name=f"{tag}-feed",
                sub_entry_size=feed_sub_entry_size,
                linger_ms=feed_linger_ms,
                compression=compression,
            )
            count = 0
            async with Producer(config) as producer:
                started = time.monotonic()
                while (elapsed := time.monotonic() - started) < seconds and count < len(pool):
                    ahead = count / rate - elapsed
                    bar.update(elapsed, f"feeding {venues} venues")
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                    now_ns = time.time_ns()
                    created = now_ns / 1e9
                    stamp = format_timestamp_us(now_ns // 1000).encode()  # created now
                    batch = [
                        (sym, head + stamp + tail) for sym, head, tail in pool[count : count + step]
                    ]
                    confirm = await producer.send_batch(batch)
                    confirm.add_done_callback(partial(confirmed, created))
                    count += len(batch)
                sending_s = time.monotonic() - started
                await producer.flush(60)
            return count, sending_s

        started = time.monotonic()
        cpu_before = cpu_seconds(aggregator.pid)
        machine_before = cpu_times()
        feeds = await asyncio.gather(*(feed(v, s) for v, s in sources.items()))
        fed_s = time.monotonic() - started
        sent = sum(count for count, _ in feeds)
        fed_rate = statistics.mean(count / sending_s for count, sending_s in feeds)
        deadline = time.monotonic() + 60
        forwarded = -1
        while forwarded < sent and time.monotonic() < deadline:
            try:  # a node may restart meanwhile (a shared cluster): ask again
                async with Admin(settings) as admin:
                    while forwarded < sent and time.monotonic() < deadline:
                        forwarded = await _count(admin, target)
                        bar.update(seconds, f"forwarded {max(forwarded, 0):,} of {sent:,}")
                        await asyncio.sleep(0.2)
            except StreamError:
                await asyncio.sleep(0.5)
        drained_s = time.monotonic() - started - fed_s
        cpu_after = cpu_seconds(aggregator.pid)
        cpu_during_feed = cpu_shares(machine_before, cpu_times())
        aggregator.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            out, _ = await aggregator.communicate()
        status = json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {}
        forwarded = await _messages(settings, target)  # the aggregator stopped: nothing shares
    finally:
        bar.close()
        if aggregator.returncode is None:
            aggregator.kill()
            await aggregator.wait()
        for stream in (target, *sources.values()):
            await delete_topology(settings, stream)
        async with Admin(settings) as admin:
            for stream in sources.values():
                await admin.delete_stream(f"{stream}-dlq")
    lag = status.get("lag_s", {})
    p99 = lag.get("p99")
    return {
        "bench": "aggregate",
        "venues": venues,
        "offered_ticks_per_s_per_venue": rate,
        "aggregator_linger_ms": linger_ms,  # None: the aggregator's default
        "aggregator_sub_entry_size": sub_entry_size,  # None: the aggregator's default (1)
        "feed_sub_entry_size": feed_sub_entry_size,
        "feed_linger_ms": feed_linger_ms,
        "feed_compression": compression,
        "fed_ticks_per_s_per_venue": round(fed_rate, 1),  # while sending
        "seconds": round(fed_s, 2),
        "sent": sent,
        "forwarded": forwarded,
        "lossless": forwarded == sent,
        "drain_after_feed_s": round(drained_s, 2),
        "lag_s": lag,
        "forward_s": status.get("forward_s", {}),
        "feed_confirm_s": quantiles([feed_s]),
        "target_lag_s": 1.0,
        "kept_up": forwarded == sent and p99 is not None and p99 < 1.0,
        "aggregator_cpu_s": round(cpu_after - cpu_before, 2),
        "aggregator_cpu_us_per_tick": (
            round((cpu_after - cpu_before) / forwarded * 1e6, 2) if forwarded > 0 else None
        ),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        # the machine's CPU from the feeds' start until all arrived: steal is time the
        # hypervisor gave other guests (a slower machine for this run)
        "cpu_during_feed": cpu_during_feed,
    }
