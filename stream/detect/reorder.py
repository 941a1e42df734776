"""Seller records put back into event-time order before the seller side decides them.

Purchases reach a seller partition in arrival order, which interleaves many input
partitions; the backtest sees them in event time. Each input partition reports how far its
event time has got (a watermark); once every input partition has passed a record's time,
nothing earlier can still come from an input partition in order, and records are released
in (event time, event id) order. A record never waits longer than ``wait_ms`` of wall time:
an input partition that goes quiet must not hold brushing back. A record that arrives
after the watermark passed it is released at once; the seller side's re-decision of later
purchases (``stream.detect.seller_windows``) then keeps the verdicts as close as it can.
"""

from __future__ import annotations

import heapq
from typing import Generic, TypeVar

T = TypeVar("T")


class ReorderBuffer(Generic[T]):
    def __init__(self, sources: int, wait_ms: int) -> None:
        self.sources, self.wait_ms = sources, wait_ms
        self.marks: dict[int, int] = {}  # source partition -> its latest event time
        self._heap: list[tuple[int, str, int, int, T]] = []  # ts, id, seq, arrival, item
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def watermark(self) -> int | None:
        """The event time every source has reached; None until all have reported."""
        if len(self.marks) < self.sources:
            return None
        return min(self.marks.values())

    def advance(self, source: int, ts: int) -> None:
        if ts > self.marks.get(source, ts - 1):
            self.marks[source] = ts

    def add(self, ts: int, event_id: str, item: T, now_ms: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (ts, event_id, self._seq, now_ms, item))

    def release(self, now_ms: int, flush: bool = False) -> list[T]:
        """The items before the watermark, and every item up to the newest one that waited
        ``wait_ms``, in (event time, event id) order; all of them with ``flush``."""
        heap = self._heap
        if not heap:
            return []
        # A source at time T may still send more at T: the watermark releases what is
        # strictly before it. A record that waited long enough goes with all before it.
        mark = self.watermark()
        bound = mark - 1 if mark is not None else None
        overdue = [ts for ts, _, _, arrival, _ in heap if now_ms - arrival >= self.wait_ms]
        if overdue:
            bound = max(max(overdue), bound if bound is not None else overdue[0])
        out: list[T] = []
        while heap and (flush or (bound is not None and heap[0][0] <= bound)):
            out.append(heapq.heappop(heap)[4])
        return out

    def drain(self) -> list[T]:
        """Everything still waiting, dropped from the buffer."""
        items = [entry[4] for entry in sorted(self._heap)]
        self._heap.clear()
        return items
