"""``python -m bench.probe``: a group worker that also times each tick from creation to handler.

It runs `run_worker` (what `superticks worker` runs, GC tuned the same way) with `WorkerConfig`
defaults and the `vwap` handler, wrapped by `LatencyProbe` (`MessageLatencyProbe`: the vwap
handler takes each chunk undecoded, as in `superticks worker`): when a chunk's ticks reach the
handler, each tick's latency is the wall clock then minus the tick's own timestamp (the
producer stamps it when it creates the tick), recorded in the histogram of the time window its
timestamp falls into. The bench and this process run on one host: one wall clock.

Where the time goes, per tick (`STAGES`; the three add up to the end-to-end latency):
``to leader``, creation to the chunk's timestamp (the leader wrote the chunk: producer, socket,
the leader's chunk building; the broker's clock is this host's, in ms, so +-1 ms);
``leader to worker``, chunk timestamp to the chunk reaching the worker (`TimedWorker`:
replication to a quorum, commit, delivery, the client's queue); ``in worker``, from there to the
handler (the partition's lock: a chunk or offset store in progress, the offset fence).
A window counts as `skewed` the ticks whose chunk timestamp cannot be on this host's clock (a
chunk stamped more than 2 ms before its tick was made, or after it reached the worker): 0 for
the compose cluster, whose containers share this host's clock. Beside the stages, each window
holds the worker's event-loop lag (how late 5 ms sleeps woke) and the process's CPU time split
from the kernel's scheduler statistics (``/proc/self/task/*/schedstat``, every 100 ms): how long
it ran and how long it was ready to run but waited for a core. When the wait is high, *leader to
worker* is the worker's process waiting for a core, not the broker.

The probe's own bookkeeping stays off the hot path: a chunk's ticks are recorded as their
creation stamps (kept in an array, 8 bytes a tick) and folded into the histograms when the
window is reported, after its step (recording each tick into two histograms as it was handled
cost the worker ~1.4 us a tick, a sixth of its own work; now ~0.3 us).

With ``--plain`` it runs a `PlainReader` instead: a reader of the same chunks that does
nothing with them, the broker's share of *leader to worker* measured beside the worker.

Its owner (`bench.latency`) talks to it by lines. On stdin: ``window NAME START_US END_US``
opens a window (ticks stamped in ``[START_US, END_US)`` are recorded in it), ``report NAME``
asks for it. On stdout: ``ready`` once the worker is active on every partition, ``handled N``
every 0.1 s, ``report {json}`` per request, and one final JSON line at exit (SIGTERM, or stdin
closed: its owner is gone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from array import array
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from partitioning.codec import Tick, decode_messages
from superticks.histogram import Histogram
from superticks.streams import Chunk
from workers.group import GroupWorker
from workers.handlers import MessageHandler, TickHandler
from workers.vwap import message_timestamps

__all__ = [
    "STAGES",
    "LatencyProbe",
    "PlainReader",
    "TimedWorker",
    "Window",
    "scheduler_times_us",
]

STAGES = ("to leader", "leader to worker", "in worker")
_GRAIN_US = 2_000  # a chunk timestamp's 1 ms grain, and 1 ms to spare
_NO_CHUNK = -1  # a chunk recorded without its arrival (no `TimedWorker`): no stage split


def scheduler_times_us() -> tuple[int, int] | None:
    """(ran, waited for a core) in us, summed over this process's threads, from the kernel's
    scheduler statistics; None where there are none (not Linux, no schedstats)."""
    ran = waited = 0
    try:
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/schedstat", encoding="ascii") as f:
                    fields = f.read().split()
            except FileNotFoundError:  # a thread that just ended
                continue
            ran += int(fields[0])
            waited += int(fields[1])
    except (OSError, ValueError, IndexError):
        return None
    return ran // 1000, waited // 1000


class Window:
    """Ticks stamped in ``[start_us, end_us)``: their latencies (us), count, and when the
    first and last of them reached the handler (wall clock, s)."""

    __slots__ = (
        "_histogram", "_marks", "_stages", "_stamps", "count", "cpu_ran_us", "cpu_waited_us",
        "end_us", "first_s", "last_s", "loop_lag", "name", "skewed", "start_us",
    )  # fmt: skip

    def __init__(self, name: str, start_us: int, end_us: int) -> None:
        self.name = name
        self.start_us = start_us
        self.end_us = end_us
        self._histogram = Histogram()
        self._stages = {stage: Histogram() for stage in STAGES}  # empty without a TimedWorker
        # recorded, not yet folded into the histograms (see `record`): the ticks' creation
        # stamps, and per chunk (end of its stamps, handler clock us, chunk timestamp us)
        self._stamps = array("q")
        self._marks: list[tuple[int, int, int]] = []
        # ticks whose chunk timestamp is off this host's clock by more than its 1 ms grain: a
        # chunk stamped before its tick was made, or after it reached the worker (0 when the
        # broker shares this host's clock; else the stage split is not to be trusted)
        self.skewed = 0
        # how late the worker's event loop woke from 5 ms sleeps during the window (us): a
        # process waiting for a core, or a long synchronous step; chunks wait meanwhile
        self.loop_lag = Histogram()
        # the worker process's CPU during the window (scheduler statistics, us): how long it
        # ran, and how long it was ready to run but waited for a core (-1: unknown)
        self.cpu_ran_us = -1
        self.cpu_waited_us = -1
        self.count = 0
        self.first_s = 0.0
        self.last_s = 0.0

    def record(self, stamps: list[int], now_us: int, chunk_us: int = _NO_CHUNK) -> None:
        """Ticks created at `stamps` (us) handed to the handler at `now_us`, from a chunk the
        leader stamped `chunk_us` (`_NO_CHUNK`: unknown). Kept as they are; each tick's end-
        to-end and *to leader* latencies are counted when the histograms are read."""
        self._stamps.extend(stamps)
        self._marks.append((len(self._stamps), now_us, chunk_us))

    def record_delay(self, delay_us: int, count: int, now_s: float) -> None:
        """`count` ticks that took `delay_us` (a chunk's ticks, timed as one; the plain
        reader's), received at `now_s` (wall clock)."""
        self._histogram.record(delay_us, count)
        if not self.count:
            self.first_s = now_s
        self.count += count
        self.last_s = now_s

    def _fold(self) -> None:
        stamps, marks = self._stamps, self._marks
        if not marks:
            return
        end_to_end = self._histogram.record
        to_leader = self._stages["to leader"].record
        start = 0
        for end, now_us, chunk_us in marks:
            for ts in stamps[start:end]:
                end_to_end(now_us - ts)
            if chunk_us != _NO_CHUNK:
                for ts in stamps[start:end]:
                    to_leader(chunk_us - ts)
            start = end
        self._stamps = array("q")
        self._marks = []

    @property
    def histogram(self) -> Histogram:
        """Each tick's end-to-end latency (us)."""
        self._fold()
        return self._histogram

    @property
    def stages(self) -> dict[str, Histogram]:
        """Per stage (`STAGES`), each tick's time in it (us)."""
        self._fold()
        return self._stages

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start_us": self.start_us,
            "end_us": self.end_us,
            "count": self.count,
            "first_s": self.first_s,
            "last_s": self.last_s,
            "histogram": self.histogram.to_dict(),
            "stages": {stage: h.to_dict() for stage, h in self.stages.items()},
            "skewed": self.skewed,
            "loop_lag": self.loop_lag.to_dict(),
            "cpu_ran_us": self.cpu_ran_us,
            "cpu_waited_us": self.cpu_waited_us,
        }


