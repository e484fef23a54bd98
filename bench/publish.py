"""`superticks bench publish`: ways to publish the same ticks, side by side, one run.

(a) **ceiling**: the very frames the producer writes by default (v2 publish frames of up to
    1,000 messages, one id per tick, the symbol as filter value, ticks grouped by symbol per
    `send_batch` slice), encoded before the clock starts and written straight to the partition
    leaders with at most the producer's `max_in_flight` ticks unconfirmed: transport and
    broker only, no Python work per tick inside the window;
(b) **superticks' producer** (`ProducerConfig` defaults): routes, frames and publishes the
    simulator's (symbol, body) pairs with per-message ids, confirms and re-send bookkeeping;
(c) **RbFly** (`uv sync --group compare`; GPL, never a runtime dependency): one
    `PublisherBatchFast` per partition, connected to that partition's leader, each tick an AMQP
    message with its `symbol` application property; batch, then flush (which waits for the
    confirms) per slice of ticks;
(d) **limit**: the same messages in uncompressed sub-entry batches of 100, encoded before the
    clock starts, written straight to the leaders under the same in-flight bound (not what
    superticks writes by default: the JS client cannot read sub-entry batches);
(e) **naive rstream**: `SuperStreamProducer.send` per message with an `AMQPMessage`;
(f) **pika** into a stream queue with confirms, one at a time (opt-in: ~1k ticks/s).

Rounds (`rounds`, default 3): every contender runs once per round, the order rotated each
round (`bench.rounds`); a row shows its median over the rounds with each round's rate, and each
ratio is the median of the per-round ratios.

Fair by construction: every contender gets the same `warmup` ticks first (connections, lazy
leader look-ups, caches, rstream's first 0.5 s flush), confirmed before its clock starts, then
the same `count` ticks, timed from the first send until the last confirm; each writes to its
own fresh super stream (or stream), deleted afterwards. Each row's count is then read back: the
messages stored in its streams, counted by a reader, must be `warmup + count`. Beside each rate,
the CPU per tick in the window of this process (the client; pika's row runs in a thread of it)
and of the RabbitMQ nodes (`beam.smp` processes on this host; other traffic counts too).
Each row also says how many nodes led its partitions (`leader_nodes`): the broker places a new
stream's leader, and rows led by different numbers of nodes are not comparable.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench.cliworker import broker_cpu_seconds
from bench.report import Progress
from bench.rounds import paired_ratio, rotated
from partitioning.codec import frame_message
from partitioning.model import StreamConfig
from partitioning.producer import Producer, ProducerConfig, group_by_symbol
from partitioning.router import Router
from partitioning.simulator import MarketSimulator
from partitioning.topology import create_topology, delete_topology
from superticks.settings import ConnectionSettings
from superticks.streams import (
    Admin,
    Chunk,
    Offset,
    PartitionPublisher,
    Subscription,
    encode_publish_frame,
    encode_records_frame,
    encode_sub_entry_record,
    naive_rstream_publish,
)

__all__ = ["PublishBench", "PublishRow", "run_publish_bench"]

CEILING_TARGET = 0.9  # the producer's rate / the pre-encoded ceiling's
RBFLY_TARGET = 1.5  # the producer's rate / RbFly's
# the producer's defaults: messages per publish frame, and ticks unconfirmed at most
_FRAME: int = ProducerConfig.model_fields["batch_size"].default
_WINDOW: int = ProducerConfig.model_fields["max_in_flight"].default
_SUB_ENTRY = 100

Items = list[tuple[str, bytes]]


class _Meter:
    """CPU seconds of this process and of the broker nodes between `start()` and `stop()`
    (each contender calls them around its timed window)."""

    def __init__(self) -> None:
        self.client = self.broker = 0.0
        self._client0 = 0.0
        self._broker0: float | None = None
        self.broker_known = False

    def start(self) -> None:
        self._broker0 = broker_cpu_seconds()  # first: reading /proc is not the client's work
        self._client0 = time.process_time()

    def stop(self) -> None:
        self.client = time.process_time() - self._client0
        broker = broker_cpu_seconds()
        self.broker_known = broker is not None and self._broker0 is not None
        self.broker = (broker or 0.0) - (self._broker0 or 0.0)


_METER = _Meter()


@dataclass(frozen=True, slots=True)
class PublishRow:
    """One contender over every round: medians, and each round's rate."""

    name: str
    ticks: int  # ticks in the timing window (of each round)
    seconds: float  # median
    ticks_per_s: float  # median
    stored: int  # messages read back from the contender's streams (warm-up included; the
    # fewest of any round)
    client_cpu_us_per_tick: float | None = None  # this process's CPU in the window, per tick
    broker_cpu_us_per_tick: float | None = None  # every node's CPU in the window, per tick
    # the nodes leading its partitions (a stream's leader is placed by the broker when it is
    # created: rows whose partitions are led by different numbers of nodes are not comparable;
    # the fewest of any round)
    leader_nodes: int | None = None
    rates: tuple[float, ...] = ()  # ticks/s of each round, in round order


