"""Specification of bench.phases: per-phase figures from the producer's confirm gaps and the
handled logs (pure)."""

from __future__ import annotations

from bench.livefeed import ConfirmGap
from bench.phases import (
    Phase,
    faults_during,
    handled_again_s,
    handled_timeline,
    handling_times,
    handover_times,
    longest_gap,
    longest_gap_s,
    phase_figures,
    producer_gap_s,
)
from workers.handled import Handled

S = 1_000_000_000  # one second in ns


def test_the_longest_gap_counts_the_edges_of_the_interval() -> None:
    assert longest_gap_s([2 * S, 3 * S], 0, 10 * S) == 7.0
    assert longest_gap_s([1 * S, 6 * S, 7 * S], 0, 8 * S) == 5.0


def test_an_interval_without_any_time_is_one_gap() -> None:
    assert longest_gap_s([], S, 4 * S) == 3.0
    assert longest_gap_s([0, 10 * S], S, 4 * S) == 3.0


def test_the_longest_gap_says_where_it_was() -> None:
    assert longest_gap([2 * S, 3 * S], 0, 10 * S) == (3 * S, 10 * S)
    assert longest_gap([1 * S, 6 * S, 7 * S], 0, 8 * S) == (1 * S, 6 * S)
    assert longest_gap([4 * S], 0, 8 * S) == (0, 4 * S)  # the first of two equal gaps
    assert longest_gap([], S, 4 * S) == (S, 4 * S)


def test_a_gap_is_put_down_to_the_faults_held_or_healing_while_it_lasted() -> None:
    faults = [
        {"kind": "pause", "target": "rabbit2", "at_s": 241.7, "healed_after_s": 14.3},
        {"kind": "pause", "target": "rabbit1", "at_s": 261.7, "healed_after_s": 13.8},
        {"kind": "worker-hang", "target": "w3", "at_s": 281.9, "healed_after_s": 12.0},
        {"kind": "worker-kill", "target": "w1", "at_s": 300.0, "healed_after_s": 12.0},
    ]
    # the first fault healed at 256.0 s, before the gap; the last began after it
    assert [f["target"] for f in faults_during(faults, 261.8, 294.0)] == ["rabbit1", "w3"]
    assert faults_during(faults, 100.0, 120.0) == []
    unhealed = {"kind": "node-kill", "target": "rabbit1", "at_s": 10.0}  # no healing time
    assert faults_during([unhealed], 50.0, 60.0) == [unhealed]
    assert faults_during([unhealed], 1.0, 9.0) == []


def test_producer_gaps_are_clipped_to_the_phase() -> None:
    gaps = [ConfirmGap(0, 1 * S, 5 * S), ConfirmGap(1, 6 * S, 7 * S)]

    assert producer_gap_s(gaps, 3 * S, 10 * S) == 2.0
    assert producer_gap_s(gaps, 8 * S, 10 * S) == 0.0


def handling(worker: str, partition: int, tick_s: float, at_s: float) -> Handled:
    return Handled(worker, partition, 0, "A", 0, int(tick_s * 1e6), int(at_s * S))


def test_handled_again_needs_a_tick_created_after_the_fault() -> None:
    handled = [
        handling("w2", 0, tick_s=9.0, at_s=10.5),  # created before the fault: not evidence
        handling("w2", 0, tick_s=10.2, at_s=10.8),
    ]

    assert handled_again_s(handled, 0, fault_ns=10 * S) == 0.8


def test_handled_again_by_the_victim_does_not_count() -> None:
    handled = [handling("w1", 0, 10.1, 10.2), handling("w2", 0, 10.5, 11.0)]

    assert handled_again_s(handled, 0, 10 * S, not_by="w1") == 1.0


def test_a_partition_never_handled_again_is_none() -> None:
    assert handled_again_s([handling("w1", 1, 11, 12)], 0, 10 * S) is None


def test_phase_figures_name_each_phase_with_its_worst_gaps() -> None:
    handled = [handling("w1", 0, t, t) for t in (0.5, 1.0, 1.5, 4.5)]
    phases = [Phase("steady", 0, 2 * S), Phase("fault", 2 * S, 5 * S)]

    figures = phase_figures(phases, [ConfirmGap(0, 1 * S, 4 * S)], handling_times(handled), 1)

    assert figures == [
        {
            "phase": "steady",
            "seconds": 2.0,
            "producer_max_gap_s": 1.0,
            "unhandled_max_s": 0.5,
            "handled": 3,
            "handovers": 0,
        },
        {
            "phase": "fault",
            "seconds": 3.0,
            "producer_max_gap_s": 2.0,
            "unhandled_max_s": 2.5,
            "handled": 1,
            "handovers": 0,
        },
    ]


def test_a_handover_is_a_partition_passing_to_another_worker() -> None:
    handled = [
        handling("w1", 0, 1, 1),
        handling("w1", 0, 2, 2),
        handling("w2", 0, 3, 3),  # w1 -> w2
        handling("w1", 1, 3, 3.5),  # another partition: its first handling is no handover
        handling("w1", 0, 4, 4),  # w2 -> w1
    ]

    assert handover_times(handled) == {0: [3 * S, 4 * S]}
    figures = phase_figures(
        [Phase("steady", 0, int(3.5 * S)), Phase("fault", int(3.5 * S), 5 * S)],
        [],
        handling_times(handled),
        2,
        handover_times(handled),
    )
    assert [f["handovers"] for f in figures] == [1, 1]


def test_the_timeline_counts_handlings_per_bin_as_a_rate() -> None:
    handled = [handling("w1", 0, tick_s=t, at_s=t + 0.1) for t in (0.0, 0.2, 0.3, 1.2)]

    timeline = handled_timeline(handled, 0, 2 * S, bin_s=0.5)

    assert timeline.rate[0] == ([0.5, 1.0, 1.5, 2.0], [6.0, 0.0, 2.0, 0.0])


def test_the_lag_grows_while_a_partition_is_not_handled_and_drops_when_it_catches_up() -> None:
    handled = [
        handling("w1", 0, tick_s=0.4, at_s=0.45),  # handled promptly
        handling("w2", 0, tick_s=1.0, at_s=2.9),  # then nothing until 2.9 s, a backlog
        handling("w2", 0, tick_s=2.95, at_s=2.99),  # caught up
    ]

    xs, lags = handled_timeline(handled, 0, 3 * S, bin_s=0.5).lag[0]

    assert xs == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert [round(v, 2) for v in lags] == [0.1, 0.6, 1.1, 1.6, 2.1, 0.05]


def test_the_timeline_has_no_lag_before_a_partition_was_first_handled() -> None:
    timeline = handled_timeline([handling("w1", 1, tick_s=1.2, at_s=1.3)], 0, 2 * S, bin_s=1.0)

    assert timeline.lag[1] == ([2.0], [0.8])
    assert 0 not in timeline.rate


def test_a_busy_workers_pause_is_its_longest_gap_on_the_partitions_it_was_active_on() -> None:
    from bench.failover import busy_gaps

    busy = [handling("w1", 0, tick_s=0, at_s=t) for t in (10.0, 10.1, 22.2, 24.9)]
    steady = [handling("w1", 1, tick_s=0, at_s=10.0 + t) for t in range(15)]  # every second
    other = [handling("w2", 2, tick_s=0, at_s=10.0)]  # another worker's partition: not counted

    gaps = busy_gaps(busy + steady + other, {"w1": [0, 1]}, 10 * S, 25 * S)

    assert gaps == {"w1": 12.1}
