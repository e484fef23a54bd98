"""Specification of bench.verdict.judge_run: one verdict over both sides of a run.

A clean run: the producer sent and had confirmed two ticks of each of A and B, the one-partition
stream holds them once each in order, and worker w1 handled each once in order. Each test breaks
exactly one thing, so every condition of `RunVerdict.ok` is pinned by a test of its own.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from bench.verdict import CrashWindow, RunVerdict, StoredTick, judge_run
from partitioning.router import partition_for
from workers.handled import Handled

STORED: list[StoredTick] = [(0, "A", 0), (1, "B", 0), (2, "A", 1), (3, "B", 1)]


def handled(worker: str, offset: int, at: int, partition: int = 0) -> Handled:
    _, symbol, seq = STORED[offset]
    return Handled(worker, partition, offset, symbol, seq, tick_us=0, at_ns=at)


CLEAN = [handled("w1", o, at=10 + o) for o in range(4)]


def judge(**changes: Any) -> RunVerdict:
    run: dict[str, Any] = {
        "partitions": 1,
        "stored": {0: STORED},
        "handled": CLEAN,
        "sent_per_symbol": {"A": 2, "B": 2},
        "confirmed": 4,
    }
    run.update(changes)
    return judge_run(**run)


def test_a_clean_run_is_ok() -> None:
    result = judge()

    assert result.ok, result.failures()
    assert (result.sent, result.handled, result.unhandled) == (4, 4, 0)
    assert result.failures() == []


def test_an_empty_run_is_not_ok() -> None:
    result = judge(stored={0: []}, handled=[], sent_per_symbol={}, confirmed=0)

    assert not result.ok


def test_a_send_never_confirmed_is_unknown_and_fails() -> None:
    result = judge(confirmed=3)

    assert result.unknown == 1
    assert not result.ok


def test_a_tick_missing_from_the_stream_fails_as_lost() -> None:
    stored = [t for t in STORED if t[0] != 2]
    result = judge(stored={0: stored}, handled=[h for h in CLEAN if h.offset != 2])

    assert result.stream.lost == 1
    assert (result.unhandled, result.handler_unexpected) == (0, 0)
    assert not result.ok


def test_a_tick_in_another_partition_than_the_java_rule_gives_is_misrouted() -> None:
    wrong = 1 - partition_for("A", 2)
    stored = {wrong: [(0, "A", 0)], 1 - wrong: []}
    result = judge(
        partitions=2,
        stored=stored,
        handled=[Handled("w1", wrong, 0, "A", 0, 0, 1)],
        sent_per_symbol={"A": 1},
        confirmed=1,
    )

    assert result.misrouted == 1
    assert result.stream.ok
    assert not result.ok


def test_a_stored_message_that_is_not_a_tick_fails() -> None:
    assert not judge(undecodable=1).ok


def test_a_stored_tick_no_handler_handled_fails() -> None:
    result = judge(handled=[h for h in CLEAN if h.offset != 1])

    assert result.unhandled == 1
    assert not result.ok


def test_a_tick_handled_again_outside_any_crash_window_fails() -> None:
    result = judge(handled=[*CLEAN, handled("w2", 1, at=50)])

    assert (result.handled_twice_other, result.handled_twice_crash) == (1, 0)
    assert not result.ok


def test_a_tick_handled_again_after_a_killed_workers_stored_offset_is_allowed() -> None:
    killed = CrashWindow("w1", at_ns=20, stored={0: 0})

    result = judge(handled=[*CLEAN, handled("w2", 1, at=50)], crash_windows=[killed])

    assert (result.handled_twice_crash, result.handled_twice_other) == (1, 0)
    assert result.ok, result.failures()


def test_a_repeat_at_or_below_the_stored_offset_is_outside_the_crash_window() -> None:
    killed = CrashWindow("w1", at_ns=20, stored={0: 1})

    result = judge(handled=[*CLEAN, handled("w2", 1, at=50)], crash_windows=[killed])

    assert result.handled_twice_other == 1


def test_a_repeat_of_what_the_victim_handled_after_the_fault_is_outside_the_window() -> None:
    killed = CrashWindow("w1", at_ns=11, stored={0: -1})  # w1 handled offset 1 at 11, 2 at 12

    result = judge(handled=[*CLEAN, handled("w2", 2, at=50)], crash_windows=[killed])

    assert result.handled_twice_other == 1


def test_a_repeat_of_what_another_worker_first_handled_is_outside_the_window() -> None:
    killed = CrashWindow("w9", at_ns=99)

    result = judge(handled=[*CLEAN, handled("w2", 1, at=50)], crash_windows=[killed])

    assert result.handled_twice_other == 1


def test_handling_a_symbols_later_tick_first_is_a_handler_reorder() -> None:
    swapped = [handled("w1", 0, at=12), handled("w1", 1, at=11), handled("w1", 2, at=10)]
    swapped.append(handled("w1", 3, at=13))

    result = judge(handled=swapped)

    assert result.handler_reordered == 1
    assert (result.unhandled, result.handled_twice_other) == (0, 0)
    assert not result.ok


def test_order_is_judged_by_handling_time_across_workers() -> None:
    across = [handled("w2", 2, at=30), handled("w2", 3, at=31), *CLEAN[:2]]

    assert judge(handled=across).ok


def test_handling_an_offset_the_stream_does_not_hold_is_unexpected() -> None:
    result = judge(handled=[*CLEAN, Handled("w1", 0, 99, "A", 0, 0, 50)])

    assert result.handler_unexpected == 1
    assert not result.ok


def test_handling_another_tick_than_the_stream_holds_at_that_offset_is_unexpected() -> None:
    result = judge(handled=[*CLEAN, replace(CLEAN[0], sequence=5, at_ns=60)])

    assert result.handler_unexpected == 1
    assert result.handled_twice_other == 0


def test_a_fault_that_did_not_take_effect_fails() -> None:
    result = judge(coverage={"node_led_a_partition": True, "leader_moved": False})

    assert not result.ok
    assert result.failures() == ["coverage: leader_moved is false"]


def test_faults_that_all_took_effect_pass() -> None:
    assert judge(coverage={"node_led_a_partition": True, "leader_moved": True}).ok


def test_a_worker_that_did_not_exit_0_when_stopped_fails() -> None:
    result = replace(judge(), worker_exits={"w1": 0, "w2": 1, "w3": None})

    assert not result.ok
    assert result.failures() == [
        "worker w2 exited with status 1 when stopped (0 expected: see its log)",
        "worker w3 exited with status None when stopped (0 expected: see its log)",
    ]
    assert result.to_dict()["worker_exits"] == {"w1": 0, "w2": 1, "w3": None}


def test_workers_that_all_exited_0_pass() -> None:
    assert replace(judge(), worker_exits={"w1": 0, "w2": 0}).ok


def test_the_dict_is_strict_json_with_ok_and_the_failures() -> None:
    data = judge(confirmed=3).to_dict()

    assert json.loads(json.dumps(data, allow_nan=False))["ok"] is False
    assert data["unknown"] == 1
    assert data["failures"] == ["1 sends unknown (never confirmed)"]


def test_the_summary_is_one_line() -> None:
    summary = judge(coverage={"x": False}).summary()

    assert summary.startswith("FAIL sent=4")
    assert "x=False" in summary
    assert "\n" not in summary
