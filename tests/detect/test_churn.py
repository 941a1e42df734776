from __future__ import annotations

from stream.core.schema import Event
from stream.core.state import StateLimits, UserState
from stream.core.timeutil import DAY_MS
from stream.detect.churn import ChurnClock, ChurnConfig, churn_detection, churn_score
from tests.events import T0, ev

CFG = ChurnConfig()


def active_user(days: int = 20) -> UserState:
    state = UserState()
    for d in range(days):
        raw = ev("c", "page_view", T0 + d * DAY_MS, event_id=f"c{d}")
        state.add(Event.model_validate(raw), StateLimits())
    return state


def test_score_grows_with_inactivity_relative_to_habits() -> None:
    state = active_user()
    last = state.max_ts
    soon = churn_score(state, last + DAY_MS, CFG)
    later = churn_score(state, last + 10 * DAY_MS, CFG)
    assert soon is not None and later is not None
    assert soon < 0.5 < CFG.threshold < later


def test_too_little_history_is_not_scored() -> None:
    assert churn_score(active_user(days=3), T0 + 30 * DAY_MS, CFG) is None


def test_one_alert_per_inactivity_episode() -> None:
    state = active_user()
    now = state.max_ts + 10 * DAY_MS
    score = churn_score(state, now, CFG)
    assert score is not None
    first = churn_detection("c", state, now, score, CFG)
    assert first is not None and first.event_id == "c19" and first.reasons
    assert churn_detection("c", state, now + DAY_MS, score, CFG) is None


def test_clock_ticks_at_aligned_boundaries() -> None:
    clock = ChurnClock(DAY_MS)
    start = 5 * DAY_MS + 123
    assert clock.crossed(0, start) == []
    assert clock.crossed(0, start + 1000) == []
    assert clock.crossed(0, 8 * DAY_MS) == [6 * DAY_MS, 7 * DAY_MS, 8 * DAY_MS]
    assert clock.crossed(1, 8 * DAY_MS) == []  # clocks are independent per key
