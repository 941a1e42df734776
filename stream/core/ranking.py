"""Ranking metrics without scikit-learn: average precision (PR-AUC) and recall at a
target precision, with tied scores ranked together as scikit-learn does."""

from __future__ import annotations

from collections.abc import Sequence


def _curve(scores: Sequence[float], labels: Sequence[bool]) -> list[tuple[float, float]]:
    """(precision, recall) after each distinct score threshold, highest first."""
    positives = sum(labels)
    if positives == 0:
        return []
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    points: list[tuple[float, float]] = []
    tp = fp = 0
    for n, i in enumerate(order):
        if labels[i]:
            tp += 1
        else:
            fp += 1
        last_of_tie = n + 1 == len(order) or scores[order[n + 1]] != scores[i]
        if last_of_tie:
            points.append((tp / (tp + fp), tp / positives))
    return points


def average_precision(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the precision-recall curve as a step sum; None without positives."""
    points = _curve(scores, labels)
    if not points:
        return None
    area, prev_recall = 0.0, 0.0
    for precision, recall in points:
        area += (recall - prev_recall) * precision
        prev_recall = recall
    return area


def recall_at_precision(
    scores: Sequence[float], labels: Sequence[bool], target: float = 0.9
) -> float | None:
    points = _curve(scores, labels)
    if not points:
        return None
    return max((r for p, r in points if p >= target), default=0.0)
