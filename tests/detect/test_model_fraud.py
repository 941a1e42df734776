"""Threshold, cooldown, ordering and alert content of the model's fraud decisions.

A fake model stands in for the bundle: its scores are looked up by the decision event's
id and its explanation is fixed, so only ``stream.detect.model_fraud``'s own logic is tested.
"""

from __future__ import annotations

from typing import Any

import pytest

from stream.core.alerts import Detection
from stream.core.schema import DECISION_TYPES, Event
from stream.core.state import EID, Row, UserState
from stream.core.timeutil import MINUTE_MS
from stream.detect.model_fraud import MODEL_COOLDOWN, Explanation, PendingFraud, decide_all
from stream.detect.processor import DetectorConfig, apply_user_event
from tests.events import T0, card_testing, ev

CFG = DetectorConfig()
MIN = MINUTE_MS
THRESHOLD = 0.5


class FakeModel:
    """Scores by the last row's event id (0 when not listed); a fixed explanation."""

    version: str = "fake-1"

    def __init__(self, scores: dict[str, float]) -> None:
        self.by_event = scores
        self.batches: list[int] = []  # sizes of the scores calls

    def scores(self, windows: list[list[Row]]) -> dict[str, list[float]]:
        self.batches.append(len(windows))
        return {"fraud": [self.by_event.get(w[-1][EID], 0.0) for w in windows]}

    def explain_frauds(self, windows: list[list[Row]]) -> list[Explanation]:
        # The event before the decision drives the score; the first one barely matters.
        return [
            ([(len(w) - 2, 0.2), (0, 0.001)], [("amounts", 0.05), ("timing", 0.0)])
            for w in windows
        ]


def feed(state: UserState, raw: dict[str, Any]) -> PendingFraud | None:
    result = apply_user_event(state, Event.model_validate(raw), CFG, defer_fraud=True)
    assert result.outcome == "added"
    return result.pending


def decide(
    pending: list[PendingFraud], model: FakeModel, max_batch: int = 256
) -> list[list[Detection]]:
    scores, detections = decide_all(
        pending, model, THRESHOLD, CFG.fraud_cooldown_ms, CFG.rules, max_batch
    )
    assert scores == {"fraud": [model.by_event.get(p.trigger[EID], 0.0) for p in pending]}
    return detections


def browsing(user: str, start: int = T0) -> list[dict[str, Any]]:
    """Three non-decision events a minute apart, with no device, IP or country."""
    types = ["page_view", "item_view", "search"]
    return [ev(user, t, start + i * MIN) for i, t in enumerate(types)]


def pending_payment(user: str, event_id: str, amount: float = 80.0) -> PendingFraud:
    state = UserState()
    for raw in browsing(user):
        assert feed(state, raw) is None
    pending = feed(state, ev(user, "payment", T0 + 5 * MIN, event_id=event_id, amount=amount))
    assert pending is not None
    return pending


def test_non_decision_event_is_not_pending() -> None:
    state = UserState()
    assert feed(state, ev("u1", "login", T0)) is not None
    assert feed(state, ev("u1", "item_view", T0 + MIN)) is None


@pytest.mark.parametrize("type_", sorted(DECISION_TYPES))
def test_pending_window_ends_at_the_decision_event(type_: str) -> None:
    state = UserState()
    for raw in browsing("u1"):
        feed(state, raw)
    t = T0 + 10 * MIN
    # Already stored: an event at the same millisecond whose id sorts after the decision's.
    feed(state, ev("u1", "item_view", t, event_id="zz-later"))
    pending = feed(state, ev("u1", type_, t, event_id="aa-decision"))
    assert pending is not None
    assert pending.state is state and pending.user_id == "u1"
    assert pending.trigger is pending.window[-1]
    assert pending.window[-1][EID] == "aa-decision"
    assert [r[EID] for r in pending.window] == [r[EID] for r in state.events][:-1]
    assert state.events[-1][EID] == "zz-later"


def test_below_threshold_gives_no_detection() -> None:
    pending = pending_payment("u1", "pay-1")
    assert decide([pending], FakeModel({"pay-1": THRESHOLD - 0.01})) == [[]]
    assert MODEL_COOLDOWN not in pending.state.cooldowns
    at_threshold = pending_payment("u2", "pay-2")
    assert len(decide([at_threshold], FakeModel({"pay-2": THRESHOLD}))[0]) == 1


