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


VECTORS = [
    # caught up now: OK, whatever came before (only the newest sample decides)
    ("caught up", [(10, 0, True)] * 4, Status.OK),
    ("caught up after a stall", [(10, 5, True)] * 3 + [(15, 0, True)], Status.OK),
    ("caught up once, then stopped: not OK", [(10, 0, True), (10, 3, False), (10, 6, False), (10, 9, False)], Status.WARN),
    ("caught up, no consumer (idle feed, workers gone)", [(10, 0, False)] * 4, Status.OK),
    # consuming with some lag, moving: OK
    ("moving with lag", [(10, 5, True), (20, 6, True), (30, 4, True), (40, 5, True)], Status.OK),
    # lag never fell and rose overall: WARN
    ("falling behind", [(10, 5, True), (20, 9, True), (30, 9, True), (40, 12, True)], Status.WARN),
    ("flat lag is not WARN", [(10, 5, True), (20, 5, True), (30, 5, True), (40, 5, True)], Status.OK),
    ("one dip is not WARN", [(10, 5, True), (20, 9, True), (30, 8, True), (40, 12, True)], Status.OK),
    # stored offset frozen with lag throughout
    ("stopped: no active consumer", [(10, 5, False), (10, 9, False), (10, 12, False), (10, 20, False)], Status.STOP),
    ("stalled: a consumer holds it", [(10, 5, True), (10, 9, True), (10, 12, True), (10, 20, True)], Status.STALL),
    ("stalled: activity unknown", [(10, 5, None), (10, 9, None), (10, 12, None), (10, 20, None)], Status.STALL),
    ("frozen lag with no commits is not OK", [(10, 5, False)] * 4, Status.STOP),
    ("no offset stored, nobody consumes", [(None, 7, False)] * 4, Status.STOP),
    ("moved once in the window: not frozen", [(9, 5, False), (10, 9, False), (10, 12, False), (10, 20, False)], Status.WARN),
    # window not full yet: no trend rules
    ("too few samples to judge", [(10, 5, False), (10, 9, False)], Status.OK),
    ("an unreadable sample breaks the window", [(10, 5, False), (None, None, None), (10, 9, False), (10, 12, False)], Status.OK),
    # ERR: unreadable now, or rewound
    ("unreadable now", [(10, 0, True)] * 3 + [(None, None, None)], Status.ERR),
    ("rewound (offset reset)", [(50, 0, True), (50, 0, True), (20, 30, True), (25, 25, True)], Status.ERR),
    ("no samples", [], Status.ERR),
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
