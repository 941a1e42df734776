from __future__ import annotations

import random

import pytest

from stream.core.ranking import average_precision, recall_at_precision


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
