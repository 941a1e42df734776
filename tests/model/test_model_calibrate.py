from __future__ import annotations

import numpy as np
import pytest

from model.calibrate import (
    Platt,
    alert_precision,
    average_precision,
    choose_threshold,
    fit_platt,
    raise_for_alerts,
    recall_at_precision,
    sigmoid,
)  # fmt: skip


def test_average_precision_by_hand() -> None:
    # Ranked: 1 (pos), 2 (neg), 3 (pos): AP = (1/2) * 1 + (1/2) * (2/3).
    scores = np.array([0.9, 0.8, 0.7])
    labels = np.array([1, 0, 1])
    assert average_precision(scores, labels) == pytest.approx(0.5 + 1 / 3)
    assert average_precision(scores, np.array([1, 1, 0])) == pytest.approx(1.0)
    assert np.isnan(average_precision(scores, np.zeros(3)))


def test_average_precision_matches_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    y = rng.random(2000) < 0.1
    s = np.round(rng.normal(size=2000) + 1.5 * y, 1)  # rounding creates ties
    assert average_precision(s, y) == pytest.approx(metrics.average_precision_score(y, s))


def test_recall_at_precision() -> None:
    scores = np.arange(10, 0, -1, dtype=float)
    labels = np.array([1, 1, 1, 1, 0, 1, 0, 0, 1, 0])
    assert recall_at_precision(scores, labels, 0.9) == pytest.approx(4 / 6)
    assert recall_at_precision(scores, labels, 1.0) == pytest.approx(4 / 6)
    assert recall_at_precision(-scores, labels, 0.9) == 0.0


def test_platt_recovers_a_known_mapping() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(scale=3, size=20000)
    y = rng.random(20000) < sigmoid(0.5 * z - 1.0)
    fit = fit_platt(z, y)
    assert fit.a == pytest.approx(0.5, abs=0.05) and fit.b == pytest.approx(-1.0, abs=0.1)
    assert Platt.from_json(fit.to_json()) == fit
    assert fit_platt(z, np.zeros_like(y)) == Platt()


def test_threshold_reaches_target_precision_or_budget() -> None:
    rng = np.random.default_rng(3)
    y = rng.random(5000) < 0.05
    s = sigmoid(rng.normal(size=5000) + 4 * y)
    thr = choose_threshold(s, y, 0.9)
    assert thr["rule"] == "target_precision"
    alerts = s >= thr["threshold"]
    assert y[alerts].mean() >= 0.9 and thr["val_recall"] == pytest.approx(y[alerts].sum() / y.sum())
    noise = choose_threshold(rng.random(5000), y, 0.99, alert_budget=0.01)
    assert noise["rule"] == "alert_budget"


def test_fraud_threshold_is_chosen_for_alerts_not_decisions() -> None:
    """One fraudster with 20 decisions in an hour, 30 honest users with one decision each:
    per decision a low threshold looks precise, but it alerts once on the fraudster and
    once on every honest user above it."""
    hour = 3_600_000
    scores = [0.8 + 0.01 * i for i in range(20)] + [0.03 * i for i in range(30)]
    labels = [1] * 20 + [0] * 30
    users = ["f"] * 20 + [f"h{i}" for i in range(30)]
    ts = [i * 60_000 for i in range(20)] + [0] * 30
    chosen = choose_threshold(scores, labels, target_precision=0.6)
    precision, count = alert_precision(scores, labels, users, ts, chosen["threshold"], hour)
    assert precision < 0.6 and count > 2
    raised = raise_for_alerts(chosen, scores, labels, users, ts, hour)
    assert raised["rule"] == "target_alert_precision"
    assert raised["threshold"] > chosen["threshold"]
    precision, count = alert_precision(scores, labels, users, ts, raised["threshold"], hour)
    assert precision >= 0.6 and precision == raised["val_alert_precision"]
    # One hour later the fraudster alerts again: the cooldown is per user and hour.
    assert alert_precision([0.9, 0.9], [1, 1], ["f", "f"], [0, hour], 0.5, hour) == (1.0, 2)
    assert alert_precision([0.9, 0.9], [1, 1], ["f", "f"], [0, hour - 1], 0.5, hour) == (1.0, 1)