def test_above_threshold_alert_content() -> None:
    pending = pending_payment("u1", "pay-1")
    [[det]] = decide([pending], FakeModel({"pay-1": 0.9}))
    driver, first = pending.window[-2][EID], pending.window[0][EID]
    assert det.kind == "fraud" and det.subject_type == "user" and det.subject_id == "u1"
    assert det.event_id == "pay-1" and det.event_ts == T0 + 5 * MIN
    assert det.score == 0.9 and det.threshold == THRESHOLD
    codes = [r.code for r in det.reasons]
    # No novelty (no devices), no rule, and nothing for contributions under 0.01.
    assert codes == ["model.fraud", "model.event", "model.feature.amounts"]
    assert driver in det.reasons[1].detail and first not in det.reasons[1].detail
    # Occlusion results say what was measured: the score with and without what was hidden,
    # never a share of the score (drops of 0.2 and 0.05 from 0.9 need not add up to it).
    assert det.reasons[1].detail.startswith("the score falls from 0.90 to 0.70 without the ")
    assert det.reasons[2].detail == (
        "the score falls from 0.90 to 0.85 without the amounts and prices"
    )
    assert det.evidence_event_ids[0] == "pay-1"
    assert driver in det.evidence_event_ids
    assert pending.state.cooldowns[MODEL_COOLDOWN] == det.event_ts


def test_cooldown_suppresses_repeat_alerts_of_a_user() -> None:
    model = FakeModel({})
    state, other = UserState(), UserState()
    for raw in browsing("u1"):
        feed(state, raw)
    cooldown = CFG.fraud_cooldown_ms
    times = [T0 + 5 * MIN, T0 + 15 * MIN, T0 + 5 * MIN + cooldown - 1, T0 + 5 * MIN + cooldown]
    alerts = []
    for i, t in enumerate(times):
        model.by_event[f"pay-{i}"] = 0.9
        pending = feed(state, ev("u1", "payment", t, event_id=f"pay-{i}", amount=10.0))
        assert pending is not None
        alerts.append(len(decide([pending], model)[0]))
        if i == 1:  # another user is not cooling down
            model.by_event["other"] = 0.9
            elsewhere = feed(other, ev("u2", "payment", t, event_id="other", amount=10.0))
            assert elsewhere is not None
            assert len(decide([elsewhere], model)[0]) == 1
    assert alerts == [1, 0, 0, 1]
    assert state.cooldowns[MODEL_COOLDOWN] == times[3]


def two_users() -> list[dict[str, Any]]:
    """Interleaved events of two users, in event-time order."""
    return sorted(
        [
            *browsing("u1"),
            *browsing("u2", T0 + 30_000),
            ev("u1", "login", T0 + 4 * MIN, event_id="u1-login"),
            ev("u1", "payment", T0 + 5 * MIN, event_id="u1-pay", amount=900.0),
            ev("u2", "checkout", T0 + 6 * MIN, event_id="u2-checkout"),
            ev("u1", "item_view", T0 + 7 * MIN),
            ev("u1", "purchase", T0 + 8 * MIN, event_id="u1-buy", amount=900.0),
            ev("u2", "payment", T0 + 9 * MIN, event_id="u2-pay", amount=40.0),
            ev("u2", "purchase", T0 + 10 * MIN, event_id="u2-buy", amount=40.0),
            ev("u1", "review", T0 + 2 * CFG.fraud_cooldown_ms, event_id="u1-review", rating=1),
        ],
        key=lambda e: int(e["ts"]),
    )


# u1-buy and u2-buy come within their user's cooldown; u1-review after it.
SCORES = {
    "u1-login": 0.1,
    "u1-pay": 0.95,
    "u2-checkout": 0.2,
    "u1-buy": 0.8,
    "u2-pay": 0.7,
    "u2-buy": 0.9,
    "u1-review": 0.6,
}


