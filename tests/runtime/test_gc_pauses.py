"""Garbage-collection pauses are timed per generation, and settling freezes start-up objects."""

from __future__ import annotations

import gc
import weakref
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


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_survivors_of_an_older_collection_are_frozen_and_young_garbage_is_not(
    gc_state: None,
) -> None:
    gc.collect()
    hook = gc_pauses.freeze_survivors(min_bound=10**9)
    try:
        kept = [Node() for _ in range(100)]
        dead = Node()
        dead_ref = weakref.ref(dead)
        del dead
        before = gc.get_freeze_count()
        gc.collect(1)
        assert hook.freezes == 1
        assert dead_ref() is None  # young cyclic garbage is collected, not frozen
        assert gc.get_freeze_count() >= before + len(kept)
        # Frozen: no collection walks them any more.
        assert not any(isinstance(o, Node) for o in gc.get_objects())
        gc.collect(0)
        assert hook.freezes == 1  # young collections do not freeze
    finally:
        gc.callbacks.remove(hook)


def test_frozen_cycles_that_die_are_collected_once_the_bound_is_passed(gc_state: None) -> None:
    gc.collect()
    compactions: list[int] = []
    hook = gc_pauses.freeze_survivors(
        lambda: compactions.append(1), min_bound=500, check_every_s=0.0
    )
    try:
        assert not hook.compact_if_due()
        leaked = [Node() for _ in range(1000)]
        refs = [weakref.ref(n) for n in leaked]
        gc.collect(1)  # frozen with the survivors
        del leaked
        gc.collect()
        assert all(r() is not None for r in refs)  # frozen garbage: only a compaction frees it
        assert hook.compact_if_due() and compactions == [1]
        assert all(r() is None for r in refs)
        assert gc.get_freeze_count() > 0  # the survivors are frozen again
        assert not hook.compact_if_due()
    finally:
        gc.callbacks.remove(hook)


def test_a_requested_compaction_frees_frozen_garbage_before_the_bound(gc_state: None) -> None:
    gc.collect()
    hook = gc_pauses.freeze_survivors(min_bound=10**9, check_every_s=3600.0)
    try:
        leaked = [Node() for _ in range(100)]
        refs = [weakref.ref(n) for n in leaked]
        gc.collect(1)
        del leaked
        assert not hook.compact_if_due()  # far below the bound, and not yet time to look
        assert all(r() is not None for r in refs)
        hook.request_compaction()  # as at a rebalance
        assert hook.compact_if_due()
        assert all(r() is None for r in refs)
        assert not hook.compact_if_due()  # once per request
    finally:
        gc.callbacks.remove(hook)
