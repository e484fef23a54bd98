"""`superticks bench consume`: readers of the same stored ticks, side by side, one run.

A fresh super stream is filled with the simulator's ticks before any timing. Then, one after
the other, each contender reads all of them from the first offset:

(a) **raw delivery**: the same partitions through the adapter's chunk subscriptions with the
    worker's default credits, counting message bytes only (no decode): what delivery alone
    allows on this machine, the ceiling of any reader;
(b) **superticks worker**: `superticks worker --handler vwap` as a separate process started
    exactly as a user starts it (every `WorkerConfig` default: credits, offset storing, lag
    polling, metrics, the CLI's imports): decode and validate every tick, fence offsets, VWAP,
    store offsets. Its VWAP handler reads, checks and sums each chunk in one compiled pass
    (`workers/_fold.c`; the report's ``compiled_fold`` says whether it was built), the Python
    decoder taking any chunk that pass declines;
(c) **parse only**: raw delivery plus the one step no JSON reader can skip, each chunk's
    bodies (cut at their first ``{``) parsed as one JSON array by msgspec (C) into structs of
    the wire's twelve fields, with no check and no handler: the bound of any reader of our
    JSON wire format in Python, beside which the worker's ratio to raw delivery reads;
(d) **worker machinery**: the worker's own `GroupWorker` in this process, with every
    `WorkerConfig` default (credits, offset storing, lag polling) and a handler that takes each
    chunk's messages undecoded (`MessageHandler`), counting their bytes like (a): what the
    worker costs before any tick is decoded. Between it and (b) lie decoding and the handler;
(e) **RbFly** (another Python stream client, Cython codec) with `orjson.loads` per message,
    when it is installed (`uv sync --group compare`; GPL, never a runtime dependency).

Rounds (`rounds`, default 3): the stream is filled once, then every reader reads it once per
round, the order rotated each round (`bench.rounds`; the worker joins a fresh group each round);
a row shows its median over the rounds with each round's rate, and each ratio is the median of
the per-round ratios.

Beside each rate, the reader's CPU time per tick in the same window (its process's user +
system time): on a shared machine it moves less than the rates do.

Each row's count is read back, not echoed: (a), (c) and (d) count what they received, (b) is the
`consumed` total of the worker's own JSON summary, and its stored offsets reached every
partition's last tick. Rates are steady-state: from the first evidence of progress (the end of
the first delivered chunk; for the worker process, its first stored offset, which it writes
every 10,000 ticks or 200 ms) to the last tick, ticks counted from that point; the worker's
start-up (process start to its first stored offset: imports, connections) is its own column.
The default count, 1,000,000, keeps each window near a second at these rates: at 300,000 the
windows were ~0.3 s and the worker's, read from offsets it stores every 10,000 ticks, moved its
ratio by up to a third between rounds (0.85/0.55/0.53, measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from bench.cliworker import CliWorker, cpu_seconds, stored_offsets
from bench.report import Progress
from bench.rounds import paired_ratio, rotated
from partitioning.codec import Tick
from partitioning.model import StreamConfig
from partitioning.producer import Producer, ProducerConfig
from partitioning.router import Router
from partitioning.simulator import MarketSimulator
from partitioning.topology import create_topology, delete_topology
from superticks.settings import ConnectionSettings
from superticks.streams import Admin, Chunk, Offset, Subscription
from workers.group import GroupWorker, WorkerConfig
from workers.vwap import COMPILED_FOLD

__all__ = ["ConsumeBench", "ConsumeRow", "run_consume_bench"]

WORKER_TARGET = 0.6  # the worker's rate / raw delivery
RBFLY_TARGET = 2.0  # the worker's rate / RbFly's
_TIMEOUT_S = 300.0
_POLL_EDGE_S = 0.01  # the worker's stored offsets, polled this often near the window's edges
_POLL_S = 0.05  # ... and this often in between
_EDGE = 0.8  # the end edge: from this share of the ticks on


@dataclass(frozen=True, slots=True)
class ConsumeRow:
    name: str
    ticks: int  # ticks the contender read back (not the number it was asked to read)
    seconds: float  # the steady-state window
    ticks_per_s: float
    startup_s: float | None = None  # process start to the first stored offset (worker only)
    cpu_us_per_tick: float | None = None  # the reader's CPU time in the window, per tick
    rates: tuple[float, ...] = ()  # ticks/s of each round, in round order (a row of rounds:
    # ticks the fewest any round read, the other figures medians)


@dataclass(frozen=True, slots=True)
class ConsumeBench:
    count: int
    partitions: int
    rows: list[ConsumeRow]
    # medians of the per-round ratios (`bench.rounds.paired_ratio`)
    worker_vs_raw: float
    worker_vs_rbfly: float | None  # None when RbFly is not installed
    parse_vs_raw: float = 0.0  # the parse-only reader / raw delivery: the bound of worker_vs_raw
    machinery_vs_raw: float = 0.0  # the worker undecoded / raw delivery: its cost before decoding
    rounds: int = 1
    worker_vs_raw_rounds: tuple[float, ...] = ()
    targets: dict[str, float] = field(
        default_factory=lambda: {"worker_vs_raw": WORKER_TARGET, "worker_vs_rbfly": RBFLY_TARGET}
    )

    @property
    def worker(self) -> ConsumeRow:
        return next(r for r in self.rows if r.name.startswith("superticks worker"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "partitions": self.partitions,
            "rows": [
                {k: getattr(r, k) for k in ConsumeRow.__dataclass_fields__} for r in self.rows
            ],
            "worker_vs_raw": self.worker_vs_raw,
            "worker_vs_rbfly": self.worker_vs_rbfly,
            "parse_vs_raw": self.parse_vs_raw,
            "machinery_vs_raw": self.machinery_vs_raw,
            "rounds": self.rounds,
            "worker_vs_raw_rounds": list(self.worker_vs_raw_rounds),
            "compiled_fold": COMPILED_FOLD,
            "targets": self.targets,
        }


class _Window:
    """Steady-state timing: from the first evidence of progress to the last tick; with the
    CPU time the reader (process `pid`, None: this one) spent in between."""

    def __init__(self, expected: int, pid: int | None = None) -> None:
        self.pid = pid
        self.first_cpu = self.last_cpu = 0.0
        self.expected = expected
        self.seen = 0
        self.first_at = 0.0
        self.first_seen = 0
        self.last_at = 0.0
        self.done = asyncio.Event()

    def progress(self, seen: int) -> None:
        self.seen = seen
        now = time.perf_counter()
        if not self.first_at and seen:
            self.first_at, self.first_seen = now, seen
            self.first_cpu = cpu_seconds(self.pid)
        if seen >= self.expected and not self.done.is_set():
            self.last_at = now
            self.last_cpu = cpu_seconds(self.pid)
            self.done.set()

    def row(self, name: str, ticks: int, startup_s: float | None = None) -> ConsumeRow:
        seconds = self.last_at - self.first_at
        counted = ticks - self.first_seen
        rate = counted / seconds if seconds > 0 and counted > 0 else 0.0
        cpu = (self.last_cpu - self.first_cpu) / counted * 1e6 if counted > 0 else None
        return ConsumeRow(
            name,
            ticks,
            round(seconds, 3),
            round(rate, 1),
            None if startup_s is None else round(startup_s, 3),
            None if cpu is None else round(cpu, 2),
        )


async def _read_all(
    settings: ConnectionSettings,
    streams: list[str],
    on_chunk: Callable[[Chunk], Awaitable[None]],
    name: str,
    window: _Window,
) -> None:
    """Subscribe to every stream from its first offset with the worker's default credits,
    hand each chunk to `on_chunk`, and return once `window` is done."""
    credits = WorkerConfig.model_fields["credits"].default
    subscriptions = [
        Subscription(
            settings, s, on_chunk, Offset.first(), name=f"{name}-{i}", initial_credit=credits
        )
        for i, s in enumerate(streams)
    ]
    try:
        await asyncio.gather(*(s.start() for s in subscriptions))
        async with asyncio.timeout(_TIMEOUT_S):
            await window.done.wait()
    finally:
        await asyncio.gather(*(s.stop() for s in subscriptions))


async def _raw(
    settings: ConnectionSettings, streams: list[str], count: int, progress: Progress
) -> ConsumeRow:
    window = _Window(count)
    totals = {"messages": 0, "bytes": 0}

    async def on_chunk(chunk: Chunk) -> None:
        totals["messages"] += len(chunk.messages)
        totals["bytes"] += sum(map(len, chunk.messages))
        window.progress(totals["messages"])
        progress.update(totals["messages"])

    await _read_all(settings, streams, on_chunk, "raw", window)
    if not totals["bytes"]:
        raise RuntimeError("the raw reader counted no bytes")
    return window.row("raw delivery (bytes counted, no decode)", totals["messages"])


async def _worker(
    settings: ConnectionSettings,
    ss: str,
    group: str,
    ends: list[int],
    count: int,
    progress: Progress,
) -> ConsumeRow:
    """`superticks worker --handler vwap` in its own process; progress from its stored offsets
    (polled on the bench's own connection every 10 ms around the window's edges, the first
    stored offset and the last 20% of the ticks, and every 50 ms in between: each poll is three
    offset queries the brokers answer on the worker's cores, and at 10 ms throughout they cost
    the brokers ~1 us of CPU per tick, measured)."""
    async with Admin(settings) as admin:
        streams = await admin.partitions(ss)
        worker = CliWorker(settings, ss, group, "bench-worker")
        started = time.perf_counter()
        await worker.start()
        assert worker.process is not None
        window = _Window(count, worker.process.pid)
        try:
            deadline = started + _TIMEOUT_S
            while not window.done.is_set():
                if not worker.running or time.perf_counter() > deadline:
                    raise RuntimeError(f"the worker stopped or stalled: {await worker.stop()}")
                stored = await stored_offsets(admin, streams, group)
                window.progress(sum(min(s, e) + 1 for s, e in zip(stored, ends, strict=True)))
                progress.update(window.seen)
                edge = not window.first_at or window.seen >= _EDGE * count
                await asyncio.sleep(_POLL_EDGE_S if edge else _POLL_S)
        finally:
            summary = await worker.stop()
    consumed = int((summary or {}).get("consumed", 0))
    return window.row("superticks worker (CLI defaults, vwap)", consumed, window.first_at - started)


class _CountMessages:
    """The worker machinery row's handler: each chunk's new messages undecoded
    (`MessageHandler`), their bytes counted like the raw reader's."""

    def __init__(self, window: _Window, progress: Progress) -> None:
        self.window = window
        self.progress = progress
        self.messages = 0
        self.bytes = 0

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        raise AssertionError("the worker hands a MessageHandler undecoded messages")

    async def handle_messages(
        self, partition: int, first_offset: int, messages: Sequence[bytes]
    ) -> list[tuple[int, str]]:
        self.messages += len(messages)
        self.bytes += sum(map(len, messages))
        self.window.progress(self.messages)
        self.progress.update(self.messages)
        return []