@dataclass(frozen=True, slots=True)
class PublishBench:
    count: int
    warmup: int
    rows: list[PublishRow]
    # medians of the per-round ratios (`bench.rounds.paired_ratio`)
    vs_ceiling: float  # superticks / pre-encoded per-message-id ceiling
    vs_rbfly: float | None  # superticks / RbFly (None: not installed)
    vs_subentry: float
    vs_naive: float
    rounds: int = 1
    vs_ceiling_rounds: tuple[float, ...] = ()  # each round's superticks / ceiling
    targets: dict[str, float] = field(
        default_factory=lambda: {"vs_ceiling": CEILING_TARGET, "vs_rbfly": RBFLY_TARGET}
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "warmup": self.warmup,
            "rows": [
                {k: getattr(r, k) for k in PublishRow.__dataclass_fields__} for r in self.rows
            ],
            "vs_ceiling": self.vs_ceiling,
            "vs_rbfly": self.vs_rbfly,
            "vs_subentry": self.vs_subentry,
            "vs_naive": self.vs_naive,
            "rounds": self.rounds,
            "vs_ceiling_rounds": list(self.vs_ceiling_rounds),
            "targets": self.targets,
        }


# -- contenders: each returns the seconds of its timed window -----------------------------------
async def _superticks(settings: ConnectionSettings, ss: str, warm: Items, items: Items) -> float:
    config = ProducerConfig(connection=settings, super_stream=ss, name=f"{ss}-producer")
    async with Producer(config) as producer:
        await producer.send_batch(warm)
        await producer.flush(60)
        _METER.start()
        started = time.perf_counter()
        for i in range(0, len(items), 2_000):
            await producer.send_batch(items[i : i + 2_000])
        await producer.flush(300)
        seconds = time.perf_counter() - started
        _METER.stop()
        return seconds


def _by_partition(items: Items, partitions: int) -> list[list[tuple[bytes, bytes]]]:
    """(symbol, AMQP message) per partition (our router), in the order the producer writes
    them: per slice of 2,000 ticks (the bench's `send_batch` size), grouped by symbol."""
    router = Router(partitions)
    out: list[list[tuple[bytes, bytes]]] = [[] for _ in range(partitions)]
    for i in range(0, len(items), 2_000):
        for symbol, bodies in group_by_symbol(items[i : i + 2_000]).items():
            bucket = out[router.route(symbol)]
            key = symbol.encode()
            bucket.extend((key, frame_message(symbol, body)) for body in bodies)
    return out


