"""Ranking metrics without scikit-learn: average precision (PR-AUC) and recall at a
target precision, with tied scores ranked together as scikit-learn does.

The one implementation for the stream's reports and the model's build (which wraps it
for numpy arrays in ``model.calibrate``); plain Python, as the core needs no numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class CurvePoint(NamedTuple):
    """Precision and recall of alerting on every score at or above ``threshold``."""

    precision: float
    recall: float
    threshold: float


def pr_curve(scores: Sequence[float], labels: Sequence[bool]) -> list[CurvePoint]:
    """One point per distinct score, highest first; empty without positives."""
    positives = sum(1 for y in labels if y)
    if positives == 0:
        return []
    order = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
    points: list[CurvePoint] = []
    tp = fp = 0
    for n, i in enumerate(order):
        if labels[i]:
            tp += 1
        else:
            fp += 1
        last_of_tie = n + 1 == len(order) or scores[order[n + 1]] != scores[i]
        if last_of_tie:
            points.append(CurvePoint(tp / (tp + fp), tp / positives, scores[i]))
    return points


def average_precision(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the precision-recall curve as a step sum; None without positives."""
    points = pr_curve(scores, labels)
    if not points:
        return None
    area, prev_recall = 0.0, 0.0
    for precision, recall, _ in points:
        area += (recall - prev_recall) * precision
        prev_recall = recall
    return area


def recall_at_precision(
    scores: Sequence[float], labels: Sequence[bool], target: float = 0.9
) -> float | None:
    """The best recall among thresholds whose precision reaches ``target``; None without
    positives."""
    points = pr_curve(scores, labels)
    if not points:
        return None
    return max((p.recall for p in points if p.precision >= target), default=0.0)


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance that a random positive outscores a random
    negative, ties counting half (the Mann-Whitney statistic); None without both classes."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    positives = sum(1 for y in labels if y)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    rank_sum, n = 0.0, 0
    while n < len(order):
        end = n
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[n]]:
            end += 1
        mid_rank = (n + end) / 2 + 1  # ranks are 1-based; a tie shares their mean
        rank_sum += mid_rank * sum(1 for i in order[n : end + 1] if labels[i])
        n = end + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


# History length buckets for churn metrics, by events seen: (label, low, high inclusive).
HISTORY_BUCKETS: tuple[tuple[str, int, int], ...] = (
    ("1", 1, 1),
    ("2-4", 2, 4),
    ("5-19", 5, 19),
    ("20+", 20, 1 << 62),
)


def history_bucket(events: int) -> str:
    for label, lo, hi in HISTORY_BUCKETS:
        if lo <= events <= hi:
            return label
    return "0"
