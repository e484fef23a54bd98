"""The latency probe records each tick once, in the window its creation stamp falls into, and
its reports reach the bench whatever their size."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from bench.latency import _Probe
from bench.probe import LatencyProbe, MessageLatencyProbe, Window, scheduler_times_us
from partitioning.codec import Tick, format_body, frame_message
from superticks.histogram import Histogram
from superticks.settings import ConnectionSettings
from workers.handlers import VwapHandler


def _tick(ts: int) -> Tick:
    return Tick("AAPL", "NYSE", "1.00", "1", "1.01", "1", "1.00", "1", "1", ts, 0, 1)


class _Inner:
    def __init__(self) -> None:
        self.seen = 0

    async def handle_batch(
        self, partition: int, offsets: Sequence[int], ticks: Sequence[Tick]
    ) -> None:
        self.seen += len(ticks)


async def test_ticks_are_recorded_in_their_window_with_their_age() -> None:
    now = time.time_ns() // 1000
    inner = _Inner()
    probe = LatencyProbe(inner)
    probe.open(Window("a", now - 10_000_000, now - 5_000_000))
    probe.open(Window("b", now - 5_000_000, now + 1))
    ticks = [_tick(now - 8_000_000), _tick(now - 1_000_000), _tick(now - 20_000_000)]
    await probe.handle_batch(0, [0, 1, 2], ticks)
    a, b = probe.window("a"), probe.window("b")
    assert a is not None
    assert b is not None
    assert (a.count, b.count) == (1, 1)  # the third tick is in no window
    assert 8_000_000 <= a.histogram.max < 8_100_000
    assert 1_000_000 <= b.histogram.max < 1_100_000
    assert inner.seen == probe.handled == 3


async def test_the_three_stages_add_up_to_each_ticks_end_to_end_latency() -> None:
    now = time.time_ns() // 1000
    probe = LatencyProbe(_Inner())
    probe.open(Window("w", now - 1_000_000, now + 1_000_000))
    chunk_ms = (now - 30_000) // 1000  # the leader wrote the chunk 30 ms ago
    probe.arrived[2] = (now - 10_000, chunk_ms)  # it reached the worker 10 ms ago
    await probe.handle_batch(2, [0, 1], [_tick(now - 50_000), _tick(now - 40_000)])
    window = probe.window("w")
    assert window is not None
    to_leader, to_worker, in_worker = window.stages.values()
    assert to_leader.count == to_worker.count == in_worker.count == window.count == 2
    # per tick: creation -> chunk (20 and 10 ms), chunk -> worker 20 ms, worker -> handler 10 ms
    # (the chunk's timestamp is in whole ms: +-1 ms between the first two stages)
    assert 20_000 <= to_worker.max < 21_000
    assert 10_000 <= in_worker.max < 10_500
    assert 9_000 < to_leader.min <= to_leader.max <= 20_000
    assert window.histogram.total == to_leader.total + to_worker.total + in_worker.total


async def test_chunk_timestamps_off_this_hosts_clock_are_counted_as_skewed() -> None:
    now = time.time_ns() // 1000
    probe = LatencyProbe(_Inner())
    probe.open(Window("w", now - 1_000_000, now + 1_000_000))
    probe.arrived[0] = (now - 1_000, (now - 5_000) // 1000)  # a chunk 4 ms before arrival: fine
    await probe.handle_batch(0, [0], [_tick(now - 6_000)])
    probe.arrived[0] = (now - 1_000, (now - 50_000) // 1000)  # stamped 40 ms before its ticks
    await probe.handle_batch(0, [1, 2], [_tick(now - 10_000), _tick(now - 9_000)])
    probe.arrived[0] = (now - 1_000, (now + 30_000) // 1000)  # stamped after it arrived
    await probe.handle_batch(0, [3], [_tick(now - 8_000)])
    window = probe.window("w")
    assert window is not None
    assert window.count == 4
    assert window.skewed == 3


async def test_ticks_recorded_between_two_reads_are_counted_once_each() -> None:
    now = time.time_ns() // 1000
    probe = LatencyProbe(_Inner())
    probe.open(Window("w", now - 1_000_000, now + 1_000_000))
    probe.arrived[0] = (now, (now - 3_000) // 1000)
    await probe.handle_batch(0, [0, 1], [_tick(now - 5_000), _tick(now - 4_000)])
    window = probe.window("w")
    assert window is not None
    first = window.to_dict()
    assert window.histogram.count == window.stages["to leader"].count == 2  # read again: same
    await probe.handle_batch(0, [2], [_tick(now - 200_000)])
    assert window.histogram.count == window.stages["to leader"].count == 3
    assert window.histogram.max >= 200_000
    assert Histogram.from_dict(first["histogram"]).count == 2
    assert window.stages["leader to worker"].count == window.stages["in worker"].count == 3


def test_the_workers_cpu_time_is_added_to_the_windows_open_when_it_was_measured() -> None:
    probe = LatencyProbe(_Inner())
    probe.open(Window("a", 1_000, 2_000))
    probe.open(Window("b", 2_000, 3_000))
    unmeasured = probe.window("b")
    assert unmeasured is not None
    assert (unmeasured.cpu_ran_us, unmeasured.cpu_waited_us) == (-1, -1)  # unknown, not 0
    probe.scheduled(1_100, 300, 500)
    probe.scheduled(1_900, 200, 0)
    probe.scheduled(3_500, 900, 900)  # no window open then
    a, b = probe.window("a"), probe.window("b")
    assert a is not None
    assert b is not None
    assert (a.cpu_ran_us, a.cpu_waited_us) == (500, 500)
    assert (b.cpu_ran_us, b.cpu_waited_us) == (-1, -1)


def test_the_schedulers_figures_count_the_cpu_this_process_used() -> None:
    before = scheduler_times_us()
    if before is None:
        pytest.skip("no scheduler statistics on this system")
    started = time.process_time()
    while time.process_time() - started < 0.05:
        pass
    after = scheduler_times_us()
    assert after is not None
    assert after[0] - before[0] >= 40_000  # ran at least ~the 50 ms of CPU just used
    assert after[1] >= before[1] >= 0


def test_event_loop_lag_is_recorded_in_the_windows_open_at_the_time() -> None:
    probe = LatencyProbe(_Inner())
    probe.open(Window("a", 1_000, 2_000))
    probe.open(Window("b", 2_000, 3_000))
    probe.loop_lagged(1_500, 40_000)
    probe.loop_lagged(2_500, 7)
    probe.loop_lagged(3_500, 9)  # no window open then
    a, b = probe.window("a"), probe.window("b")
    assert a is not None
    assert b is not None
    assert (a.loop_lag.count, a.loop_lag.max) == (1, 40_000)
    assert (b.loop_lag.count, b.loop_lag.max) == (1, 7)


# A stand-in probe process speaking the line protocol: it answers `report NAME` with a window
# whose histogram holds 16,000 latencies in about as many buckets (a report line of ~170 KB).
_STAND_IN = """
import json, sys
from superticks.histogram import Histogram
print("ready", flush=True)
for line in sys.stdin:
    words = line.split()
    if words[0] == "report":
        h = Histogram()
        for i in range(16_000):  # 1 ms to 70 s, about one value per bucket
            h.record(int(1_000 * 1.0007**i))
        print("report " + json.dumps({"name": words[1], "count": h.count,
              "histogram": h.to_dict()}), flush=True)
    elif words[0] == "say":  # a line as the probe would print it, e.g. `handled 5`
        print(" ".join(words[1:]), flush=True)
    elif words[0] == "exit":
        break