class _Links:
    """Raw publishers on each partition's leader, counting confirmed ticks (a confirmed id
    stands for `weights[partition][id]` ticks, a sub-entry batch's size; an id without a
    weight for 1: one message, counted without Python work per id). At most
    `window` ticks are unconfirmed at a time: the producer's in-flight bound
    (`ProducerConfig.max_in_flight`), so the ceiling does not get a deeper pipeline than the
    producer may have."""

    def __init__(
        self, settings: ConnectionSettings, streams: list[str], ref: str, window: int
    ) -> None:
        self.confirmed = 0
        self.written = 0
        self.target = 0
        self.window = window
        self.done = asyncio.Event()
        self.room = asyncio.Event()
        self.weights: list[dict[int, int]] = [{} for _ in streams]
        self.links = [
            PartitionPublisher(
                settings, s, f"{ref}-{i}", self._confirmer(i), lambda _e: None, lambda _w: None
            )
            for i, s in enumerate(streams)
        ]

    def _confirmer(self, index: int) -> Callable[[list[int]], None]:
        weights = self.weights[index]

        def confirmed(ids: list[int]) -> None:
            self.confirmed += sum(weights.pop(i, 1) for i in ids) if weights else len(ids)
            self.room.set()
            if self.confirmed >= self.target:
                self.done.set()

        return confirmed

    async def send(self, frames: list[list[tuple[bytes, int]]], ticks: int) -> None:
        """Write each partition's (frame, ticks in it) in turn (round robin, draining after
        each round, waiting for room in the window before each frame), then wait until
        `ticks` more ticks are confirmed."""
        self.target += ticks
        self.done.clear()
        for i in range(max(map(len, frames), default=0)):
            for link, fs in zip(self.links, frames, strict=True):
                if i < len(fs):
                    frame, weight = fs[i]
                    while self.written + weight - self.confirmed > self.window:
                        self.room.clear()
                        async with asyncio.timeout(300):
                            await self.room.wait()
                    self.written += weight
                    link.write(frame)
            await asyncio.gather(*(link.drain() for link in self.links))
        async with asyncio.timeout(300):
            await self.done.wait()


async def _raw_frames(
    settings: ConnectionSettings,
    ss: str,
    warm: Items,
    items: Items,
    encode: Callable[
        [list[tuple[bytes, bytes]], dict[int, int], int], tuple[list[tuple[bytes, int]], int]
    ],
) -> float:
    """Encode warm-up and timed frames first (`encode(messages, weights, next_id)` returns the
    frames and the next id), connect, send the warm-up, then time the rest."""
    async with Admin(settings) as admin:
        streams = await admin.partitions(ss)
    links = _Links(settings, streams, ss, _WINDOW)
    batches = []
    next_ids = [1] * len(streams)
    for part in (warm, items):
        frames = []
        for i, messages in enumerate(_by_partition(part, len(streams))):
            encoded, next_ids[i] = encode(messages, links.weights[i], next_ids[i])
            frames.append(encoded)
        batches.append(frames)
    await asyncio.gather(*(link.start() for link in links.links))
    try:
        await links.send(batches[0], len(warm))
        _METER.start()
        started = time.perf_counter()
        await links.send(batches[1], len(items))
        seconds = time.perf_counter() - started
        _METER.stop()
        return seconds
    finally:
        await asyncio.gather(*(link.stop() for link in links.links))


def _per_message(
    messages: list[tuple[bytes, bytes]], weights: dict[int, int], pid: int
) -> tuple[list[tuple[bytes, int]], int]:
    """The producer's default frames: v2, one id per message, the symbol as filter value
    (one tick per id: no `weights`)."""
    frames = []
    for start in range(0, len(messages), _FRAME):
        part = messages[start : start + _FRAME]
        batch = [(pid + j, m) for j, (_, m) in enumerate(part)]
        filters = [s for s, _ in part]
        frame = encode_publish_frame(PartitionPublisher.PUBLISHER_ID, batch, filters)
        frames.append((frame, len(batch)))
        pid += len(batch)
    return frames, pid


