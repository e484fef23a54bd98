"""Specification of workers.handled: the verifying handler's durable record of what it handled."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from partitioning.codec import Tick
from workers.handled import Handled, VerifyingHandler, read_handled, read_handled_file


def tick(symbol: str, seq: int, ts: int = 1_000) -> Tick:
    return Tick(symbol, "NYSE", "1.00", "1", "1.01", "1", "1.00", "1", "1", ts, seq, 1)


async def test_each_handled_tick_is_one_record_with_its_partition_offset_and_sequence(
    tmp_path: Path,
) -> None:
    handler = VerifyingHandler(tmp_path, "w1")
    await handler.handle_batch(2, [10, 11], [tick("AAPL", 0, 5), tick("MSFT", 7, 6)])
    await handler.close()

    records = read_handled(tmp_path)

    assert [
        (r.worker, r.partition, r.offset, r.symbol, r.sequence, r.tick_us) for r in records
    ] == [
        ("w1", 2, 10, "AAPL", 0, 5),
        ("w1", 2, 11, "MSFT", 7, 6),
    ]
    assert records[0].at_ns == records[1].at_ns > 0


async def test_the_record_is_in_the_file_when_the_call_returns(tmp_path: Path) -> None:
    handler = VerifyingHandler(tmp_path, "w1")
    await handler.handle_batch(0, [3], [tick("AAPL", 0)])

    # read while the handler is still open: nothing is buffered in the process
    assert [r.offset for r in read_handled(tmp_path)] == [3]
    await handler.close()
    await handler.close()


async def test_a_torn_last_line_of_a_killed_worker_is_skipped(tmp_path: Path) -> None:
    handler = VerifyingHandler(tmp_path, "w1")
    await handler.handle_batch(0, [0], [tick("AAPL", 0)])
    await handler.close()
    with (tmp_path / "w1.handled").open("a") as f:
        f.write("0 1 AAPL 1 10")

    assert [r.offset for r in read_handled_file(tmp_path / "w1.handled")] == [0]


async def test_a_dropping_handler_leaves_out_one_offset(tmp_path: Path) -> None:
    handler = VerifyingHandler(tmp_path, "w1", drop_offset=1)
    await handler.handle_batch(0, [0, 1, 2], [tick("A", 0), tick("A", 1), tick("A", 2)])
    await handler.close()

    assert [r.offset for r in read_handled(tmp_path)] == [0, 2]


def test_every_worker_log_of_a_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "a.handled").write_text("0 0 X 0 1 2\n")
    (tmp_path / "b.handled").write_text("1 0 Y 0 1 3\n")
    (tmp_path / "notes.txt").write_text("not a log\n")

    assert read_handled(tmp_path) == [
        Handled("a", 0, 0, "X", 0, 1, 2),
        Handled("b", 1, 0, "Y", 0, 1, 3),
    ]


async def test_a_busy_handler_takes_its_time_and_still_records(tmp_path: Path) -> None:
    handler = VerifyingHandler(tmp_path, "w1", busy_s=0.05)
    started = time.monotonic()

    await handler.handle_batch(0, [0], [tick("A", 0)])

    assert time.monotonic() - started >= 0.05
    assert [r.offset for r in read_handled(tmp_path)] == [0]
    await handler.close()


async def test_a_handler_busy_once_is_busy_on_the_next_call_after_each_arm_only(
    tmp_path: Path,
) -> None:
    handler = VerifyingHandler(tmp_path, "w1", busy_s=0.01, busy_once=True)

    await handler.handle_batch(0, [0], [tick("A", 0)])
    assert handler.busy_calls == 0
    handler.arm()
    await handler.handle_batch(0, [1], [tick("A", 1)])
    await handler.handle_batch(0, [2], [tick("A", 2)])

    assert handler.busy_calls == 1
    assert [r.offset for r in read_handled(tmp_path)] == [0, 1, 2]
    await handler.close()


async def test_a_blocking_busy_handler_holds_the_event_loop(tmp_path: Path) -> None:
    handler = VerifyingHandler(tmp_path, "w1", busy_s=0.05, busy_blocking=True)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await handler.handle_batch(0, [0], [tick("A", 0)])
    during = ticks - before  # the loop ran nothing else while the handler was busy
    task.cancel()

    assert during <= 1
    assert handler.busy_calls == 1
    await handler.close()