"""


async def test_a_report_far_larger_than_asyncios_default_line_limit_arrives_whole() -> None:
    probe = _Probe(ConnectionSettings(), "ss", [sys.executable, "-c", _STAND_IN])
    await probe.start()
    try:
        async with asyncio.timeout(10):
            await probe.ready.wait()
        report = await probe.report("flood", timeout_s=10)
    finally:
        await probe.stop()
    histogram = Histogram.from_dict(report["histogram"])
    assert len(json.dumps(report)) > 2 * 65_536  # asyncio reads lines of up to 64 KiB
    assert histogram.count == report["count"] == 16_000


async def test_a_report_asked_of_a_probe_that_exited_fails_at_once_with_the_reason() -> None:
    probe = _Probe(ConnectionSettings(), "ss", [sys.executable, "-c", _STAND_IN])
    await probe.start()
    try:
        async with asyncio.timeout(10):
            await probe.ready.wait()
        probe._send("exit")
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="output ended"):
            await probe.report("flood", timeout_s=10)
        assert time.monotonic() - started < 5
    finally:
        await probe.stop()


async def test_waiting_for_handled_ticks_fails_once_the_probe_makes_no_progress() -> None:
    probe = _Probe(ConnectionSettings(), "ss", [sys.executable, "-c", _STAND_IN])
    await probe.start()
    try:
        async with asyncio.timeout(10):
            await probe.ready.wait()
        probe._send("say handled 5")
        await probe.wait_handled(5, stalled_s=5)  # reached: no error
        with pytest.raises(RuntimeError, match="handled 5 of 10 ticks and nothing more"):
            await probe.wait_handled(10, stalled_s=0.3)
    finally:
        await probe.stop()


async def test_a_message_handlers_chunk_is_timed_by_its_ticks_own_stamps() -> None:
    now = time.time_ns() // 1000
    inner = VwapHandler()
    probe = MessageLatencyProbe(inner)
    probe.open(Window("w", now - 10_000_000, now + 1))
    body = format_body("AAPL", "NYSE", "1.00", "1", "1.01", "1", "1.00", "1", "1", 0, 0)
    messages = [
        frame_message("AAPL", body.replace(b"1970-01-01T00:00:00.000000Z", _iso(ts)))
        for ts in (now - 3_000_000, now - 2_000_000)
    ]
    assert not await probe.handle_messages(0, 0, messages)
    window = probe.window("w")
    assert window is not None
    assert window.count == probe.handled == 2
    assert 3_000_000 <= window.histogram.max < 3_100_000
    assert inner.snapshot()["AAPL"].count == 2


def _iso(us: int) -> bytes:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