def _sub_entries(
    messages: list[tuple[bytes, bytes]], weights: dict[int, int], pid: int
) -> tuple[list[tuple[bytes, int]], int]:
    records, ticks = [], []
    for start in range(0, len(messages), _SUB_ENTRY):
        batch = [m for _, m in messages[start : start + _SUB_ENTRY]]
        records.append(encode_sub_entry_record(pid, batch))
        weights[pid] = len(batch)
        ticks.append(len(batch))
        pid += 1
    per_frame = max(1, _FRAME // _SUB_ENTRY)
    frames = [
        (
            encode_records_frame(PartitionPublisher.PUBLISHER_ID, records[i : i + per_frame], 1),
            sum(ticks[i : i + per_frame]),
        )
        for i in range(0, len(records), per_frame)
    ]
    return frames, pid


async def _rbfly(
    settings: ConnectionSettings, ss: str, warm: Items, items: Items, rbs: Any
) -> float:
    async with Admin(settings) as admin:
        streams = await admin.partitions(ss)
        leaders = [(await admin.info(s)).leader for s in streams]
    router = Router(len(streams))
    password = settings.password.get_secret_value()
    clients = [
        rbs.streams_client(f"rabbitmq-stream://{settings.username}:{password}@{leader}/")
        for leader in leaders
    ]
    async with contextlib.AsyncExitStack() as stack:
        publishers = [
            await stack.enter_async_context(
                client.publisher(s, name=f"{s}-rbfly", cls=rbs.PublisherBatchFast)
            )
            for client, s in zip(clients, streams, strict=True)
        ]
        for client in clients:
            stack.push_async_callback(client.disconnect)
        ctx = rbs.stream_message_ctx
        route: dict[str, Any] = {}

        async def publish(part: Items) -> None:
            for i in range(0, len(part), 2_000):
                for symbol, body in part[i : i + 2_000]:
                    publisher = route.get(symbol)
                    if publisher is None:
                        publisher = route[symbol] = publishers[router.route(symbol)]
                    publisher.batch(ctx(body, app_properties={"symbol": symbol}))
                await asyncio.gather(*(p.flush() for p in publishers))

        await publish(warm)
        _METER.start()
        started = time.perf_counter()
        await publish(items)
        seconds = time.perf_counter() - started
        _METER.stop()
        return seconds


def _pika(settings: ConnectionSettings, stream: str, warm: Items, items: Items) -> float:
    import pika

    params = pika.ConnectionParameters(
        host="localhost",
        port=5672,
        credentials=pika.PlainCredentials(settings.username, settings.password.get_secret_value()),
    )
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.queue_declare(stream, durable=True, arguments={"x-queue-type": "stream"})
        channel.confirm_delivery()

        def publish(part: Items) -> None:
            for symbol, body in part:
                channel.basic_publish(
                    "",
                    stream,
                    body,
                    pika.BasicProperties(
                        content_type="application/json", headers={"symbol": symbol}
                    ),
                )

        publish(warm)
        _METER.start()
        started = time.perf_counter()
        publish(items)
        seconds = time.perf_counter() - started
        _METER.stop()
        return seconds
    finally:
        connection.close()


# -- reading back ---------------------------------------------------------------------------
async def _stored(settings: ConnectionSettings, streams: list[str], expected: int) -> int:
    """The messages in `streams`, counted by reading them from the first offset (stops at
    `expected`, or after 2 s without a new chunk)."""
    seen = 0
    more = asyncio.Event()

    async def on_chunk(chunk: Chunk) -> None:
        nonlocal seen
        seen += len(chunk.messages)
        more.set()

    subscriptions = [
        Subscription(settings, s, on_chunk, Offset.first(), name="bench-readback", initial_credit=8)
        for s in streams
    ]
    try:
        await asyncio.gather(*(s.start() for s in subscriptions))
        while seen < expected:
            more.clear()
            try:
                async with asyncio.timeout(2.0):
                    await more.wait()
            except TimeoutError:
                break
    finally:
        await asyncio.gather(*(s.stop() for s in subscriptions))
    return seen


# -- the bench ---------------------------------------------------------------------------------
async def run_publish_bench(
    settings: ConnectionSettings,
    *,
    count: int = 100_000,
    warmup: int = 2_000,
    partitions: int = 3,
    symbols: int = 200,
    seed: int = 0,
    pika: bool = False,
    rounds: int = 3,
    show_progress: bool = False,
) -> PublishBench:
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, not {rounds}")
    simulator = MarketSimulator(symbols, seed=seed)
    warm, items = simulator.batch(warmup), simulator.batch(count)
    tag = uuid.uuid4().hex[:6]
    try:
        rbs: Any = importlib.import_module("rbfly.streams")
        # it warns "error suppressed: protocol is disconnected" for each closed connection
        logging.getLogger("rbfly").setLevel(logging.ERROR)
    except ImportError:
        rbs = None

    def super_stream(
        run: Callable[[ConnectionSettings, str, Items, Items], Awaitable[float]],
    ) -> Callable[[str], Awaitable[tuple[float, int, int | None]]]:
        async def contender(key: str) -> tuple[float, int, int | None]:
            ss = f"bench-{tag}-{key}"
            config = StreamConfig(super_stream=ss, partitions=partitions)
            await create_topology(settings, config)
            try:
                async with Admin(settings) as admin:
                    leaders = {(await admin.info(p)).leader for p in config.partition_names()}
                seconds = await run(settings, ss, warm, items)
                stored = await _stored(settings, config.partition_names(), warmup + count)
            finally:
                await delete_topology(settings, ss)
            return seconds, stored, len(leaders)

        return contender

    async def pika_row(key: str) -> tuple[float, int, int | None]:
        stream = f"bench-{tag}-{key}"
        try:
            seconds = await asyncio.to_thread(_pika, settings, stream, warm, items)
            stored = await _stored(settings, [stream], warmup + count)
        finally:
            async with Admin(settings) as admin:
                await admin.delete_stream(stream)
        return seconds, stored, None

    async def ceiling(s: ConnectionSettings, ss: str, w: Items, i: Items) -> float:
        return await _raw_frames(s, ss, w, i, _per_message)

    async def subentry(s: ConnectionSettings, ss: str, w: Items, i: Items) -> float:
        return await _raw_frames(s, ss, w, i, _sub_entries)

    async def rbfly(s: ConnectionSettings, ss: str, w: Items, i: Items) -> float:
        return await _rbfly(s, ss, w, i, rbs)

    async def naive(s: ConnectionSettings, ss: str, w: Items, i: Items) -> float:
        def meter(opening: bool) -> None:  # its window is inside the adapter
            if opening:
                _METER.start()
            else:
                _METER.stop()

        return await naive_rstream_publish(s, ss, i, warmup=w, on_window=meter)

    contenders: list[tuple[str, Callable[[str], Awaitable[tuple[float, int, int | None]]]]] = [
        ("ceiling: pre-encoded frames, per-message ids", super_stream(ceiling)),
        ("superticks producer (defaults)", super_stream(_superticks)),
    ]
    if rbs is not None:
        contenders.append(("RbFly batch publisher per leader", super_stream(rbfly)))
    contenders += [
        ("limit: pre-encoded sub-entry batches of 100", super_stream(subentry)),
        ("naive rstream send()", super_stream(naive)),
    ]
    if pika:
        contenders.append(("pika into a stream queue", pika_row))
    runs: dict[str, list[tuple[float, int, int | None, float, float | None]]] = {
        name: [] for name, _ in contenders
    }
    with Progress("publish", rounds * len(contenders), enabled=show_progress) as bar:
        done = 0
        for r in range(rounds):
            for n, (name, run) in rotated(list(enumerate(contenders)), r):
                bar.update(done, f"round {r + 1}: {name}")
                seconds, stored, leader_nodes = await run(f"{r}-{n}")
                done += 1
                broker = _METER.broker if _METER.broker_known else None
                runs[name].append((seconds, stored, leader_nodes, _METER.client, broker))
    rows = [_row(name, count, runs[name]) for name, _ in contenders]
    by_name = {row.name.split(" ")[0].rstrip(":"): row for row in rows}
    ours = by_name["superticks"]

    def vs(key: str) -> float:
        return paired_ratio(ours.rates, by_name[key].rates)

    return PublishBench(
        count=count,
        warmup=warmup,
        rows=rows,
        vs_ceiling=vs("ceiling"),
        vs_rbfly=vs("RbFly") if "RbFly" in by_name else None,
        vs_subentry=vs("limit"),
        vs_naive=vs("naive"),
        rounds=rounds,
        vs_ceiling_rounds=tuple(
            round(a / b, 2) for a, b in zip(ours.rates, by_name["ceiling"].rates, strict=True)
        ),
    )


def _row(
    name: str, count: int, runs: list[tuple[float, int, int | None, float, float | None]]
) -> PublishRow:
    """One contender's row from its rounds: (seconds, stored, leader nodes, client CPU s,
    broker CPU s or None) each."""
    seconds = statistics.median(run[0] for run in runs)
    client = statistics.median(run[3] for run in runs)
    brokers = [run[4] for run in runs if run[4] is not None]
    leaders = [run[2] for run in runs if run[2] is not None]
    return PublishRow(
        name,
        count,
        round(seconds, 3),
        round(count / seconds, 1),
        min(run[1] for run in runs),
        round(client / count * 1e6, 2),
        round(statistics.median(brokers) / count * 1e6, 2) if len(brokers) == len(runs) else None,
        min(leaders) if leaders else None,
        tuple(round(count / run[0], 1) for run in runs),
    )
