from __future__ import annotations

from stream.core.schema import Event
from stream.core.state import StateLimits, UserState
from stream.core.timeutil import DAY_MS
from stream.detect.btyd import BGNBD
from stream.detect.churn import (
    ChurnBudget,
    ChurnClock,
    ChurnConfig,
    churn_detection,
    churn_score,
)
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
    assert soon < CFG.threshold < 0.9 < later


def test_every_user_is_scored_from_the_first_event() -> None:
    one = active_user(days=1)
    soon = churn_score(one, one.max_ts + DAY_MS, CFG)
    later = churn_score(one, one.max_ts + 60 * DAY_MS, CFG)
    assert soon is not None and later is not None
    assert 0.0 < soon < later < 1.0
    assert churn_score(UserState(), T0, CFG) is None  # nothing seen, nothing to score


def test_a_regular_user_idle_for_hours_is_not_a_churner() -> None:
    state = active_user()
    score = churn_score(state, state.max_ts + DAY_MS // 2, CFG)
    assert score is not None and score < 0.2


def test_the_fitted_parameters_change_the_score() -> None:
    state = active_user(days=4)
    now = state.max_ts + 5 * DAY_MS
    loyal = BGNBD(r=2.0, alpha=2.0, a=0.1, b=20.0)  # frequent visitors who rarely leave
    assert churn_score(state, now, CFG, loyal) != churn_score(state, now, CFG)


def test_visits_and_spend_survive_the_window_and_the_encoding() -> None:
    state = UserState()
    limits = StateLimits(max_events=3)
    for d in range(6):
        raw = ev("c", "purchase", T0 + d * DAY_MS, event_id=f"p{d}", amount=10.0)
        state.add(Event.model_validate(raw), limits)
    again = UserState.decode(state.encode())
    assert (again.visits, again.spend, len(again.events)) == (6, 60.0, 3)


def test_budget_shares_out_alerts_per_partition_with_carry() -> None:
    budget = ChurnBudget(ChurnConfig(budget_per_1000=10.0))
    # 50 users: half an alert a day, so one every other tick.
    assert [budget.allowance(0, 50) for _ in range(4)] == [0, 1, 0, 1]
    assert ChurnBudget(ChurnConfig(budget_per_1000=None)).allowance(0, 50) is None


def test_one_alert_per_inactivity_episode() -> None:
    state = active_user()
    now = state.max_ts + 10 * DAY_MS
    score = churn_score(state, now, CFG)
    assert score is not None
    first = churn_detection("c", state, now, score, CFG)
    assert first is not None and first.event_id == "c19" and first.reasons
    assert (first.detector, first.model_version) == ("rules", "rules-v1")
    assert churn_detection("c", state, now + DAY_MS, score, CFG) is None


def test_clock_ticks_at_aligned_boundaries() -> None:
    clock = ChurnClock(DAY_MS)
    start = 5 * DAY_MS + 123
    assert clock.crossed(0, start) == []
    assert clock.crossed(0, start + 1000) == []
    assert clock.crossed(0, 8 * DAY_MS) == [6 * DAY_MS, 7 * DAY_MS, 8 * DAY_MS]
    assert clock.crossed(1, 8 * DAY_MS) == []  # clocks are independent per key