class LatencyProbe:
    """Wraps a handler: records each tick's latency at the moment its chunk is handed over."""

    def __init__(self, inner: TickHandler) -> None:
        self.inner = inner
        self.handled = 0
        self.windows: list[Window] = []
        # partition -> (wall clock us when its chunk reached the worker, the chunk's timestamp
        # in ms): set by `TimedWorker`, one chunk at a time per partition
        self.arrived: dict[int, tuple[int, int]] = {}

    def loop_lagged(self, now_us: int, lag_us: int) -> None:
        """Record an event-loop wake-up `lag_us` late at `now_us` in the windows open then."""
        for window in self.windows:
            if window.start_us <= now_us < window.end_us:
                window.loop_lag.record(lag_us)

    def scheduled(self, now_us: int, ran_us: int, waited_us: int) -> None:
        """Add the process's CPU time since the last call (ran, waited for a core), measured
        at `now_us`, to the windows open then."""
        for window in self.windows:
            if window.start_us <= now_us < window.end_us:
                window.cpu_ran_us = max(0, window.cpu_ran_us) + ran_us
                window.cpu_waited_us = max(0, window.cpu_waited_us) + waited_us

    def open(self, window: Window) -> None:
        self.windows.append(window)

    def window(self, name: str) -> Window | None:
        return next((w for w in self.windows if w.name == name), None)

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        if self.windows:
            self._record(partition, [t.timestamp_us for t in ticks])
        await self.inner.handle_batch(partition, offsets, ticks)
        self.handled += len(ticks)

    def _record(self, partition: int, stamps: list[int]) -> None:
        """Record the latencies of a chunk's ticks (their timestamps) reaching the handler now."""
        windows = self.windows
        if windows:
            now_ns = time.time_ns()
            now = now_ns // 1000
            low, high = min(stamps, default=0), max(stamps, default=-1)
            for window in windows:
                start, end = window.start_us, window.end_us
                if high < start or low >= end:  # past windows cost one comparison a chunk
                    continue
                inside = (
                    stamps
                    if start <= low and high < end
                    else [ts for ts in stamps if start <= ts < end]
                )
                if not inside:
                    continue
                n = len(inside)
                arrival = self.arrived.get(partition)
                if arrival is None:
                    window.record(inside, now)
                else:
                    arrived_us, chunk_us = arrival[0], arrival[1] * 1000
                    window.record(inside, now, chunk_us)
                    stages = window._stages
                    stages["leader to worker"].record(arrived_us - chunk_us, n)
                    stages["in worker"].record(now - arrived_us, n)
                    if arrived_us < chunk_us - _GRAIN_US:
                        window.skewed += n
                    elif chunk_us < max(inside) - _GRAIN_US:
                        window.skewed += sum(1 for ts in inside if chunk_us < ts - _GRAIN_US)
                if not window.count:
                    window.first_s = now_ns / 1e9
                window.count += n
                window.last_s = now_ns / 1e9


