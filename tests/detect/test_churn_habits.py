"""The habits churn model: features read from the stream's user state, JSON that round-trips
and refuses another version's features, and the stream scoring with it when a bundle
carries it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from model.churn_habits import fit_habits, habit_scores
from stream.core.schema import Event
from stream.core.state import StateLimits, UserState
from stream.core.timeutil import DAY_MS, MINUTE_MS
from stream.detect.btyd import BGNBD
from stream.detect.churn import ChurnConfig
from stream.detect.churn_habits import FEATURES, HabitModel, habit_features
from stream.detect.model_churn import churn_verdicts
from tests.events import T0, ev

PARAMS = BGNBD.prior(90.0)


def visit(user: str, day: int, *, bought: bool, views: int = 3) -> list[dict[str, Any]]:
    t = T0 + day * DAY_MS
    out = [ev(user, "item_view", t + i * MINUTE_MS, item_id=f"i{i}") for i in range(views)]
    if bought:
        out.append(ev(user, "purchase", t + views * MINUTE_MS, amount=40.0, order_id="o1"))
    return out


def state_of(raws: list[dict[str, Any]]) -> UserState:
    state = UserState()
    for raw in raws:
        state.add(Event.model_validate(raw), StateLimits())
    return state


def features(state: UserState, now: int) -> dict[str, float]:
    return dict(zip(FEATURES, habit_features(state, now, 90.0, PARAMS), strict=True))


def test_a_bad_last_visit_shows_in_the_features() -> None:
    good = state_of(visit("g", 0, bought=True, views=6) + visit("g", 60, bought=True, views=6))
    bad_raws = visit("b", 0, bought=True, views=6) + visit("b", 60, bought=True, views=1)
    t = T0 + 63 * DAY_MS
    bad_raws += [
        ev("b", "payment", T0 + 60 * DAY_MS + 5 * MINUTE_MS, status="failed", amount=40.0),
        ev("b", "refund", t, amount=40.0, order_id="o1"),
        ev("b", "review", t + DAY_MS, rating=1, order_id="o1"),
    ]
    bad = state_of(bad_raws)
    now = T0 + 80 * DAY_MS
    g, b = features(good, now), features(bad, now)
    assert (b["refunds"], b["bad_reviews"], b["failed_payments"]) == (1.0, 1.0, 1.0)
    assert (g["refunds"], g["bad_reviews"], g["failed_payments"]) == (0.0, 0.0, 0.0)
    assert b["last_visit_views"] < g["last_visit_views"]
    # The refund and the review are visits of their own; the last that browsed still counts.
    assert b["last_visit_bought"] == g["last_visit_bought"] == 1.0
    assert b["log_idle_days"] < g["log_idle_days"]  # the review came after the last visit
    browsed_only = state_of(visit("n", 0, bought=True) + visit("n", 60, bought=False))
    assert features(browsed_only, now)["last_visit_bought"] == 0.0


def test_one_event_is_enough() -> None:
    f = features(state_of([ev("o", "page_view", T0)]), T0 + 10 * DAY_MS)
    assert all(np.isfinite(list(f.values())))
    assert f["log_visits"] == 0.0


def fitted() -> HabitModel:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, len(FEATURES)))
    j = FEATURES.index("last_visit_bought")
    y = (rng.random(2000) < 1.0 / (1.0 + np.exp(2.0 * x[:, j]))).astype(np.float64)
    return fit_habits(x, y, PARAMS)


def test_the_fit_finds_the_feature_that_matters_and_round_trips() -> None:
    model = fitted()
    j = FEATURES.index("last_visit_bought")
    assert model.weights[j] < -1.0
    assert max(abs(w) for i, w in enumerate(model.weights) if i != j) < 0.3
    again = HabitModel.from_json(model.to_json())
    x = np.zeros((1, len(FEATURES)))
    assert habit_scores(again, x)[0] == pytest.approx(habit_scores(model, x)[0])
    older = {**model.to_json(), "features": list(FEATURES[:-1])}
    with pytest.raises(ValueError, match=r"habits\.features"):
        HabitModel.from_json(older)


class Bundle:
    """What ``churn_verdicts`` reads from a bundle whose churn went to the habits model."""

    churn_horizon_days = 90.0
    churn_btyd_threshold = 0.0  # every user over it: the budget decides
    kinds: frozenset[str] = frozenset()

    def __init__(self, habits: HabitModel) -> None:
        self.churn_habits = habits
        self.churn_btyd = habits.btyd

    def threshold(self, kind: str) -> float | None:
        return None

    def idle_scores(self, windows: Any, now_ms: int, batch: int) -> list[float]:
        raise AssertionError("the sequence model does not score churn here")


def test_the_stream_scores_with_the_bundles_habits_model() -> None:
    model = fitted()
    users = [
        ("good", state_of(visit("good", 0, bought=True))),
        ("bad", state_of(visit("bad", 0, bought=False))),
    ]
    now = T0 + 20 * DAY_MS
    verdicts = churn_verdicts(users, now, ChurnConfig(), Bundle(model))
    by = {v.user_id: v for v in verdicts}
    assert by["bad"].score > by["good"].score
    assert by["bad"].score == pytest.approx(model.score(users[1][1], now, 90.0))
    for v in verdicts:
        assert v.detection is not None and v.detection.detector == "habits"
        assert v.detection.reasons[0].code == "habits.churn"
