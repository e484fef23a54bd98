"""The Burrow-style status of a consumer group, per partition and for the group: pure rules.

The exporter samples every partition of every group once per interval (`Sample`: the stored
offset, the lag in ticks, whether the broker has an active consumer) and keeps the last
`window` samples. `partition_status` judges one partition's window, `group_status` the group.

Partition rules, first match wins (the newest sample is the last one):

====== ======================================================================================
status when
====== ======================================================================================
ERR    the newest sample could not be read (``lag is None``), or the stored offset went
       *backwards* inside the window (an offset reset or a recreated stream: reprocessing)
OK     the newest lag is 0 (caught up). Only the newest sample counts: a consumer that
       caught up once and then stopped is not OK (Burrow's "stopped consumer shown OK")
STOP   a full window, lag > 0 in every sample, the stored offset never moved, and the broker
       has no active consumer now: nobody consumes the partition (workers dead or never
       started)
STALL  the same, but an active consumer holds the partition (or the management API could not
       tell): it is attached but commits nothing (a hung worker; the broker drops a SIGSTOPped
       one after ~3 missed heartbeats, and the partition then turns STOP or moves)
WARN   a full window in which the lag never fell and rose overall (the group falls behind)
OK     otherwise
====== ======================================================================================

A "full window" is the last `window` readable samples (the exporter's `--window`, default 6 at
5 s: 25 s of history; a poll that could not read the partition is skipped, so one failed poll
does not restart the count); until a partition has that many, it is OK or ERR only. Lag
*frozen* while the stored offset does not move is STALL/STOP, never OK, because the newest lag
is > 0.

The group's status is its worst partition's, in the order OK < WARN < STALL < STOP < ERR.
A group is ERR when any partition is ERR (its data could not be read, or it rewound): an
operator must look, since nothing else can be said about it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["STATUSES", "Sample", "Status", "group_status", "partition_status"]


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    STALL = "STALL"
    STOP = "STOP"
    ERR = "ERR"


STATUSES: tuple[Status, ...] = tuple(Status)
"""Every status, from best to worst (the order `group_status` ranks them by)."""

_RANK = {s: i for i, s in enumerate(STATUSES)}


@dataclass(frozen=True, slots=True)
class Sample:
    """One observation of a group's partition.

    `stored`: the group's stored offset (None: none stored yet); `lag`: ticks behind (None: the
    sample could not be read); `active`: whether the broker has an active consumer of the group
    on the partition (None: unknown, the management API did not answer).
    """

    stored: int | None
    lag: int | None
    active: bool | None


def partition_status(samples: Sequence[Sample], window: int) -> Status:
    """The status of one partition from its samples, oldest first (the last `window` readable
    ones are judged)."""
    if window < 2:
        raise ValueError(f"window must be >= 2 samples, not {window}")
    if not samples or samples[-1].lag is None:
        return Status.ERR
    recent = [s for s in samples if s.lag is not None][-window:]  # a failed poll is skipped
    stored = [s.stored for s in recent if s.stored is not None]
    if any(b < a for a, b in itertools.pairwise(stored)):
        return Status.ERR
    newest = recent[-1]
    if newest.lag == 0:
        return Status.OK
    if len(recent) < window:
        return Status.OK
    lags = [s.lag for s in recent if s.lag is not None]
    if all(lag > 0 for lag in lags) and len({s.stored for s in recent}) == 1:
        return Status.STOP if newest.active is False else Status.STALL
    if all(b >= a for a, b in itertools.pairwise(lags)) and lags[-1] > lags[0]:
        return Status.WARN
    return Status.OK


def group_status(partitions: Iterable[Status]) -> Status:
    """The group's status: its worst partition's (OK < WARN < STALL < STOP < ERR); OK if none."""
    return max(partitions, key=_RANK.__getitem__, default=Status.OK)
