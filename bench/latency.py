"""`superticks bench latency`: end-to-end latency, tick creation to handler, at several rates.

One fresh super stream, the producer (`ProducerConfig` defaults but for the given `linger_ms`
and `sub_entry_size`) in this process and one worker
in its own process (`bench.probe`: `run_worker` with `WorkerConfig` defaults and the vwap
handler, timing each tick as its chunk reaches the handler). Ticks carry the wall clock of
their creation (the moment their batch goes to the producer), so a tick's
end-to-end latency is the handler's wall clock minus that stamp: producer batching, publish,
replication to a quorum, chunk delivery and decoding. Beside it, the producer's confirm latency
of the same ticks (creation to confirm).

1. **maximum rate**: `flood` ticks as fast as the producer takes them; the maximum is the rate
   at which the worker handled them (first to last tick handled), capped by the publish rate.
2. **steps**: at 10%, 50% and 90% of that maximum and at each of `fixed_rates`, a paced feed
   (one batch every 10 ms) for `warmup_s` + `duration_s`; only ticks created in the last
   `duration_s` are recorded. Each step waits until the worker handled every tick sent. Its
   ticks are made before it starts, like the flood's (`MarketSimulator.unstamped`), and each
   batch is stamped with the wall clock as it goes out: a feed handler's ticks come from the
   exchange, and making them here cost 2-3 us each, on the cores the system under test uses
   (so the steps could not reach the rates the flood measured: 90% of a 224,127/s maximum
   achieved 80,828/s).

Latencies go into HDR-style histograms (`superticks.histogram`: every tick counted, no sample cap,
0.1% resolution): p50 / p99 / p99.9 / max. A step is complete when the worker recorded exactly
the ticks the feed created in its window. Each step also splits the end-to-end time into the
probe's stages (`bench.probe.STAGES`: to the leader's chunk, leader to worker, in the worker).
The bench, the probe and the broker's containers share this host's wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.cliworker import settings_env
from bench.report import CpuTimes, Progress, cpu_shares, cpu_times
from partitioning.model import StreamConfig, format_timestamp_us
from partitioning.producer import Producer, ProducerConfig
from partitioning.simulator import MarketSimulator
from partitioning.topology import create_topology, delete_topology
from superticks.histogram import Histogram
from superticks.settings import ConnectionSettings
from superticks.streams import Admin

__all__ = ["LatencyBench", "LatencyStep", "run_latency_bench"]

P99_TARGET_MS = 50.0
_TICK_S = 0.01  # the paced feed sends one batch per 10 ms


@dataclass(frozen=True, slots=True)
class LatencyStep:
    name: str  # "10% of max", "20000/s", ...
    offered_per_s: float
    achieved_per_s: float  # ticks created in the window / its duration
    sent: int  # ticks created in the recorded window
    handled: int  # of those, recorded by the worker (read back from its histogram)
    end_to_end_ms: dict[str, float | int]
    confirm_ms: dict[str, float | int]
    feed_late_ms: float  # the paced feed's worst stall (a 10 ms step that came late)
    # where the end-to-end time went (`bench.probe.STAGES`): stage -> its summary in ms
    stages_ms: dict[str, dict[str, float | int]] = field(default_factory=dict)
    clock_skewed: int = 0  # ticks whose chunk timestamp was off this host's clock (see probe)
    worker_loop_lag_ms: dict[str, float | int] = field(default_factory=dict)
    # the worker process's CPU in the window, as shares of its duration (None: unknown): it ran,
    # and it was ready to run but waited for a core (other processes had the cores)
    worker_ran: float | None = None
    worker_waited: float | None = None
    # with a plain reader (`bench.probe.PlainReader`): per tick, its chunk's leader timestamp
    # to the chunk reaching a reader that does nothing else (the broker's share), in ms
    plain_reader_ms: dict[str, float | int] = field(default_factory=dict)
    # the whole machine's CPU over the recorded window (`bench.report.cpu_shares`: busy, idle,
    # iowait, steal; None where `/proc/stat` cannot be read): a tail that comes with a busy
    # machine or with steal (the hypervisor running other guests on these cores) is theirs
    machine_cpu: dict[str, float] | None = None

    @property
    def complete(self) -> bool:
        return self.sent == self.handled > 0


@dataclass(frozen=True, slots=True)
class LatencyBench:
    max_rate: float
    max_handled_per_s: float
    max_published_per_s: float
    steps: list[LatencyStep]
    p99_target_ms: float = P99_TARGET_MS
    meets: dict[str, bool] = field(default_factory=dict)  # target name -> met

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_rate": self.max_rate,
            "max_handled_per_s": self.max_handled_per_s,
            "max_published_per_s": self.max_published_per_s,
            "steps": [
                {
                    **{k: getattr(s, k) for k in LatencyStep.__dataclass_fields__},
                    "complete": s.complete,
                }
                for s in self.steps
            ],
            "p99_target_ms": self.p99_target_ms,
            "meets": self.meets,
        }


class _Probe:
    """The probe worker process and its line protocol (see `bench.probe`).

    A report line carries a whole histogram as JSON: about 15 bytes per occupied bucket, up to
    ~1 MB for latencies spread from microseconds to minutes, so the pipe reader takes lines of
    up to `LINE_LIMIT` bytes (asyncio's default, 64 KiB, failed the full-size flood's report).

    The probe runs in a session of its own, like a worker started by itself (a terminal, a
    service): with the kernel's autogroup scheduling (Linux's default on desktops and on this
    VM, ``/proc/sys/kernel/sched_autogroup_enabled``) each session shares the CPU as one, so a
    probe in the bench's session split one share with the bench's producer (measured side by
    side at 20,000 ticks/s on a loaded host: p99 1.7-2.3 s in the bench's session, 0.16-0.32 s
    in its own). It exits when its stdin closes, so it never outlives the bench.
    If the probe's output ends or cannot be read, waiting for a report or for handled ticks
    fails at once with the reason, instead of running into a time-out.
    """

    LINE_LIMIT = 64 * 1024 * 1024

    def __init__(
        self,
        settings: ConnectionSettings,
        ss: str,
        argv: Sequence[str] | None = None,
        *,
        plain: bool = False,
    ) -> None:
        self.settings = settings
        self.ss = ss
        role = ["--plain", "--group", f"{ss}-plain"] if plain else ["--group", f"{ss}-probe"]
        self.argv = list(argv) if argv is not None else [
            sys.executable, "-m", "bench.probe", *role, "--super-stream", ss,
        ]  # fmt: skip
        self.process: asyncio.subprocess.Process | None = None
        self.handled = 0
        self.ready = asyncio.Event()
        self.final: dict[str, Any] | None = None
        self._reports: asyncio.Queue[dict[str, Any] | BaseException | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._ended: BaseException | None = None  # why the probe's output ended

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=settings_env(self.settings), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            limit=self.LINE_LIMIT, start_new_session=True,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        """Owned task (cancelled by `stop`): parse the probe's lines until its output ends."""
        assert self.process is not None
        assert self.process.stdout is not None
        try:
            while line := await self.process.stdout.readline():
                text = line.decode().strip()
                if text == "ready":
                    self.ready.set()
                elif text.startswith("handled "):
                    self.handled = int(text.split()[1])
                elif text.startswith("report "):
                    await self._reports.put(json.loads(text[7:]))
                elif text.startswith("{"):
                    self.final = json.loads(text)
            self._ended = RuntimeError("the probe worker's output ended (did it exit?)")
        except (ValueError, OSError) as e:  # a line over LINE_LIMIT, bad JSON, a broken pipe
            self._ended = RuntimeError(f"the probe worker's output could not be read: {e!r}")
        self._reports.put_nowait(self._ended)

    def _send(self, line: str) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write((line + "\n").encode())

    def window(self, name: str, start_us: int, end_us: int) -> None:
        self._send(f"window {name} {start_us} {end_us}")

    async def report(self, name: str, timeout_s: float = 30) -> dict[str, Any]:
        if self._ended is not None:
            raise self._ended
        self._send(f"report {name}")
        async with asyncio.timeout(timeout_s):
            found = await self._reports.get()
        if isinstance(found, BaseException):
            raise found
        if found is None:
            raise RuntimeError(f"the probe has no window {name!r}")
        return found

    async def wait_handled(self, total: int, stalled_s: float = 60) -> None:
        """Until the probe handled `total` ticks in all; fails when it handled nothing new for
        `stalled_s` (a slow worker on a loaded machine may take minutes to drain a step: only
        a stalled one is an error)."""
        seen, since = self.handled, time.monotonic()
        while self.handled < total:
            if self._ended is not None:
                raise self._ended
            if self.process is None or self.process.returncode is not None:
                raise RuntimeError("the probe worker exited")
            if self.handled != seen:
                seen, since = self.handled, time.monotonic()
            elif time.monotonic() - since > stalled_s:
                raise RuntimeError(
                    f"the probe handled {self.handled:,} of {total:,} ticks and nothing more "
                    f"for {stalled_s:g} s"
                )
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        try:
            async with asyncio.timeout(30):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._reader
        self.process = None