async def _machinery(
    settings: ConnectionSettings, ss: str, group: str, count: int, progress: Progress
) -> ConsumeRow:
    window = _Window(count)
    handler = _CountMessages(window, progress)
    worker = GroupWorker(WorkerConfig(connection=settings, super_stream=ss, group=group), handler)
    await worker.start()
    try:
        async with asyncio.timeout(_TIMEOUT_S):
            await window.done.wait()
    finally:
        await worker.stop()
    if not handler.bytes:
        raise RuntimeError("the worker machinery counted no bytes")
    return window.row("worker machinery (undecoded, bytes counted)", handler.messages)


async def _rbfly(
    settings: ConnectionSettings, streams: list[str], count: int, progress: Progress
) -> ConsumeRow | None:
    import orjson

    try:
        rbs: Any = importlib.import_module("rbfly.streams")
        # it warns "error suppressed: protocol is disconnected" for each closed connection
        logging.getLogger("rbfly").setLevel(logging.ERROR)
    except ImportError:
        return None
    node = settings.nodes[0]
    password = settings.password.get_secret_value()
    uri = f"rabbitmq-stream://{settings.username}:{password}@{node.host}:{node.port}/"
    client = rbs.streams_client(uri)
    window = _Window(count)
    seen = 0

    async def read(stream: str) -> None:
        nonlocal seen
        async for message in client.subscribe(stream, offset=rbs.Offset.FIRST):
            orjson.loads(message)
            seen += 1
            if seen & 1023 == 0 or seen >= count:
                window.progress(seen)
                progress.update(seen)
            if seen >= count:
                return

    tasks = [asyncio.create_task(read(s)) for s in streams]
    try:
        async with asyncio.timeout(_TIMEOUT_S):
            await window.done.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await client.disconnect()
    return window.row("RbFly consume (orjson.loads per message)", seen)


