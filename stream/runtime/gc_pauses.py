"""Garbage-collection pauses: measured on every collection, and kept short.

CPython's cyclic collector stops the event loop while it runs. A full collection walks
every tracked container the process holds: Faust's and aiokafka's objects, the imported
modules, the model's session, the decoded-state caches. Those made full collections of
100-190 ms under load, each delaying every alert in flight.

``settle`` runs before Faust starts, with the model loaded: it collects, then freezes
everything that survived into the permanent generation (``gc.freeze``), which no later
collection walks; ``freeze_started`` freezes again at the first micro-batch, when Faust's
own start-up objects exist. Cycles made after start-up are still collected.

What remains is what the worker allocates while it runs, and a young collection's pause
grows with the young generation's size: with a threshold of 50,000 one young collection
walked about 46,000 objects (25-50 ms on a shared core). Most were the containers of
decoded states kept between micro-batches (a list per stored event). Stored events are now
tuples of atoms, which the collector stops tracking at their first collection, so the
survivors that reach the older generations are about three objects per cached user; and
the young threshold is small, so that each young collection walks at most a few thousand.

Full collections still came every few seconds under load, 25-50 ms of CPU each, and found
nothing to collect: what they walked was that run-time population of survivors (cached
states, in-flight messages), over and over. ``RollingFreeze`` freezes the survivors as
well: at the end of every collection of the middle or oldest generation, when the young
generations are empty, it freezes what survived, so every later collection walks only
objects younger than two young collections. Cycles among objects that die young are
still collected; objects that die by reference counting (nearly all) are freed from the
permanent generation as from any other. What it cannot collect is a cycle among frozen
objects that becomes garbage later; so that such cycles cannot accumulate, when the
frozen count passes a bound (twice what it was after the last such check, and at least
``MIN_FROZEN_BOUND`` more than at start-up) it unfreezes the run-time objects, collects
them in one full collection, and freezes the survivors again: one pause of the old kind
in a long while instead of one every few seconds, and counted
(``fraudstream_gc_compactions_total``).

``watch`` times every collection into ``fraudstream_gc_pause_seconds{generation}`` and its
CPU time into ``fraudstream_gc_pause_cpu_seconds{generation}``.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Gauge, Histogram

# A young collection every 2,000 net allocations (CPython's default is 700): a pause
# proportional to that, about 1 ms of CPU here. Short-lived containers die by reference
# counting before they count; what counts are survivors, mostly newly cached states.
THRESHOLDS = (2_000, 10, 10)


class PauseWatch:
    """Times each collection (``gc.callbacks``) into a histogram and a running maximum, and,
    given ``cpu``, its thread's CPU time: on a shared core the wall-clock pause also holds
    the time other processes ran meanwhile, which no change to the collector removes."""

    def __init__(self, pauses: Histogram, longest: Gauge, cpu: Histogram | None = None) -> None:
        self._pauses, self._longest, self._cpu = pauses, longest, cpu
        self._started = self._started_cpu = 0.0
        self._max = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._started_cpu = time.thread_time()
            return
        pause = time.perf_counter() - self._started
        generation = str(info["generation"])
        self._pauses.labels(generation).observe(pause)
        if self._cpu is not None:
            self._cpu.labels(generation).observe(time.thread_time() - self._started_cpu)
        if pause > self._max:
            self._max = pause
            self._longest.set(pause)


def watch(pauses: Histogram, longest: Gauge, cpu: Histogram | None = None) -> PauseWatch:
    """Start timing every collection; returns the callback (``unwatch`` removes it)."""
    callback = PauseWatch(pauses, longest, cpu)
    gc.callbacks.append(callback)
    return callback


def unwatch(callback: PauseWatch) -> None:
    if callback in gc.callbacks:
        gc.callbacks.remove(callback)


MIN_FROZEN_BOUND = 200_000  # run-time objects frozen before a compaction is considered
# gc.get_freeze_count() walks the whole permanent generation (0.9 ms for 130,000
# objects): checked per micro-batch it slowed the worker measurably.
CHECK_EVERY_S = 10.0


class RollingFreeze:
    """A ``gc.callbacks`` hook: freeze the survivors of every collection of generation 1 or
    2 (see the module's text); ``compact_if_due`` is called between micro-batches."""

    def __init__(
        self,
        on_compaction: Any = None,
        min_bound: int = MIN_FROZEN_BOUND,
        check_every_s: float = CHECK_EVERY_S,
    ) -> None:
        self.freezes = self.compactions = 0
        self._check_every_s = check_every_s
        self._next_check = time.monotonic() + check_every_s
        self._min_bound = min_bound
        self._base = gc.get_freeze_count()  # start-up objects, frozen by ``settle``
        self._bound = self._base + min_bound
        self._on_compaction = on_compaction
        self._requested = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        # At "stop" the collection is over and generations 0 and 1 are empty: what is
        # left in the oldest generation survived at least two collections.
        if phase == "stop" and info["generation"] >= 1:
            gc.freeze()
            self.freezes += 1

    def request_compaction(self) -> None:
        """Compact at the next ``compact_if_due`` whatever the count: called at a
        rebalance, when the consumer and the streams abandon what they held for the
        revoked partitions (fetch tasks, generators, buffers: some in reference cycles),
        so that nothing of theirs waits frozen, unfinalised, for the next bound."""
        self._requested = True

    def compact_if_due(self) -> bool:
        """One full collection of the run-time objects when the frozen count passed its
        bound (looked at every ``check_every_s``) or one was requested; True when it ran."""
        now = time.monotonic()
        if not self._requested:
            if now < self._next_check:
                return False
            self._next_check = now + self._check_every_s
            if gc.get_freeze_count() <= self._bound:
                return False
        self._requested = False
        # Start-up objects go back in too (gc.unfreeze has no finer grain), and are
        # walked once by this collection.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.compactions += 1
        frozen = gc.get_freeze_count()
        self._bound = max(2 * frozen - self._base, frozen + self._min_bound)
        if self._on_compaction is not None:
            self._on_compaction()
        return True


def freeze_survivors(
    on_compaction: Any = None,
    min_bound: int = MIN_FROZEN_BOUND,
    check_every_s: float = CHECK_EVERY_S,
) -> RollingFreeze:
    """Start freezing the survivors of every older-generation collection."""
    for old in [c for c in gc.callbacks if isinstance(c, RollingFreeze)]:
        gc.callbacks.remove(old)  # an agent started again: one hook at a time
    hook = RollingFreeze(on_compaction, min_bound, check_every_s)
    gc.callbacks.append(hook)
    return hook


def freeze_started() -> None:
    """Freeze what Faust made while starting (consumer, tables, recovery): called at the
    first micro-batch. ``gc.freeze`` only moves lists, so it costs no pause; any garbage
    among those objects stays, once."""
    gc.freeze()


def settle(thresholds: tuple[int, int, int] = THRESHOLDS) -> int:
    """Collect, freeze what survived (start-up objects) and raise the thresholds; returns
    how many objects are now frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    return gc.get_freeze_count()
