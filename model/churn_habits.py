"""Fitting the stream's habits model (``stream.detect.churn_habits``) on the training days'
churn points: each user's events are replayed into the stream's own ``UserState``, so that
the features at a point are the ones the worker computes at that tick, then a logistic
regression with a little L2 is fitted by Newton's method (numpy: a dozen features need no
library, and the weights must travel as JSON anyway).

The target is the labels' "gone for good as of the tick" where the labels name churners:
in a shop whose customers come back after months, "no visit within the horizon" at a
training tick is mostly about when a loyal customer's next visit falls, which no habit
predicts, and a model fitted to it learns that long silences mean staying. With daily
visitors the two targets agree. Without churn labels, the horizon target."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from model.dataset import Corpus, Examples
from stream.core.schema import Event
from stream.core.state import StateLimits, UserState
from stream.detect.btyd import BGNBD
from stream.detect.churn_habits import FEATURES, HabitModel, habit_features


def point_features(
    corpus: Corpus, ex: Examples, horizon_days: float, params: BGNBD
) -> npt.NDArray[np.float64]:
    """``FEATURES`` at each of ``ex``'s points, from the user's events before it."""
    out = np.zeros((len(ex), len(FEATURES)))
    limits = StateLimits()
    order = np.lexsort((ex.end, ex.user))
    state, user, fed = UserState(), -1, 0
    for i in order:
        u, end = int(ex.user[i]), int(ex.end[i])
        if u != user:
            state, user, fed = UserState(), u, 0
        for ev in corpus.events[u][fed:end]:
            state.add(_event(ev, corpus.user_ids[u]), limits)
        fed = max(fed, end)
        out[i] = habit_features(state, int(ex.ts[i]), horizon_days, params)
    return out


def _event(row: dict[str, Any], user_id: str) -> Event:
    fields = {k: v for k, v in row.items() if k != "flags" and v is not None}
    fields["user_id"] = user_id
    return Event.model_validate(fields)


def habit_targets(corpus: Corpus, ex: Examples) -> npt.NDArray[np.float64]:
    """Per point: 1 if the labels say the user was gone for good by the tick (their last
    activity before it), else 0; the horizon target where the labels name no churner."""
    if not corpus.churned_at:
        return (ex.y[:, -1] > 0.5).astype(np.float64)
    gone = [corpus.churned_at.get(int(u), ts) < ts for u, ts in zip(ex.user, ex.ts, strict=True)]
    return np.array(gone, np.float64)


def fit_habits(
    x: npt.NDArray[np.float64], y: npt.NDArray[Any], params: BGNBD, l2: float = 1.0
) -> HabitModel:
    """Logistic regression on standardised features (Newton's method, L2 on the weights)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0  # a constant feature: its weight stays near zero
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
    t = (np.asarray(y) > 0.5).astype(np.float64)
    w = np.zeros(z.shape[1])
    w[0] = np.log((t.mean() + 1e-6) / (1.0 - t.mean() + 1e-6))
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
        grad = z.T @ (p - t) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return HabitModel(
        tuple(float(v) for v in mean),
        tuple(float(v) for v in scale),
        tuple(float(v) for v in w[1:]),
        float(w[0]),
        params,
    )


def habit_scores(model: HabitModel, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.array([model.probability(list(row)) for row in x])
