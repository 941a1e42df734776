"""The LightGBM baseline: gradient-boosted trees on hand-made window features.

Features come from the same encoded windows the transformer sees, aggregated the way an
analyst would: the decision event's own codes and numbers, counts of each event type,
failed outcomes and first-seen devices, IPs, countries, instruments and sellers in the
window, money totals, timing, and how many events fall in the last hour, day, 3 and 7 days
(activity trends; for a churn point, before the clock).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from model.features import EVENT_TYPES, NEW, FeatureSpec
from stream.core.timeutil import DAY_S, HOUR_S

FloatArray = npt.NDArray[np.float32]


def window_features(
    cat: npt.NDArray[Any], num: npt.NDArray[Any], mask: npt.NDArray[Any], spec: FeatureSpec
) -> FloatArray:
    m = mask.astype(np.float32)
    names = spec.cat_features
    types = cat[..., names.index("type")]
    type_counts = np.stack([((types == t + 1) * m).sum(1) for t in range(len(EVENT_TYPES))], 1)
    failed = ((cat[..., names.index("status")] == 3) * m).sum(1, keepdims=True)
    novelty_cols = [i for i, name in enumerate(names) if name.startswith("new_")]
    novel = (cat[..., novelty_cols] == NEW).sum(1).astype(np.float32)
    # Novelty in the last hour-ish of events: the final eight positions.
    recent_novel = (cat[:, -8:, novelty_cols] == NEW).sum(1).astype(np.float32)
    log_amount, log_gap = num[..., 1] * m, num[..., 2] * m
    money = np.stack([log_amount.sum(1), log_amount.max(1), np.expm1(log_amount).sum(1)], 1)
    timing = np.stack([log_gap.sum(1), np.where(m > 0, log_gap, 99).min(1), m.sum(1)], 1)
    age_s = np.expm1(num[..., 9].astype(np.float64) * 10.0)
    recency = np.stack([((age_s < limit) * m).sum(1) for limit in _RECENCY_S], 1)
    last = np.concatenate([cat[:, -1].astype(np.float32), num[:, -1]], 1)
    return np.concatenate(
        [last, type_counts, failed, novel, recent_novel, money, timing, recency], 1
    ).astype(np.float32)


_RECENCY_S = (HOUR_S, DAY_S, 3 * DAY_S, 7 * DAY_S)


class LightGBMBaseline:
    """One binary LightGBM model per kind."""

    def __init__(self, n_estimators: int = 300, threads: int = 2, seed: int = 0) -> None:
        # LightGBM's native API: its scikit-learn wrapper would need scikit-learn too.
        self.rounds = n_estimators
        self.params: dict[str, Any] = {
            "objective": "binary",
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_data_in_leaf": 10,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "feature_fraction": 0.8,
            "num_threads": threads,
            "seed": seed,
            "verbose": -1,
        }
        self.models: dict[int, Any] = {}

    def fit(self, x: FloatArray, y: npt.NDArray[np.float32], kinds: list[int]) -> None:
        import lightgbm as lgb

        for k in kinds:
            has = y[:, k] >= 0
            labels = y[has, k]
            if labels.min() == labels.max():
                continue
            data = lgb.Dataset(x[has], label=labels.astype(np.int32))
            self.models[k] = lgb.train(self.params, data, num_boost_round=self.rounds)

    def predict(self, x: FloatArray, kind: int) -> npt.NDArray[np.float64]:
        if kind not in self.models:
            return np.zeros(len(x))
        proba: npt.NDArray[np.float64] = np.asarray(self.models[kind].predict(x), np.float64)
        return proba
