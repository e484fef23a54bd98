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

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.livefeed import ConfirmGap
from workers.handled import Handled

__all__ = [
    "Phase",
    "Timeline",
    "faults_during",
    "handled_again_s",
    "handled_timeline",
    "handling_times",
    "handover_times",
    "longest_gap",
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


def longest_gap(times_ns: Sequence[int], start_ns: int, end_ns: int) -> tuple[int, int]:
    """The longest part ``(from_ns, to_ns)`` of [start_ns, end_ns) with no time of `times_ns`
    (sorted) in it (the first of equal ones); the whole interval when none falls in it."""
    best = (start_ns, start_ns)
    previous = start_ns
    for t in times_ns:
        if t <= start_ns:
            continue
        if t >= end_ns:
            break
        if t - previous > best[1] - best[0]:
            best = (previous, t)
        previous = t
    if end_ns - previous > best[1] - best[0]:
        best = (previous, end_ns)
    return best


def longest_gap_s(times_ns: Sequence[int], start_ns: int, end_ns: int) -> float:
    """The length of `longest_gap`, in seconds."""
    gap_from, gap_to = longest_gap(times_ns, start_ns, end_ns)
    return (gap_to - gap_from) / 1e9


def faults_during(
    faults: Iterable[Mapping[str, Any]], from_s: float, to_s: float
) -> list[Mapping[str, Any]]:
    """The faults (entries with ``at_s`` and, once healed, ``healed_after_s``: seconds from the
    run's start) whose time from injection to healing overlaps [from_s, to_s], in order: what a
    gap in the handling may be put down to. A fault without a healing time counts as lasting."""
    return [
        f
        for f in faults
        if f["at_s"] <= to_s and f["at_s"] + f.get("healed_after_s", math.inf) >= from_s
    ]


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


@dataclass(frozen=True, slots=True)
class Timeline:
    """Per partition, over a run cut into bins of `bin_s` seconds (x: a bin's end, in seconds
    from the run's start): the handled rate in the bin (ticks/s) and the lag at the bin's end
    (seconds from the creation of the newest tick handled so far to the bin's end: it grows by
    one second a second while a partition is not handled, and drops when handling catches
    up). Bins before a partition's first handling have no lag point."""

    bin_s: float
    rate: dict[int, tuple[list[float], list[float]]]
    lag: dict[int, tuple[list[float], list[float]]]


def handled_timeline(
    handled: Iterable[Handled], start_ns: int, end_ns: int, bin_s: float = 0.5
) -> Timeline:
    """The `Timeline` of the handlings in [start_ns, end_ns) (see `Timeline`)."""
    if bin_s <= 0 or end_ns <= start_ns:
        raise ValueError("handled_timeline needs bin_s > 0 and end_ns > start_ns")
    step = int(bin_s * 1e9)
    bins = -(-(end_ns - start_ns) // step)
    counts: dict[int, list[int]] = {}
    newest: dict[int, list[int]] = {}  # per bin: newest tick creation handled in it (ns)
    for h in handled:
        if not start_ns <= h.at_ns < end_ns:
            continue
        i = (h.at_ns - start_ns) // step
        counts.setdefault(h.partition, [0] * bins)[i] += 1
        latest = newest.setdefault(h.partition, [-1] * bins)
        latest[i] = max(latest[i], h.tick_us * 1000)
    rate: dict[int, tuple[list[float], list[float]]] = {}
    lag: dict[int, tuple[list[float], list[float]]] = {}
    for p in sorted(counts):
        xs = [round((i + 1) * bin_s, 6) for i in range(bins)]
        rate[p] = (xs, [c / bin_s for c in counts[p]])
        lag_x: list[float] = []
        lag_y: list[float] = []
        seen = -1
        for i, created in enumerate(newest[p]):
            seen = max(seen, created)
            if seen >= 0:
                bin_end = start_ns + (i + 1) * step
                lag_x.append(xs[i])
                lag_y.append(max(0.0, (bin_end - seen) / 1e9))
        lag[p] = (lag_x, lag_y)
    return Timeline(bin_s, rate, lag)