@pytest.mark.parametrize("max_batch", [1, 256])
def test_batched_decisions_equal_deciding_on_arrival(max_batch: int) -> None:
    events = two_users()
    on_arrival: list[Detection] = []
    states: dict[str, UserState] = {"u1": UserState(), "u2": UserState()}
    for raw in events:
        pending = feed(states[raw["user_id"]], raw)
        if pending is not None:
            on_arrival += [d for ds in decide([pending], FakeModel(SCORES)) for d in ds]

    model = FakeModel(SCORES)
    states = {"u1": UserState(), "u2": UserState()}
    pending_all = [p for raw in events if (p := feed(states[raw["user_id"]], raw)) is not None]
    batched = [d for ds in decide(pending_all, model, max_batch) for d in ds]

    assert len(pending_all) == len(SCORES)
    assert model.batches == ([1] * len(SCORES) if max_batch == 1 else [len(SCORES)])
    assert [d.event_id for d in on_arrival] == ["u1-pay", "u2-pay", "u1-review"]
    assert batched == on_arrival
    assert states["u1"].cooldowns[MODEL_COOLDOWN] == T0 + 2 * CFG.fraud_cooldown_ms


def test_rule_reasons_follow_the_model_reasons() -> None:
    events = card_testing("u1", n=3)  # the third failed payment fires the rule
    state = UserState()
    pendings = [feed(state, raw) for raw in events]
    pending = pendings[-1]
    assert pending is not None
    [[det]] = decide([pending], FakeModel({events[-1]["event_id"]: 0.9}))
    codes = [r.code for r in det.reasons]
    assert codes[:3] == ["model.fraud", "model.event", "model.feature.amounts"]
    assert codes[3:5] == ["card_testing.failed_payments", "card_testing.instruments"]
    last_model = max(i for i, c in enumerate(codes) if c.startswith("model."))
    first_rule = min(i for i, c in enumerate(codes) if c.startswith("card_testing."))
    assert last_model < first_rule
    assert det.evidence_event_ids[0] == events[-1]["event_id"]
    assert {e["event_id"] for e in events} <= set(det.evidence_event_ids)


def test_rules_alert_where_the_model_stays_below_threshold() -> None:
    events = card_testing("u1", n=3)
    state = UserState()
    pendings = [p for raw in events if (p := feed(state, raw)) is not None]
    found = decide(pendings, FakeModel({}))  # the model scores nothing as fraud
    assert [len(d) for d in found] == [0, 0, 1]  # the third failed payment fires the rule
    [det] = found[-1]
    codes = [r.code for r in det.reasons]
    assert codes[0].startswith("card_testing.") and codes[-1] == "model.score"
    assert det.threshold == CFG.rules.threshold
    assert state.cooldowns["model"] == state.cooldowns["card_testing"] == det.event_ts


def test_one_alert_per_incident_whichever_detector_fires_first() -> None:
    events = card_testing("u1", n=5)
    state = UserState()
    pendings = [p for raw in events if (p := feed(state, raw)) is not None]
    # The model alerts at the third payment, where the rule fires too; at the fourth and
    # fifth the rule would fire again and the model dips: both are cooling down.
    scores = {events[2]["event_id"]: 0.9, events[3]["event_id"]: 0.1}
    found = decide(pendings, FakeModel(scores))
    assert [len(d) for d in found] == [0, 0, 1, 0, 0]
    assert found[2][0].reasons[0].code == "model.fraud"


def test_a_rule_firing_after_a_model_alert_waits_for_the_cooldown() -> None:
    """The model alerts at the first failed payment, before any rule can; the card-testing
    rule that fires two payments later is the same incident and raises nothing."""
    events = card_testing("u1", n=4)
    state = UserState()
    pendings = [p for raw in events if (p := feed(state, raw)) is not None]
    found = decide(pendings, FakeModel({events[0]["event_id"]: 0.9}))
    assert [len(d) for d in found] == [1, 0, 0, 0]
    assert "card_testing" not in state.cooldowns
    # Without the model's alert the rule fires at the third payment, so the test can fail.
    fresh = UserState()
    pendings = [p for raw in events if (p := feed(fresh, raw)) is not None]
    assert [len(d) for d in decide(pendings, FakeModel({}))] == [0, 0, 1, 0]