class _MessageAndTickHandler(TickHandler, MessageHandler, Protocol):
    """A `MessageHandler` is a `TickHandler` with `handle_messages` (see `workers.handlers`)."""


class MessageLatencyProbe(LatencyProbe):
    """A `LatencyProbe` of a handler that takes undecoded messages (`MessageHandler`, as the
    vwap handler does): the ticks' timestamps are read by the compiled pass of
    `workers.vwap.message_timestamps` (a chunk it declines is decoded for them)."""

    def __init__(self, inner: _MessageAndTickHandler) -> None:
        super().__init__(inner)
        self.messages: MessageHandler = inner

    async def handle_messages(
        self, partition: int, first_offset: int, messages: Sequence[bytes]
    ) -> Sequence[tuple[int, str]]:
        if self.windows:
            chunk = list(messages)
            stamps = message_timestamps(chunk)
            if stamps is None:
                stamps = [t.timestamp_us for t in decode_messages(chunk)[0]]
            self._record(partition, stamps)
        refused = await self.messages.handle_messages(partition, first_offset, messages)
        self.handled += len(messages) - len(refused)
        return refused


class TimedWorker(GroupWorker):
    """`GroupWorker` unchanged, but noting when each chunk reaches it (before the partition's
    lock) for its `LatencyProbe` handler."""

    async def _on_chunk(self, part: Any, chunk: Chunk) -> None:
        if isinstance(self.handler, LatencyProbe):
            self.handler.arrived[part.index] = (time.time_ns() // 1000, chunk.timestamp_ms)
        await super()._on_chunk(part, chunk)


async def _watch_loop(probe: LatencyProbe, every_s: float = 0.005) -> None:
    """Owned task: sleep `every_s` again and again, recording how late each wake-up came."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(every_s)
        late = time.perf_counter() - started - every_s
        probe.loop_lagged(time.time_ns() // 1000, max(0, int(late * 1e6)))


async def _watch_cpu(probe: LatencyProbe, every_s: float = 0.1) -> None:
    """Owned task: every `every_s`, the process's CPU time since the last look (ran, waited
    for a core), into the windows open then. Ends at once where the kernel has no figures."""
    last = scheduler_times_us()
    while last is not None:
        await asyncio.sleep(every_s)
        now = scheduler_times_us()
        if now is None:
            return
        probe.scheduled(time.time_ns() // 1000, now[0] - last[0], now[1] - last[1])
        last = now


class _Windows(Protocol):
    def open(self, window: Window) -> None: ...
    def window(self, name: str) -> Window | None: ...


async def _commands(probe: _Windows) -> None:
    """Owned task: read window and report commands from stdin until it closes (its owner is
    gone, or done with it), then stop the worker as SIGTERM would."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        words = line.decode().split()
        if len(words) == 4 and words[0] == "window":
            probe.open(Window(words[1], int(words[2]), int(words[3])))
        elif len(words) == 2 and words[0] == "report":
            window = probe.window(words[1])
            found = window.to_dict() if window is not None else None
            print("report " + json.dumps(found), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)  # run_worker's handler: a graceful stop


