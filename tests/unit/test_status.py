"""The Burrow-style status rules (monitoring/status.py), pinned by vectors.

Each vector is a window of samples (oldest first) as (stored offset, lag in ticks, active
consumer) and the status the rules must give with a window of 4 samples.
"""

from __future__ import annotations

import pytest

from monitoring.status import Sample, Status, group_status, partition_status

W = 4


def _window(*rows: tuple[int | None, int | None, bool | None]) -> list[Sample]:
    return [Sample(stored, lag, active) for stored, lag, active in rows]


Y, n, _ = True, False, None  # active consumer yes / no; unknown or unreadable
OK, WARN, STALL, STOP, ERR = Status

VECTORS = [
    # caught up now: OK, whatever came before (only the newest sample decides)
    ("caught up", [(10, 0, Y)] * 4, OK),
    ("caught up after a stall", [(10, 5, Y)] * 3 + [(15, 0, Y)], OK),
    ("caught up once, then stopped", [(10, 0, Y), (10, 3, n), (10, 6, n), (10, 9, n)], WARN),
    ("caught up, no consumer (idle feed, workers gone)", [(10, 0, n)] * 4, OK),
    # consuming with some lag, moving: OK
    ("moving with lag", [(10, 5, Y), (20, 6, Y), (30, 4, Y), (40, 5, Y)], OK),
    # lag never fell and rose overall: WARN
    ("falling behind", [(10, 5, Y), (20, 9, Y), (30, 9, Y), (40, 12, Y)], WARN),
    ("flat lag is not WARN", [(10, 5, Y), (20, 5, Y), (30, 5, Y), (40, 5, Y)], OK),
    ("one dip is not WARN", [(10, 5, Y), (20, 9, Y), (30, 8, Y), (40, 12, Y)], OK),
    # stored offset frozen with lag throughout
    ("stopped: no active consumer", [(10, 5, n), (10, 9, n), (10, 12, n), (10, 20, n)], STOP),
    ("stalled: a consumer holds it", [(10, 5, Y), (10, 9, Y), (10, 12, Y), (10, 20, Y)], STALL),
    ("stalled: activity unknown", [(10, 5, _), (10, 9, _), (10, 12, _), (10, 20, _)], STALL),
    ("frozen lag with no commits is not OK", [(10, 5, n)] * 4, STOP),
    ("no offset stored, nobody consumes", [(_, 7, n)] * 4, STOP),
    ("moved once in the window", [(9, 5, n), (10, 9, n), (10, 12, n), (10, 20, n)], WARN),
    # window not full yet: no trend rules
    ("too few samples to judge", [(10, 5, n), (10, 9, n)], OK),
    ("a failed poll is skipped", [(10, 5, n), (_, _, _), (10, 9, n), (10, 12, n)], OK),
    ("stopped across a failed poll", [(10, 5, n), (10, 7, n), (_, _, _), *[(10, 9, n)] * 2], STOP),
    # ERR: unreadable now, or rewound
    ("unreadable now", [(10, 0, Y)] * 3 + [(_, _, _)], ERR),
    ("rewound (offset reset)", [(50, 0, Y), (50, 0, Y), (20, 30, Y), (25, 25, Y)], ERR),
    ("no samples", [], ERR),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "expected"), [(r, e) for _, r, e in VECTORS], ids=[v[0] for v in VECTORS]
)
def test_partition_status(
    rows: list[tuple[int | None, int | None, bool | None]], expected: Status
) -> None:
    assert partition_status(_window(*rows), W) is expected


def test_only_the_last_window_counts() -> None:
    old_stall = [(10, 5, False)] * 4
    recent = [(20, 5, True), (30, 6, True), (40, 4, True), (50, 5, True)]
    assert partition_status(_window(*old_stall, *recent), W) is Status.OK


def test_window_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        partition_status(_window((1, 0, True)), 1)


@pytest.mark.parametrize(
    ("partitions", "expected"),
    [
        ([], Status.OK),
        ([Status.OK, Status.OK], Status.OK),
        ([Status.OK, Status.WARN], Status.WARN),
        ([Status.WARN, Status.STALL, Status.OK], Status.STALL),
        ([Status.STALL, Status.STOP], Status.STOP),
        ([Status.STOP, Status.ERR, Status.OK], Status.ERR),
    ],
)
def test_group_status_is_the_worst_partition(partitions: list[Status], expected: Status) -> None:
    assert group_status(partitions) is expected
