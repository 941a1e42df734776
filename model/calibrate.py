"""Calibration, thresholds and ranking metrics over numpy arrays (the scorer imports this);
the ranking metrics themselves are the core's (``stream.core.ranking``), wrapped.

Platt scaling maps a raw logit z to sigmoid(a * z + b), fitted by Newton's method on
validation data, so scores read as probabilities. Thresholds are then chosen on the
calibrated validation scores: the lowest one whose precision reaches the target, falling
back to an alert budget (a top fraction) when no threshold reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.core import ranking

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.NDArray[Any]


def sigmoid(z: ArrayLike) -> FloatArray:
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


@dataclass(frozen=True)
class Platt:
    a: float = 1.0
    b: float = 0.0

    def apply(self, logits: ArrayLike) -> FloatArray:
        return sigmoid(self.a * np.asarray(logits, dtype=np.float64) + self.b)

    def to_json(self) -> dict[str, Any]:
        return {"method": "platt", "a": self.a, "b": self.b}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Platt:
        if data.get("method") != "platt":
            raise ValueError(f"unknown calibration method {data.get('method')!r}")
        return cls(float(data["a"]), float(data["b"]))


def fit_platt(logits: ArrayLike, labels: ArrayLike, iters: int = 50, l2: float = 1e-3) -> Platt:
    """Fit (a, b) by regularised Newton steps on the log loss (Platt's target smoothing)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    n_pos, n_neg = y.sum(), len(y) - y.sum()
    if n_pos == 0 or n_neg == 0:
        return Platt()
    # Platt's smoothed targets keep the fit finite on separable data.
    t = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    x = np.stack([z, np.ones_like(z)], axis=1)

    def loss(w: FloatArray) -> float:
        m = x @ w  # log loss written with logaddexp so large margins stay finite
        return float(
            np.sum(t * np.logaddexp(0.0, -m) + (1 - t) * np.logaddexp(0.0, m)) + 0.5 * l2 * w @ w
        )

    w = np.array([0.0, float(np.log((n_pos + 1) / (n_neg + 1)))])
    current = loss(w)
    for _ in range(iters):
        p = sigmoid(x @ w)
        grad = x.T @ (p - t) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6 and loss(w - scale * step) > current:
            scale /= 2  # damped Newton: plain steps can oscillate far from the optimum
        w = w - scale * step
        previous, current = current, loss(w)
        if previous - current < 1e-10 * max(1.0, abs(current)):
            break
    return Platt(float(w[0]), float(w[1]))


def _pr_curve(scores: ArrayLike, labels: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Precision, recall and threshold at each distinct score, highest score first: the
    core's curve (``stream.core.ranking``) as arrays."""
    points = ranking.pr_curve(_floats(scores), _flags(labels))
    curve = np.array(points, dtype=np.float64).reshape(-1, 3)
    return curve[:, 0], curve[:, 1], curve[:, 2]


def average_precision(scores: ArrayLike, labels: ArrayLike) -> float:
    """PR-AUC as average precision (step-wise, ties grouped), NaN without positives."""
    ap = ranking.average_precision(_floats(scores), _flags(labels))
    return float("nan") if ap is None else ap


def roc_auc(scores: ArrayLike, labels: ArrayLike) -> float:
    """ROC AUC (ties count half), NaN without both classes."""
    auc = ranking.roc_auc(_floats(scores), _flags(labels))
    return float("nan") if auc is None else auc


def recall_at_precision(scores: ArrayLike, labels: ArrayLike, target: float = 0.9) -> float:
    recall = ranking.recall_at_precision(_floats(scores), _flags(labels), target)
    return float("nan") if recall is None else recall


def _floats(values: ArrayLike) -> list[float]:
    return list(np.asarray(values, dtype=np.float64).ravel().tolist())


def _flags(labels: ArrayLike) -> list[bool]:
    return list((np.asarray(labels, dtype=np.float64).ravel() > 0).tolist())


def choose_threshold(
    scores: ArrayLike,
    labels: ArrayLike,
    target_precision: float = 0.9,
    alert_budget: float = 0.005,
) -> dict[str, Any]:
    """The threshold with the best recall at ``target_precision``, else the alert budget."""
    s = np.asarray(scores, dtype=np.float64)
    precision, recall, thr = _pr_curve(s, labels)
    ok = precision >= target_precision
    if np.asarray(labels).sum() > 0 and ok.any():
        i = int(np.argmax(np.where(ok, recall, -1.0)))
        return {
            "threshold": float(thr[i]),
            "rule": "target_precision",
            "target_precision": target_precision,
            "val_precision": float(precision[i]),
            "val_recall": float(recall[i]),
        }
    threshold = float(np.quantile(s, 1.0 - alert_budget)) if len(s) else 1.0
    alerts = s >= threshold
    y = np.asarray(labels, dtype=np.float64)
    return {
        "threshold": threshold,
        "rule": "alert_budget",
        "alert_budget": alert_budget,
        "val_precision": float(y[alerts].mean()) if alerts.any() else 0.0,
        "val_recall": float(y[alerts].sum() / max(y.sum(), 1.0)),
    }


def alert_precision(
    scores: ArrayLike,
    labels: ArrayLike,
    users: ArrayLike,
    ts: ArrayLike,
    threshold: float,
    cooldown_ms: int,
    judged: ArrayLike | None = None,
) -> tuple[float, int]:
    """Precision and count of the alerts a stream would raise at ``threshold``: a decision
    at or above it alerts unless its user alerted less than ``cooldown_ms`` before. Many
    decisions of one fraudster make few alerts; each honest decision above it makes one.

    With ``judged`` (per decision: whether its label is known either way) only the alerts
    on judged decisions are counted; the others still start their user's cooldown."""
    s, y = np.asarray(scores, np.float64), np.asarray(labels, np.float64)
    u, t = np.asarray(users), np.asarray(ts, np.int64)
    known = np.ones(len(s), np.bool_) if judged is None else np.asarray(judged, np.bool_)
    above = np.flatnonzero(s >= threshold)
    last: dict[Any, int] = {}
    right = count = 0
    for i in above[np.lexsort((t[above], u[above]))]:
        prev = last.get(u[i])
        if prev is not None and t[i] - prev < cooldown_ms:
            continue
        last[u[i]] = int(t[i])
        if known[i]:
            count += 1
            right += int(y[i] > 0)
    return (right / count if count else 0.0), count


def raise_for_alerts(
    chosen: dict[str, Any],
    scores: ArrayLike,
    labels: ArrayLike,
    users: ArrayLike,
    ts: ArrayLike,
    cooldown_ms: int,
    min_alerts: int = 1,
    judged: ArrayLike | None = None,
) -> dict[str, Any]:
    """``chosen`` (from ``choose_threshold``) raised, if need be, to the lowest threshold
    whose alerts (see ``alert_precision``) reach the same target precision.

    ``judged`` marks the decisions whose label is known either way (labels that are partial,
    such as analysts' verdicts on some cases of a pattern): then precisions and counts are
    over the judged alerts only, as the promotion rule of a retrain judges them.

    A precision measured on fewer than ``min_alerts`` alerts is noise, not evidence. Where
    the per-decision threshold raises that few alerts and they reach the target, nothing
    contradicts it and it stands: it met the target over every validation decision, which
    are many more (rule ``target_precision_few_alerts``). Otherwise, where no threshold
    reaches the target on ``min_alerts``, the validation days cannot place it, and the
    calibrated probability stands in for them: at least the target precision itself (a
    decision scored p is fraud with probability p). That fallback is high where labels are
    incomplete (unconfirmed cases calibrate as honest, so a look-alike of a half-confirmed
    pattern scores about one half), which is when a retrain's validation is thin."""
    target = chosen.get("target_precision")
    if target is None:
        return chosen
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, np.float64)

    def at(threshold: float, rule: str, precision: float, count: int) -> dict[str, Any]:
        hit = s >= threshold
        return {
            **chosen,
            "val_precision": float(y[hit].mean()) if hit.any() else 0.0,
            "val_recall": float(y[hit].sum() / max(y.sum(), 1.0)),
            "threshold": threshold,
            "rule": rule,
            "val_alert_precision": precision,
            "val_alerts": count,
            "per_decision_threshold": chosen["threshold"],
            **({} if judged is None else {"val_alerts_counted": "judged"}),
        }

    base = float(chosen["threshold"])
    precision, count = alert_precision(s, y, users, ts, base, cooldown_ms, judged)
    if 0 < count < min_alerts and precision >= target:
        return at(base, "target_precision_few_alerts", precision, count)
    for threshold in np.unique(s[s >= base]):
        precision, count = alert_precision(s, y, users, ts, float(threshold), cooldown_ms, judged)
        if count < min_alerts:
            break  # alerts thin out as the threshold rises
        if precision >= target:
            return at(float(threshold), "target_alert_precision", precision, count)
    fallback = max(base, float(target))
    measured = alert_precision(s, y, users, ts, fallback, cooldown_ms, judged)
    return at(fallback, "calibrated_target_precision", *measured)


def ranking_metrics(scores: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    y = np.asarray(labels)
    return {
        "pr_auc": average_precision(scores, y),
        "roc_auc": roc_auc(scores, y),
        "recall_at_p90": recall_at_precision(scores, y, 0.9),
        "n": float(len(y)),
        "positives": float(y.sum()),
    }
