"""The event-time guard: each branch of the policy, and its properties over any sequence."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core.event_time import DEFAULT_MAX_SKEW_MS, FUTURE, EventTimeGuard
from stream.core.schema import Rejected, parse_event
from stream.core.timeutil import parse_ts

HOUR = 3_600_000
NOW = parse_ts("2026-12-02T12:00:00.000Z")
DECADES_AHEAD = parse_ts("2071-01-01T00:00:00.000Z")


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.now


def future(guard: EventTimeGuard, partition: int, ts: int) -> Rejected:
    with pytest.raises(Rejected) as info:
        guard.admit(partition, ts)
    assert info.value.reason == FUTURE
    return info.value


def test_default_skew_is_one_hour() -> None:
    assert EventTimeGuard().max_skew_ms == DEFAULT_MAX_SKEW_MS == HOUR


def test_negative_skew_is_refused() -> None:
    with pytest.raises(ValueError, match="max_skew_ms"):
        EventTimeGuard(-1)


def test_one_event_decades_ahead_does_not_blind_the_partition() -> None:
    guard = EventTimeGuard(HOUR, Clock())
    guard.admit(0, NOW - 5_000)
    rejected = future(guard, 0, DECADES_AHEAD)
    assert "field 'ts'" in rejected.message and "2071-01-01T00:00:00.000Z" in rejected.message
    assert f"{HOUR} ms" in rejected.message
    assert "the wall clock 2026-12-02T12:00:00.000Z" in rejected.message
    assert "partition 0's latest event time 2026-12-02T11:59:55.000Z" in rejected.message
    assert guard.watermark(0) == NOW - 5_000
    guard.admit(0, NOW - 1_000)  # the events after it go on as before
    assert guard.watermark(0) == NOW - 1_000


def test_bound_is_inclusive() -> None:
    guard = EventTimeGuard(HOUR)
    guard.admit(0, NOW)
    guard.admit(0, NOW + HOUR)  # exactly the skew ahead: accepted
    assert guard.watermark(0) == NOW + HOUR
    future(guard, 0, NOW + 2 * HOUR + 1)  # one millisecond beyond: rejected
    clocked = EventTimeGuard(HOUR, Clock())
    clocked.admit(1, NOW + HOUR)  # first event, judged by the wall clock: inclusive too
    future(clocked, 2, NOW + HOUR + 1)


def test_zero_skew_accepts_the_watermark_itself() -> None:
    guard = EventTimeGuard(0)
    guard.admit(0, NOW)
    guard.admit(0, NOW)
    future(guard, 0, NOW + 1)


def test_first_event_without_wall_clock_starts_the_watermark() -> None:
    guard = EventTimeGuard(HOUR)
    guard.admit(3, DECADES_AHEAD)  # nothing to judge it by (a backtest of any file)
    assert guard.watermark(3) == DECADES_AHEAD
    assert guard.watermark(4) is None


def test_first_event_with_wall_clock_is_judged_by_the_clock_alone() -> None:
    guard = EventTimeGuard(HOUR, Clock())
    rejected = future(guard, 0, DECADES_AHEAD)
    assert "partition" not in rejected.message and "wall clock" in rejected.message
    assert guard.watermark(0) is None
    guard.admit(0, NOW + HOUR - 1)
    assert guard.watermark(0) == NOW + HOUR - 1


def test_partitions_are_independent() -> None:
    guard = EventTimeGuard(HOUR)
    guard.admit(0, NOW)
    guard.admit(1, NOW + 10 * HOUR)  # partition 1's first event
    future(guard, 0, NOW + 10 * HOUR)  # too far ahead of partition 0's own watermark
    assert guard.export() == {0: NOW, 1: NOW + 10 * HOUR}


def test_far_past_is_not_the_guards_business() -> None:
    """Lateness is per user, in the state: a user with no state takes an old event."""
    guard = EventTimeGuard(HOUR, Clock())
    guard.admit(0, NOW)
    guard.admit(0, 0)  # 1970
    guard.admit(0, NOW - 365 * 24 * HOUR)
    assert guard.watermark(0) == NOW


def test_watermark_keeps_advancing_ahead_of_real_time_without_wall_clock() -> None:
    """Simulated traffic (``fraudstream up``) runs days ahead of the wall clock in steps."""
    guard = EventTimeGuard(HOUR)
    ts = NOW
    for _ in range(2_000):
        ts += 30 * 60_000  # half an hour of event time per event
        guard.admit(0, ts)
    assert guard.watermark(0) == NOW + 1_000 * HOUR


def test_gradual_run_ahead_is_followed_with_wall_clock_too() -> None:
    clock = Clock()
    guard = EventTimeGuard(HOUR, clock)
    for step in range(1, 49):
        guard.admit(0, NOW + step * HOUR)  # each within the skew of the watermark
    assert guard.watermark(0) == NOW + 48 * HOUR
    future(guard, 0, NOW + 50 * HOUR)


def test_wall_clock_admits_a_jump_after_a_quiet_partition() -> None:
    """A partition quiet for hours resumes: the wall clock vouches for its new events."""
    clock = Clock()
    guard = EventTimeGuard(HOUR, clock)
    guard.admit(0, NOW - 6 * HOUR)
    guard.admit(0, NOW)
    assert guard.watermark(0) == NOW


def test_without_wall_clock_a_pause_longer_than_the_skew_is_refused() -> None:
    """The documented limit of the event-time-only mode: nothing vouches for the jump."""
    guard = EventTimeGuard(HOUR)
    guard.admit(0, NOW - 6 * HOUR)
    future(guard, 0, NOW)


def test_wall_clock_is_read_only_when_the_watermark_cannot_decide() -> None:
    clock = Clock()
    guard = EventTimeGuard(HOUR, clock)
    guard.admit(0, NOW)
    assert clock.reads == 1
    for i in range(100):
        guard.admit(0, NOW + i)
    assert clock.reads == 1


def test_duplicate_is_never_future_even_after_the_clock_went_back() -> None:
    """A redelivered event at or behind the watermark is accepted whatever the clock says:
    it was accepted once, and it moves nothing."""
    clock = Clock()
    guard = EventTimeGuard(HOUR, clock)
    guard.admit(0, NOW + HOUR)  # accepted on the clock (the partition's first event)
    clock.now = NOW - 24 * HOUR  # the wall clock is set back a day
    guard.admit(0, NOW + HOUR)
    guard.admit(0, NOW)
    assert guard.watermark(0) == NOW + HOUR


def test_duplicate_after_restart_with_restored_watermark() -> None:
    clock = Clock()
    first = EventTimeGuard(HOUR, clock)
    first.admit(5, NOW + HOUR)
    saved = orjson.loads(orjson.dumps(first.export(), option=orjson.OPT_NON_STR_KEYS))
    clock.now = NOW - 24 * HOUR
    restarted = EventTimeGuard(HOUR, clock)
    restarted.restore(saved)  # string keys, as JSON gives them back
    restarted.admit(5, NOW + HOUR)
    assert restarted.export() == {5: NOW + HOUR}


def test_check_changes_nothing() -> None:
    guard = EventTimeGuard(HOUR)
    guard.admit(0, NOW)
    guard.check(0, NOW + HOUR)
    assert guard.watermark(0) == NOW
    with pytest.raises(Rejected):
        guard.check(0, NOW + 2 * HOUR)
    guard.advance(0, NOW + 2 * HOUR)  # the caller decides when an event counts as accepted
    assert guard.watermark(0) == NOW + 2 * HOUR


def test_restore_never_moves_a_watermark_back() -> None:
    guard = EventTimeGuard(HOUR)
    guard.admit(0, NOW)
    guard.restore({0: NOW - HOUR, 1: NOW - HOUR})
    assert guard.export() == {0: NOW, 1: NOW - HOUR}
    guard.restore({"0": NOW + 1})
    assert guard.watermark(0) == NOW + 1


def test_export_is_a_copy() -> None:
    guard = EventTimeGuard(HOUR)
    guard.admit(0, NOW)
    guard.export()[0] = 0
    assert guard.watermark(0) == NOW


def test_forget_drops_revoked_partitions() -> None:
    guard = EventTimeGuard(HOUR)
    guard.admit(0, NOW)
    guard.admit(1, NOW)
    guard.forget([1, 7])
    assert guard.export() == {0: NOW}


@pytest.mark.parametrize(
    "later",
    [
        NOW + HOUR,  # epoch milliseconds
        "2026-12-02T13:00:00.000Z",
        "2026-12-02T14:00:00+01:00",
        "2026-12-02T07:00:00.000-06:00",
    ],
)
def test_epoch_ms_and_rfc3339_offsets_are_judged_the_same(later: object) -> None:
    """The guard sees parsed epoch ms: one instant in any form gets one verdict."""

    def ts_of(value: object) -> int:
        raw = {"event_id": "e", "ts": value, "user_id": "u", "type": "login"}
        return parse_event(orjson.dumps(raw)).ts

    assert ts_of(later) == NOW + HOUR
    guard = EventTimeGuard(HOUR)
    guard.admit(0, ts_of("2026-12-02T12:00:00Z"))
    guard.admit(0, ts_of(later))  # exactly at the bound, in every form
    beyond = EventTimeGuard(HOUR)
    beyond.admit(0, ts_of("2026-12-02T11:59:59.999+00:00"))
    future(beyond, 0, ts_of(later))


def test_settings_build_the_guard() -> None:
    from stream.runtime.settings import Settings

    live = Settings().event_time_guard()
    assert live.max_skew_ms == HOUR and live.wall_clock is not None
    simulated = Settings(max_skew_ms=5, wall_clock_skew=False).event_time_guard()
    assert simulated.max_skew_ms == 5 and simulated.wall_clock is None


# Properties over any sequence: (partition, ts) pairs, timestamps within a few skews of each
# other so that both outcomes occur, with and without a (moving) wall clock.
SKEW = 1_000
steps = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 8 * SKEW), st.integers(-SKEW, 2 * SKEW)),
    max_size=60,
)


def run(seq: list[tuple[int, int, int]], clocked: bool) -> tuple[list[bool], EventTimeGuard]:
    """Feed ``(partition, ts, clock step)`` triples; return each verdict (True: accepted)."""
    clock = Clock(4 * SKEW)
    guard = EventTimeGuard(SKEW, clock if clocked else None)
    verdicts = []
    for partition, ts, tick in seq:
        clock.now += tick
        try:
            guard.admit(partition, ts)
        except Rejected:
            verdicts.append(False)
        else:
            verdicts.append(True)
    return verdicts, guard


@given(steps, st.booleans())
def test_watermark_never_decreases_nor_exceeds_the_max_accepted(
    seq: list[tuple[int, int, int]], clocked: bool
) -> None:
    clock = Clock(4 * SKEW)
    guard = EventTimeGuard(SKEW, clock if clocked else None)
    accepted: dict[int, int] = {}
    for partition, ts, tick in seq:
        clock.now += tick
        before = guard.export()
        mark = before.get(partition)
        try:
            guard.admit(partition, ts)
        except Rejected:
            assert guard.export() == before  # a rejection changes nothing
            assert mark is not None or clocked  # without a clock, a first event is accepted
            assert mark is None or ts > mark + SKEW
            assert not clocked or ts > clock.now + SKEW
            continue
        accepted[partition] = max(accepted.get(partition, ts), ts)
        after = guard.export()
        assert all(after[p] >= m for p, m in before.items())  # never decreases
        assert after == accepted  # never exceeds the max accepted (and is exactly it)
        if mark is not None:
            assert ts <= mark + SKEW or (clocked and ts <= clock.now + SKEW)


@given(steps, st.booleans(), st.data())
def test_a_rejected_event_changes_nothing_after_it(
    seq: list[tuple[int, int, int]], clocked: bool, data: st.DataObject
) -> None:
    verdicts, _ = run(seq, clocked)
    rejected = [i for i, ok in enumerate(verdicts) if not ok]
    if not rejected:
        return
    i = data.draw(st.sampled_from(rejected))
    # Leave the event out; its clock step moves to the next event, so the clock reads the same.
    rest = seq[i + 1 :]
    if rest:
        partition, ts, tick = rest[0]
        rest = [(partition, ts, tick + seq[i][2]), *rest[1:]]
    others, _ = run([*seq[:i], *rest], clocked)
    assert others == verdicts[:i] + verdicts[i + 1 :]


@given(steps, st.booleans())
def test_events_at_or_behind_the_watermark_are_always_accepted(
    seq: list[tuple[int, int, int]], clocked: bool
) -> None:
    _, guard = run(seq, clocked)
    for partition, mark in guard.export().items():
        guard.admit(partition, mark)
        guard.admit(partition, max(0, mark - 3 * SKEW))
        assert guard.watermark(partition) == mark
