"""Phases of a fault run and the figures measured in each (pure: no I/O).

A run goes through named phases (steady, fault, impact, heal, recovery; a rolling restart
repeats fault..recovery per node), each a wall-clock interval in ns. Its figures come from two
records made while it ran, never from polling:

* the producer's confirm gaps (`bench.livefeed.ConfirmGap`): a partition waiting for a confirm;
* the handlers' handled logs (`workers.handled.Handled`): when each tick was handled, by whom.

``unhandled`` for a partition is the longest interval without any handling there (the
consumer side's unavailability, which includes the producer's); ``handled again`` after a fault
is the time until a tick created after the fault was handled on the partition (by a worker
other than the victim, for a worker fault).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.livefeed import ConfirmGap
from workers.handled import Handled

__all__ = [
    "Phase",
    "handled_again_s",
    "handling_times",
    "handover_times",
    "longest_gap_s",
    "phase_figures",
    "producer_gap_s",
]


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0))


def longest_gap_s(times_ns: Sequence[int], start_ns: int, end_ns: int) -> float:
    """The longest part of [start_ns, end_ns) with no time of `times_ns` (sorted) in it; the
    whole interval when none falls in it."""
    longest = 0
    previous = start_ns
    for t in times_ns:
        if t <= start_ns:
            continue
        if t >= end_ns:
            break
        longest = max(longest, t - previous)
        previous = t
    longest = max(longest, end_ns - previous)
    return longest / 1e9


def producer_gap_s(gaps: Iterable[ConfirmGap], start_ns: int, end_ns: int) -> float:
    """The longest confirm gap of any partition, clipped to [start_ns, end_ns)."""
    return max((_overlap(g.start_ns, g.end_ns, start_ns, end_ns) for g in gaps), default=0) / 1e9


def handling_times(handled: Iterable[Handled]) -> dict[int, list[int]]:
    """Partition -> the sorted times of its handlings."""
    out: dict[int, list[int]] = {}
    for h in handled:
        out.setdefault(h.partition, []).append(h.at_ns)
    for times in out.values():
        times.sort()
    return out


def handled_again_s(
    handled: Iterable[Handled], partition: int, fault_ns: int, not_by: str | None = None
) -> float | None:
    """Seconds from `fault_ns` until a tick created after it was handled on `partition` (by a
    worker other than `not_by`); None: never."""
    first = min(
        (
            h.at_ns
            for h in handled
            if h.partition == partition and h.tick_us * 1000 > fault_ns and h.worker != not_by
        ),
        default=None,
    )
    return None if first is None else max(0, first - fault_ns) / 1e9


def handover_times(handled: Iterable[Handled]) -> dict[int, list[int]]:
    """Partition -> the times its handling passed to another worker (in handling order)."""
    last: dict[int, str] = {}
    out: dict[int, list[int]] = {}
    for h in sorted(handled, key=lambda h: h.at_ns):
        previous = last.get(h.partition)
        if previous is not None and previous != h.worker:
            out.setdefault(h.partition, []).append(h.at_ns)
        last[h.partition] = h.worker
    return out


def _count(times: Sequence[int], start_ns: int, end_ns: int) -> int:
    return bisect_left(times, end_ns) - bisect_left(times, start_ns)


def phase_figures(
    phases: Sequence[Phase],
    gaps: Sequence[ConfirmGap],
    times: Mapping[int, Sequence[int]],
    partitions: int,
    handovers: Mapping[int, Sequence[int]] | None = None,
) -> list[dict[str, Any]]:
    """Per phase: its length, the producer's longest confirm gap, the longest time any
    partition went unhandled, the handlings in it, and how often a partition passed to another
    worker (0 in a steady phase: no false failover)."""
    moves = handovers or {}
    out = []
    for phase in phases:
        start, end = phase.start_ns, phase.end_ns
        unhandled = max(
            (longest_gap_s(times.get(p, ()), start, end) for p in range(partitions)),
            default=0.0,
        )
        out.append(
            {
                "phase": phase.name,
                "seconds": round(phase.seconds, 3),
                "producer_max_gap_s": round(producer_gap_s(gaps, start, end), 3),
                "unhandled_max_s": round(unhandled, 3),
                "handled": sum(_count(times.get(p, ()), start, end) for p in range(partitions)),
                "handovers": sum(_count(moves.get(p, ()), start, end) for p in range(partitions)),
            }
        )
    return out
