from __future__ import annotations

import random

import pytest

from stream.core.ranking import average_precision, pr_curve, recall_at_precision


def test_perfect_and_inverted_rankings() -> None:
    assert average_precision([0.9, 0.8, 0.1, 0.0], [True, True, False, False]) == 1.0
    inverted = average_precision([0.1, 0.0, 0.9, 0.8], [True, True, False, False])
    assert inverted == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_ties_rank_together() -> None:
    # All tied: one threshold, precision = prevalence.
    assert average_precision([0.5] * 4, [True, False, False, False]) == 0.25


def test_matches_a_reference_implementation() -> None:
    rng = random.Random(1)
    labels = [rng.random() < 0.2 for _ in range(300)]
    scores = [rng.random() + (0.5 if y else 0.0) for y in labels]
    # Reference: mean of precision at each positive, valid without ties.
    order = sorted(range(300), key=lambda i: -scores[i])
    hits, precisions = 0, []
    for n, i in enumerate(order, 1):
        if labels[i]:
            hits += 1
            precisions.append(hits / n)
    assert average_precision(scores, labels) == pytest.approx(sum(precisions) / len(precisions))


def test_recall_at_precision_and_no_positives() -> None:
    scores, labels = [0.9, 0.8, 0.7, 0.6], [True, True, False, True]
    assert recall_at_precision(scores, labels, 0.9) == pytest.approx(2 / 3)
    assert average_precision([0.1], [False]) is None


def test_curve_has_one_point_per_distinct_score() -> None:
    points = pr_curve([0.9, 0.5, 0.5, 0.1], [True, True, False, False])
    assert points == [(1.0, 0.5, 0.9), (2 / 3, 1.0, 0.5), (0.5, 1.0, 0.1)]
    assert pr_curve([0.3, 0.2], [False, False]) == []


def test_the_model_wraps_the_same_metrics() -> None:
    """``model.calibrate`` computes nothing of its own: NaN where the core says None."""
    np = pytest.importorskip("numpy")
    calibrate = pytest.importorskip("model.calibrate")
    rng = random.Random(2)
    labels = [rng.random() < 0.1 for _ in range(500)]
    scores = [round(rng.random() + (0.4 if y else 0.0), 2) for y in labels]
    s, y = np.array(scores), np.array(labels, dtype=np.float32)
    assert calibrate.average_precision(s, y) == average_precision(scores, labels)
    assert calibrate.recall_at_precision(s, y, 0.8) == recall_at_precision(scores, labels, 0.8)
    assert np.isnan(calibrate.average_precision(s, np.zeros_like(y)))
