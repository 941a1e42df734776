"""The seller side's reorder buffer: event-time order behind the watermarks, bounded wait."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream.detect.reorder import ReorderBuffer


def test_nothing_is_released_until_every_source_has_passed_it() -> None:
    buf: ReorderBuffer[str] = ReorderBuffer(sources=2, wait_ms=10_000)
    buf.add(200, "b", "b", now_ms=0)
    buf.add(100, "a", "a", now_ms=0)
    buf.advance(0, 500)
    assert buf.release(now_ms=1) == []  # source 1 has not reported
    buf.advance(1, 150)
    assert buf.release(now_ms=1) == ["a"]
    buf.advance(1, 200)  # source 1 may still send more at 200
    assert buf.release(now_ms=1) == []
    buf.advance(1, 201)
    assert buf.release(now_ms=1) == ["b"]
    assert len(buf) == 0


def test_a_watermark_never_moves_back() -> None:
    buf: ReorderBuffer[str] = ReorderBuffer(sources=1, wait_ms=10_000)
    buf.advance(0, 300)
    buf.advance(0, 100)
    assert buf.watermark() == 300


def test_equal_times_are_released_in_event_id_order() -> None:
    buf: ReorderBuffer[str] = ReorderBuffer(sources=1, wait_ms=10_000)
    for eid in ("c", "a", "b"):
        buf.add(100, eid, eid, now_ms=0)
    buf.advance(0, 101)
    assert buf.release(now_ms=0) == ["a", "b", "c"]


def test_a_quiet_source_delays_records_by_the_wait_at_most() -> None:
    buf: ReorderBuffer[str] = ReorderBuffer(sources=2, wait_ms=2_000)
    buf.advance(0, 1_000)  # source 1 never reports
    buf.add(300, "late", "late", now_ms=500)
    buf.add(100, "early", "early", now_ms=1_000)
    buf.add(900, "newer", "newer", now_ms=2_400)
    assert buf.release(now_ms=2_499) == []
    # "late" has waited 2 s: it goes, and "early" (before it in event time) with it.
    assert buf.release(now_ms=2_500) == ["early", "late"]
    assert buf.release(now_ms=4_400) == ["newer"]


def test_flush_and_drain_empty_the_buffer_in_order() -> None:
    buf: ReorderBuffer[str] = ReorderBuffer(sources=3, wait_ms=10_000)
    buf.add(2, "y", "y", 0)
    buf.add(1, "x", "x", 0)
    assert buf.release(0, flush=True) == ["x", "y"]
    buf.add(5, "z", "z", 0)
    assert buf.drain() == ["z"] and len(buf) == 0


@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1_000)), min_size=1, max_size=60),
)
def test_in_order_sources_merge_into_event_time_order(items: list[tuple[int, int]]) -> None:
    """Sources that are each in event-time order, interleaved in any way, come out in
    event-time order: what makes the worker's seller side see what the backtest sees."""
    per_source: dict[int, list[int]] = {}
    for source, ts in items:
        per_source.setdefault(source, []).append(ts)
    streams = {s: sorted(ts) for s, ts in per_source.items()}
    buf: ReorderBuffer[tuple[int, str]] = ReorderBuffer(sources=len(streams), wait_ms=10**9)
    out: list[tuple[int, str]] = []
    cursors = dict.fromkeys(streams, 0)
    n = 0
    # Round-robin over the sources: each record, then its source's watermark.
    while any(cursors[s] < len(streams[s]) for s in streams):
        for source, times in streams.items():
            if cursors[source] < len(times):
                ts = times[cursors[source]]
                cursors[source] += 1
                n += 1
                eid = f"{ts:05d}-{source}-{n:03d}"
                buf.add(ts, eid, (ts, eid), now_ms=0)
                buf.advance(source, ts)
                out += buf.release(now_ms=0)
    out += buf.release(now_ms=0, flush=True)
    assert out == sorted(out)
    assert len(out) == len(items)
