"""A worker process's garbage collector: start-up objects frozen, young collections rare."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from workers.gc_tuning import YOUNG_THRESHOLD, tune_for_throughput


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_tuning_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    older = gc.get_threshold()[1:]
    tune_for_throughput()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, *older)