def test_too_few_validation_alerts_leave_the_threshold_to_calibration() -> None:
    """Twelve fraudsters and 30 honest users, one decision each: the lowest threshold with
    90% alert precision leaves 5 alerts, too few to measure a precision on; with a minimum
    of 10 the threshold is the target precision on the calibrated probability."""
    hour = 3_600_000
    scores = [0.6 + 0.01 * i for i in range(12)] + [0.02 * i for i in range(30)]
    scores[:7] = [0.5 + 0.01 * i for i in range(7)]
    labels = [1] * 12 + [0] * 30
    users = [f"f{i}" for i in range(12)] + [f"h{i}" for i in range(30)]
    ts = [0] * 42
    chosen = {"threshold": 0.3, "rule": "target_precision", "target_precision": 0.9}
    raised = raise_for_alerts(chosen, scores, labels, users, ts, hour)
    assert raised["rule"] == "target_alert_precision" and raised["threshold"] > 0.3
    thin = raise_for_alerts(chosen, scores, labels, users, ts, hour, min_alerts=10)
    assert thin["rule"] == "calibrated_target_precision" and thin["threshold"] == 0.9
    assert thin["per_decision_threshold"] == 0.3
    assert (thin["val_alert_precision"], thin["val_alerts"]) == alert_precision(
        scores, labels, users, ts, 0.9, hour
    )
    # A per-decision threshold above the target precision is never lowered.
    high = raise_for_alerts({**chosen, "threshold": 0.95}, scores, labels, users, ts, hour, 10)
    assert high["threshold"] == 0.95


def test_a_per_decision_threshold_that_few_alerts_do_not_contradict_stands() -> None:
    """Two fraudsters with ten decisions each, 40 honest users under them: the per-decision
    threshold raises two alerts, both right. Too few to measure a precision on, but nothing
    contradicts the threshold chosen over all 60 decisions, so it stands rather than the
    calibrated fallback; one wrong alert among the few sends it back to the fallback."""
    hour = 3_600_000
    scores = [0.7 + 0.01 * i for i in range(20)] + [0.01 * i for i in range(40)]
    labels = [1] * 20 + [0] * 40
    users = ["f1"] * 10 + ["f2"] * 10 + [f"h{i}" for i in range(40)]
    ts = [i * 60_000 for i in range(10)] * 2 + [0] * 40
    chosen = choose_threshold(scores, labels, target_precision=0.9)
    assert chosen["threshold"] == pytest.approx(0.7)
    few = raise_for_alerts(chosen, scores, labels, users, ts, hour, min_alerts=10)
    assert few["rule"] == "target_precision_few_alerts" and few["threshold"] == chosen["threshold"]
    assert (few["val_alert_precision"], few["val_alerts"]) == (1.0, 2)
    wrong = [*scores[:-1], 0.75]  # one honest user scores among the fraudsters
    chosen = choose_threshold(wrong, labels, target_precision=0.9)
    fallback = raise_for_alerts(chosen, wrong, labels, users, ts, hour, min_alerts=10)
    assert fallback["rule"] == "calibrated_target_precision" and fallback["threshold"] == 0.9


def test_with_partial_labels_only_judged_alerts_measure_the_threshold() -> None:
    """Analysts confirmed one of two fraud cases and judged one honest user's alert false:
    the unconfirmed case is not an honest alert, it is nobody's verdict. Counting every
    unlabelled alert as wrong sends the threshold to the calibrated fallback; counting the
    judged ones keeps the per-decision threshold, and an unjudged alert still starts its
    user's cooldown."""
    hour = 3_600_000
    scores = [0.8, 0.81, 0.82, 0.85, 0.86, 0.3, 0.2]
    labels = [1, 1, 1, 0, 0, 0, 0]  # "u2" is fraud nobody confirmed
    users = ["u1", "u1", "u1", "u2", "u2", "h1", "h2"]
    ts = [0, 60_000, 120_000, 0, 60_000, 0, 0]
    judged = [True, True, True, False, False, True, True]
    assert alert_precision(scores, labels, users, ts, 0.5, hour) == (0.5, 2)
    assert alert_precision(scores, labels, users, ts, 0.5, hour, judged) == (1.0, 1)
    chosen = {"threshold": 0.8, "rule": "target_precision", "target_precision": 0.9}
    implicit = raise_for_alerts(chosen, scores, labels, users, ts, hour, 10)
    assert implicit["rule"] == "calibrated_target_precision" and implicit["threshold"] == 0.9
    partial = raise_for_alerts(chosen, scores, labels, users, ts, hour, 10, judged)
    assert partial["rule"] == "target_precision_few_alerts" and partial["threshold"] == 0.8
    assert partial["val_alerts_counted"] == "judged"
    # A judged false positive among them is evidence against the threshold.
    wrong = raise_for_alerts(chosen, scores, labels, users, ts, hour, 10, [True] * 7)
    assert wrong["rule"] == "calibrated_target_precision"
