"""Garbage-collection pauses are timed per generation, and settling freezes start-up objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from stream.runtime import gc_pauses
from stream.runtime.metrics import Metrics


@pytest.fixture
def gc_state() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_every_collection_is_timed_by_generation(gc_state: None) -> None:
    metrics = Metrics()
    callback = gc_pauses.watch(metrics.gc_pauses, metrics.gc_longest, metrics.gc_pause_cpu)
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        gc_pauses.unwatch(callback)
    count = metrics.registry.get_sample_value
    assert count("fraudstream_gc_pause_seconds_count", {"generation": "0"}) >= 1
    assert count("fraudstream_gc_pause_seconds_count", {"generation": "2"}) >= 1
    cpu = count("fraudstream_gc_pause_cpu_seconds_count", {"generation": "2"})
    assert cpu == count("fraudstream_gc_pause_seconds_count", {"generation": "2"})
    longest = count("fraudstream_gc_pause_max_seconds")
    assert longest is not None and longest > 0
    gc.collect(2)  # no longer watched
    assert count("fraudstream_gc_pause_seconds_count", {"generation": "2"}) == 1


def test_settling_freezes_what_lives_and_raises_the_thresholds(gc_state: None) -> None:
    survivor = [{"state": i} for i in range(1000)]
    frozen = gc_pauses.settle()
    assert frozen == gc.get_freeze_count() > len(survivor)
    assert gc.get_threshold() == gc_pauses.THRESHOLDS
    # A full collection no longer walks the frozen objects: it finds far fewer.
    assert len(gc.get_objects(generation=2)) < frozen