async def _main(args: argparse.Namespace) -> None:
    from superticks.settings import load_settings
    from workers.gc_tuning import tune_for_throughput
    from workers.group import WorkerConfig, run_worker
    from workers.handlers import VwapHandler

    connection, _ = load_settings()
    config = WorkerConfig(
        connection=connection, group=args.group, super_stream=args.super_stream, name=args.name
    )
    probe = MessageLatencyProbe(VwapHandler())  # the vwap handler takes undecoded chunks
    ready = False

    def progress(worker: GroupWorker) -> None:
        nonlocal ready
        if not ready:
            partitions = worker.status()["partitions"]
            if partitions and len(worker.active_partitions) == len(partitions):
                ready = True
                print("ready", flush=True)
        print(f"handled {probe.handled}", flush=True)

    tune_for_throughput()  # as `superticks worker` does
    tasks = [
        asyncio.create_task(_commands(probe)),
        asyncio.create_task(_watch_loop(probe)),
        asyncio.create_task(_watch_cpu(probe)),
    ]
    try:
        await run_worker(
            config, probe, progress=progress, progress_every_s=0.1, worker_type=TimedWorker
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    final = {"handled": probe.handled, "windows": [w.to_dict() for w in probe.windows]}
    print(json.dumps(final), flush=True)


class PlainReader:
    """The bench's reference: a reader of the same partitions, from their leaders like the
    worker (a single-active-consumer group of its own), that does nothing with the chunks.
    Each tick counts as its chunk's delay, from the leader's timestamp to the chunk's arrival,
    in the window the chunk's timestamp falls into: what the broker's replication, commit and
    delivery cost on this host, without the worker's work."""

    def __init__(self) -> None:
        self.windows: list[Window] = []

    def open(self, window: Window) -> None:
        self.windows.append(window)

    def window(self, name: str) -> Window | None:
        return next((w for w in self.windows if w.name == name), None)

    async def on_chunk(self, chunk: Chunk) -> None:
        now_ns = time.time_ns()
        chunk_us = chunk.timestamp_ms * 1000
        for window in self.windows:
            if window.start_us <= chunk_us < window.end_us:
                window.record_delay(now_ns // 1000 - chunk_us, len(chunk.messages), now_ns / 1e9)


async def _plain(args: argparse.Namespace) -> None:
    """``--plain``: run a `PlainReader` until SIGTERM (or stdin closed)."""
    from superticks.settings import load_settings
    from superticks.streams import Admin, Offset, Subscription

    connection, _ = load_settings()
    async with Admin(connection) as admin:
        streams = await admin.partitions(args.super_stream)
    reader = PlainReader()
    active: set[int] = set()

    def activation(index: int) -> Callable[[bool], Awaitable[Offset]]:
        async def activated(is_active: bool) -> Offset:
            (active.add if is_active else active.discard)(index)
            if is_active and len(active) == len(streams):
                print("ready", flush=True)
            return Offset.next()

        return activated

    subscriptions = [
        Subscription(
            connection, stream, reader.on_chunk, Offset.next(), name=f"{args.name}-{i}",
            group=args.group, super_stream=args.super_stream, on_activation=activation(i),
            initial_credit=64,
        )
        for i, stream in enumerate(streams)
    ]  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    commands = asyncio.create_task(_commands(reader))
    try:
        for subscription in subscriptions:
            await subscription.start()
        await stop.wait()
    finally:
        commands.cancel()
        await asyncio.gather(commands, return_exceptions=True)
        for subscription in subscriptions:
            await subscription.stop()
    print(json.dumps({"windows": [w.to_dict() for w in reader.windows]}), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    import uvloop

    parser = argparse.ArgumentParser(prog="python -m bench.probe")
    parser.add_argument("--group", required=True)
    parser.add_argument("--super-stream", required=True)
    parser.add_argument("--name", default="latency-probe")
    parser.add_argument(
        "--plain", action="store_true", help="a plain reader of the chunks (see PlainReader)"
    )
    args = parser.parse_args(argv)
    uvloop.run(_plain(args) if args.plain else _main(args))


if __name__ == "__main__":
    main()