class _Parsed(Tick, rename={"timestamp_us": "timestamp"}, gc=False):
    """A body's twelve wire fields, typed as JSON gives them (the timestamp as its text),
    unchecked: the parse-only row."""

    timestamp_us: str  # type: ignore[assignment]


async def _parse_only(
    settings: ConnectionSettings, streams: list[str], count: int, progress: Progress
) -> ConsumeRow:
    window = _Window(count)
    parse = msgspec.json.Decoder(list[_Parsed]).decode
    seen = 0

    async def on_chunk(chunk: Chunk) -> None:
        nonlocal seen
        parsed = parse(b"[" + b",".join([m[m.find(b"{") :] for m in chunk.messages]) + b"]")
        seen += len(parsed)
        window.progress(seen)
        progress.update(seen)

    await _read_all(settings, streams, on_chunk, "parse", window)
    return window.row("parse only (msgspec, no checks, no handler)", seen)


async def run_consume_bench(
    settings: ConnectionSettings,
    *,
    count: int = 1_000_000,
    partitions: int = 3,
    symbols: int = 200,
    seed: int = 0,
    rounds: int = 3,
    show_progress: bool = False,
) -> ConsumeBench:
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, not {rounds}")
    ss = f"bench-{uuid.uuid4().hex[:6]}-consume"
    config = StreamConfig(super_stream=ss, partitions=partitions)
    await create_topology(settings, config)
    try:
        items = MarketSimulator(symbols, seed=seed).batch(count)
        router = Router(partitions)
        per_partition = [0] * partitions
        for symbol, _ in items:
            per_partition[router.route(symbol)] += 1
        ends = [n - 1 for n in per_partition]  # offset of each partition's last tick
        producer = ProducerConfig(connection=settings, super_stream=ss, name=f"{ss}-fill")
        with Progress("filling", count, enabled=show_progress) as bar:
            async with Producer(producer) as p:
                for i in range(0, count, 5_000):
                    await p.send_batch(items[i : i + 5_000])
                    bar.update(i)
                await p.flush(120)
        streams = config.partition_names()
        readers: list[tuple[str, Callable[[int, Progress], Awaitable[ConsumeRow | None]]]] = [
            ("raw", lambda r, bar: _raw(settings, streams, count, bar)),
            (
                "worker",
                lambda r, bar: _worker(settings, ss, f"{ss}-worker-{r}", ends, count, bar),
            ),
            ("parse", lambda r, bar: _parse_only(settings, streams, count, bar)),
            (
                "machinery",
                lambda r, bar: _machinery(settings, ss, f"{ss}-machinery-{r}", count, bar),
            ),
            ("rbfly", lambda r, bar: _rbfly(settings, streams, count, bar)),
        ]
        runs: dict[str, list[ConsumeRow]] = {key: [] for key, _ in readers}
        for r in range(rounds):
            for key, read in rotated(readers, r):
                with Progress(f"round {r + 1}: {key}", count, enabled=show_progress) as bar:
                    row = await read(r, bar)
                if row is not None:
                    runs[key].append(row)
    finally:
        await delete_topology(settings, ss)
        async with Admin(settings) as admin:
            await admin.delete_stream(f"{ss}-dlq")  # the worker's dead-letter stream
    rows = {key: _median_row(found) for key, found in runs.items() if found}
    raw, worker, parse = rows["raw"], rows["worker"], rows["parse"]
    machinery, rbfly = rows["machinery"], rows.get("rbfly")
    return ConsumeBench(
        count=count,
        partitions=partitions,
        rows=[raw, worker, parse, machinery] + ([rbfly] if rbfly is not None else []),
        worker_vs_raw=paired_ratio(worker.rates, raw.rates),
        worker_vs_rbfly=None if rbfly is None else paired_ratio(worker.rates, rbfly.rates),
        parse_vs_raw=paired_ratio(parse.rates, raw.rates),
        machinery_vs_raw=paired_ratio(machinery.rates, raw.rates),
        rounds=rounds,
        worker_vs_raw_rounds=tuple(
            round(a / b, 2) for a, b in zip(worker.rates, raw.rates, strict=True)
        ),
    )


def _median_row(runs: list[ConsumeRow]) -> ConsumeRow:
    """One reader's row from its rounds: the fewest ticks any round read, medians of the
    rest, and every round's rate."""

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return round(statistics.median(known), 3) if len(known) == len(values) else None

    return ConsumeRow(
        runs[0].name,
        min(run.ticks for run in runs),
        round(statistics.median(run.seconds for run in runs), 3),
        round(statistics.median(run.ticks_per_s for run in runs), 1),
        median([run.startup_s for run in runs]),
        median([run.cpu_us_per_tick for run in runs]),
        tuple(run.ticks_per_s for run in runs),
    )