async def _flood(
    producer: Producer, probe: _Probe, simulator: MarketSimulator, count: int, sent: int
) -> tuple[float, float]:
    """(handled per s, published per s) of `count` ticks sent flat out."""
    start_us = time.time_ns() // 1000
    items = simulator.batch(count)
    probe.window("flood", start_us, time.time_ns() // 1000 + 1)
    started = time.perf_counter()
    for i in range(0, count, 2_000):
        await producer.send_batch(items[i : i + 2_000])
    await producer.flush(300)
    published = count / (time.perf_counter() - started)
    await probe.wait_handled(sent + count)
    report = await probe.report("flood")
    seconds = report["last_s"] - report["first_s"]
    handled = report["count"] / seconds if seconds > 0 else 0.0
    return handled, published


async def _step(
    producer: Producer,
    probe: _Probe,
    simulator: MarketSimulator,
    name: str,
    window: str,
    rate: float,
    warmup_s: float,
    duration_s: float,
    sent_before: int,
    plain: _Probe | None = None,
) -> tuple[LatencyStep, int]:
    """A paced feed at `rate`; returns the step and the ticks sent in all."""
    total_s = warmup_s + duration_s
    # made before the window, as the flood's are; each batch is stamped as it goes out
    # (in a thread: seconds of work at the highest rates, which on the loop would starve the
    # producer's and the probe's connections of their heartbeats)
    ticks = await asyncio.to_thread(simulator.unstamped, int(rate * total_s) + 1)
    now_us = time.time_ns() // 1000
    start_us = now_us + int(warmup_s * 1e6)
    end_us = start_us + int(duration_s * 1e6)
    probe.window(window, start_us, end_us)
    if plain is not None:
        plain.window(window, start_us, end_us)
    confirms = Histogram()
    in_window = 0
    sent = 0
    late = 0.0
    cpu_before: CpuTimes | None = None
    started = last = time.monotonic()
    while (elapsed := time.monotonic() - started) < total_s:
        late = max(late, started + elapsed - last - _TICK_S)
        last = started + elapsed
        if cpu_before is None and elapsed >= warmup_s:
            cpu_before = cpu_times()  # the recorded window begins
        due = min(int(rate * elapsed), len(ticks)) - sent
        if due > 0:
            stamp = time.time_ns() // 1000  # the batch's creation, now
            text = format_timestamp_us(stamp).encode()
            batch = [
                (symbol, head + text + tail) for symbol, head, tail in ticks[sent : sent + due]
            ]
            # creation stamps of the batch's ticks inside the window
            stamps = [stamp] * due if start_us <= stamp < end_us else []
            future = await producer.send_batch(batch)
            sent += due
            if stamps:
                in_window += len(stamps)

                def confirmed(f: asyncio.Future[None], stamps: list[int] = stamps) -> None:
                    if not f.cancelled() and f.exception() is None:
                        now = time.time_ns() // 1000
                        for stamp in stamps:
                            confirms.record(now - stamp)

                future.add_done_callback(confirmed)
        await asyncio.sleep(_TICK_S)
    machine_cpu = cpu_shares(cpu_before, cpu_times())
    await producer.flush(120)
    await probe.wait_handled(sent_before + sent)
    report = await probe.report(window)
    plain_ms: dict[str, float | int] = {}
    if plain is not None:
        plain_report = await plain.report(window)
        plain_ms = Histogram.from_dict(plain_report["histogram"]).summary(1e-3)
    e2e = Histogram.from_dict(report["histogram"])
    window_us = end_us - start_us
    ran_us, waited_us = report.get("cpu_ran_us", -1), report.get("cpu_waited_us", -1)
    stages = {
        stage: Histogram.from_dict(data).summary(1e-3)
        for stage, data in report.get("stages", {}).items()
    }
    step = LatencyStep(
        name=name,
        offered_per_s=round(rate, 1),
        achieved_per_s=round(in_window / duration_s, 1),
        sent=in_window,
        handled=int(report["count"]),
        end_to_end_ms=e2e.summary(1e-3),
        confirm_ms=confirms.summary(1e-3),
        feed_late_ms=round(max(0.0, late) * 1e3, 1),
        stages_ms=stages,
        clock_skewed=int(report.get("skewed", 0)),
        worker_loop_lag_ms=(
            Histogram.from_dict(report["loop_lag"]).summary(1e-3) if "loop_lag" in report else {}
        ),
        worker_ran=round(ran_us / window_us, 3) if ran_us >= 0 else None,
        worker_waited=round(waited_us / window_us, 3) if waited_us >= 0 else None,
        plain_reader_ms=plain_ms,
        machine_cpu=machine_cpu,
    )
    return step, sent


async def run_latency_bench(
    settings: ConnectionSettings,
    *,
    duration_s: float = 10.0,
    warmup_s: float = 1.0,
    flood: int = 150_000,
    shares: Sequence[float] = (0.1, 0.5, 0.9),
    fixed_rates: Sequence[float] = (20_000.0,),
    partitions: int = 3,
    symbols: int = 200,
    seed: int = 0,
    linger_ms: float = 0.0,
    sub_entry_size: int = 1,
    plain_reader: bool = False,
    show_progress: bool = False,
) -> LatencyBench:
    ss = f"bench-{uuid.uuid4().hex[:6]}-latency"
    await create_topology(settings, StreamConfig(super_stream=ss, partitions=partitions))
    probe = _Probe(settings, ss)
    plain = _Probe(settings, ss, plain=True) if plain_reader else None
    steps: list[LatencyStep] = []
    try:
        await probe.start()
        async with asyncio.timeout(60):
            await probe.ready.wait()
        if plain is not None:
            await plain.start()
            async with asyncio.timeout(60):
                await plain.ready.wait()
        simulator = MarketSimulator(symbols, seed=seed, realtime=True)
        config = ProducerConfig(
            connection=settings,
            super_stream=ss,
            name=f"{ss}-feed",
            linger_ms=linger_ms,
            sub_entry_size=sub_entry_size,
        )
        async with Producer(config) as producer:
            total = 0
            with Progress("max rate", 1, enabled=show_progress) as bar:
                bar.update(0, f"{flood:,} ticks flat out")
                handled, published = await _flood(producer, probe, simulator, flood, total)
                total += flood
            max_rate = min(handled, published)
            plan = [(f"{share:.0%} of max", share * max_rate) for share in shares]
            plan += [(f"{rate:.0f}/s", rate) for rate in fixed_rates]
            plan.sort(key=lambda p: p[1])
            with Progress("latency", len(plan), enabled=show_progress) as bar:
                for n, (name, rate) in enumerate(plan):
                    bar.update(n, f"{name}: {rate:,.0f} ticks/s")
                    step, sent = await _step(
                        producer, probe, simulator, name, f"step{n}", rate,
                        warmup_s, duration_s, total, plain,
                    )  # fmt: skip
                    total += sent
                    steps.append(step)
    finally:
        await probe.stop()
        if plain is not None:
            await plain.stop()
        await delete_topology(settings, ss)
        async with Admin(settings) as admin:
            await admin.delete_stream(f"{ss}-dlq")
    meets = {}
    for step in steps:
        if step.name in ("50% of max", "20000/s"):
            meets[f"p99 <= {P99_TARGET_MS:.0f} ms at {step.name}"] = (
                step.complete and float(step.end_to_end_ms["p99"]) <= P99_TARGET_MS
            )
    return LatencyBench(
        max_rate=round(max_rate, 1),
        max_handled_per_s=round(handled, 1),
        max_published_per_s=round(published, 1),
        steps=steps,
        meets=meets,
    )
