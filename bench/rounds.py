"""Contenders measured in rounds: the order each round runs them in, and what the rounds say.

On a shared two-core machine one run of a contender moves by +-30% from the next (other
processes, the broker's own housekeeping, which contender warmed the nodes up), so a ratio of
two single runs says little. A bench therefore runs every contender once per round, rotating
the order each round (round r starts at contender r: none always goes first, after an idle
cluster, or last), and reports:

* each contender's median rate over the rounds, with every round's rate beside it;
* each ratio as the median of the per-round ratios (`paired_ratio`): the two contenders of a
  round ran minutes apart at most, under the same load, so the pair cancels what drifts
  between rounds.

Pure functions, pinned in tests/unit/test_rounds.py.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TypeVar

__all__ = ["paired_ratio", "rotated"]

T = TypeVar("T")


def rotated(contenders: Sequence[T], round_index: int) -> list[T]:
    """The contenders in the order of round `round_index` (0-based): the list rotated to start
    at contender ``round_index % len(contenders)``."""
    if not contenders:
        return []
    k = round_index % len(contenders)
    return [*contenders[k:], *contenders[:k]]


def paired_ratio(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """The median over rounds of ``ours[i] / theirs[i]`` (rates of the same round), rounded to
    2 places; raises ValueError when the rounds differ in number, there are none, or a rate
    is not positive (a contender that did nothing has no ratio)."""
    if len(ours) != len(theirs):
        raise ValueError(f"{len(ours)} rounds against {len(theirs)}: pair rounds one to one")
    if not ours:
        raise ValueError("no rounds to compare")
    if min(*ours, *theirs) <= 0:
        raise ValueError(f"a rate is not positive: {list(ours)} / {list(theirs)}")
    return round(statistics.median(a / b for a, b in zip(ours, theirs, strict=True)), 2)
