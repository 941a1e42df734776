"""Garbage-collection pauses: measured on every collection, and kept short.

CPython's cyclic collector stops the event loop while it runs. A full collection walks
every tracked container the process holds: Faust's and aiokafka's objects, the imported
modules, the model's session, the decoded-state caches. Those made full collections of
100-190 ms under load, each delaying every alert in flight.

``settle`` runs before Faust starts, with the model loaded: it collects, then freezes
everything that survived into the permanent generation (``gc.freeze``), which no later
collection walks, and raises the young-generation threshold so that the many short-lived
dicts of a micro-batch are collected less often; ``freeze_started`` freezes again at the
first micro-batch, when Faust's own start-up objects exist. Cycles made after start-up
are still collected.
``watch`` times every collection into ``fraudstream_gc_pause_seconds{generation}``.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Gauge, Histogram

# A young collection every 50,000 net allocations (CPython's default is 700): a
# micro-batch of 500 events allocates tens of thousands of short-lived containers.
THRESHOLDS = (50_000, 20, 100)


class PauseWatch:
    """Times each collection (``gc.callbacks``) into a histogram and a running maximum."""

    def __init__(self, pauses: Histogram, longest: Gauge) -> None:
        self._pauses, self._longest = pauses, longest
        self._started = 0.0
        self._max = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self._pauses.labels(str(info["generation"])).observe(pause)
        if pause > self._max:
            self._max = pause
            self._longest.set(pause)


def watch(pauses: Histogram, longest: Gauge) -> PauseWatch:
    """Start timing every collection; returns the callback (``unwatch`` removes it)."""
    callback = PauseWatch(pauses, longest)
    gc.callbacks.append(callback)
    return callback


def unwatch(callback: PauseWatch) -> None:
    if callback in gc.callbacks:
        gc.callbacks.remove(callback)


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
