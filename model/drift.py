"""Drift: how far live traffic has moved from the data a bundle was trained on.

A build records reference distributions in the bundle's manifest (``drift_reference``):
for each model feature at the decision event, the share of validation windows in each
code (categorical) or quantile bin (numeric); for each score kind, the share of calibrated
validation scores in each quantile bin. The worker keeps a sliding window of the latest
decisions' features and scores (``DriftWindow``) and reports the population stability
index, sum((live - ref) * ln(live / ref)), per feature group (the largest of its features)
and per score kind. Rules of thumb: below 0.1 stable, 0.1 to 0.25 moving, above 0.25
shifted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from model.features import KINDS, NOW_TYPE, TYPE_INDEX, FeatureSpec

# Feature groups, named as the occlusion explanations name theirs where they overlap.
GROUPS: dict[str, tuple[str, ...]] = {
    "event_type": ("type",),
    "new_device_ip_country": (
        "new_device_id", "new_ip", "new_country",
        "distinct_devices", "distinct_ips", "distinct_countries",
    ),
    "new_instrument": ("new_instrument_id", "distinct_instruments"),
    "failed_attempts": ("status", "failed_so_far"),
    "amounts": ("price", "amount", "log_price", "log_amount", "log_quantity"),
    "timing": ("gap", "hour", "log_gap"),
    "catalogue": (
        "category", "seller", "payment_method", "new_item_id", "new_seller_id", "new_order_id",
    ),
    "account_age": ("log_age",),
    "reviews": ("rating",),
}  # fmt: skip
NUM_BINS = 10
EPSILON = 1e-4  # share floor: an empty bin on one side would make the index infinite
MIN_SAMPLES = 200  # fewer live values than this give no index (too noisy to alert on)
PURCHASE = TYPE_INDEX["purchase"]

FloatArray = npt.NDArray[np.float64]


def psi(live: FloatArray, ref: FloatArray) -> float:
    """The population stability index of two histograms of the same bins (shares)."""
    a = np.maximum(live / max(live.sum(), 1e-12), EPSILON)
    e = np.maximum(ref / max(ref.sum(), 1e-12), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def _edges(values: FloatArray) -> list[float]:
    """Inner quantile edges; repeated ones merged (a feature that is often 0, say)."""
    if not len(values):
        return []
    qs = np.quantile(values, np.linspace(0, 1, NUM_BINS + 1)[1:-1])
    return [float(q) for q in np.unique(qs)]


def _binned(values: FloatArray, edges: list[float]) -> FloatArray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts.astype(np.float64)


def reference(
    cat: npt.NDArray[Any],
    num: npt.NDArray[Any],
    scores: Mapping[str, FloatArray],
    spec: FeatureSpec,
) -> dict[str, Any]:
    """The manifest's ``drift_reference`` from validation windows' last positions
    (``cat`` (n, n_cat), ``num`` (n, n_num)) and calibrated scores per kind."""
    decisions = cat[:, 0] != NOW_TYPE  # churn's clock rows are not events
    cat, num = cat[decisions], num[decisions]
    features: dict[str, Any] = {}
    for j, (name, size) in enumerate(zip(spec.cat_features, spec.cardinalities, strict=True)):
        codes = np.bincount(cat[:, j].astype(np.int64), minlength=size)[:size]
        features[name] = {"counts": codes.astype(np.float64).tolist()}
    for j, name in enumerate(spec.num_features):
        edges = _edges(num[:, j].astype(np.float64))
        counts = _binned(num[:, j].astype(np.float64), edges)
        features[name] = {"edges": edges, "counts": counts.tolist()}
    score_ref = {}
    for kind, values in scores.items():
        edges = _edges(np.asarray(values, dtype=np.float64))
        counts = _binned(np.asarray(values, dtype=np.float64), edges)
        score_ref[kind] = {"edges": edges, "counts": counts.tolist()}
    return {"bins": NUM_BINS, "features": features, "scores": score_ref, "samples": len(cat)}


class DriftWindow:
    """The latest ``size`` decisions' features and scores, against a bundle's reference."""

    def __init__(self, ref: Mapping[str, Any], spec: FeatureSpec, size: int = 5000) -> None:
        self.ref, self.spec, self.size = ref, spec, size
        self.cat: deque[npt.NDArray[Any]] = deque()
        self.num: deque[npt.NDArray[Any]] = deque()
        self.rows = 0
        self.scores: dict[str, deque[float]] = {k: deque(maxlen=size) for k in ref["scores"]}

    def observe(self, cat: npt.NDArray[Any], num: npt.NDArray[Any], out: Mapping[str, Any]) -> None:
        """One model call on decision windows: the last positions and their scores."""
        last_cat, last_num = np.array(cat[:, -1, :]), np.array(num[:, -1, :])
        self.cat.append(last_cat)
        self.num.append(last_num)
        self.rows += len(last_cat)
        while self.rows - len(self.cat[0]) >= self.size:  # keep at least ``size`` rows
            self.rows -= len(self.cat.popleft())
            self.num.popleft()
        purchases = last_cat[:, 0] == PURCHASE
        for kind in ("fraud", "brushing"):
            if kind in self.scores and kind in out:
                values = np.asarray(out[kind], dtype=np.float64)
                self.scores[kind].extend(values[purchases] if kind == "brushing" else values)

    def observe_idle(self, churn: list[float]) -> None:
        """Churn scores of users evaluated on the clock."""
        if "churn" in self.scores:
            self.scores["churn"].extend(churn)

    def feature_psi(self) -> dict[str, float]:
        """PSI per feature group; empty until ``MIN_SAMPLES`` decisions were seen."""
        if self.rows < MIN_SAMPLES:
            return {}
        cat = np.concatenate(list(self.cat))[-self.size :]
        num = np.concatenate(list(self.num))[-self.size :]
        per: dict[str, float] = {}
        for j, name in enumerate(self.spec.cat_features):
            ref = np.asarray(self.ref["features"][name]["counts"], dtype=np.float64)
            codes = np.bincount(cat[:, j].astype(np.int64), minlength=len(ref))[: len(ref)]
            per[name] = psi(codes.astype(np.float64), ref)
        for j, name in enumerate(self.spec.num_features):
            entry = self.ref["features"][name]
            live = _binned(num[:, j].astype(np.float64), entry["edges"])
            per[name] = psi(live, np.asarray(entry["counts"], dtype=np.float64))
        return {g: max(per[f] for f in members) for g, members in GROUPS.items()}

    def score_psi(self) -> dict[str, float]:
        """PSI per score kind with at least ``MIN_SAMPLES`` live scores."""
        out: dict[str, float] = {}
        for kind in KINDS:
            live = self.scores.get(kind)
            if live is None or len(live) < MIN_SAMPLES:
                continue
            entry = self.ref["scores"][kind]
            hist = _binned(np.asarray(live, dtype=np.float64), entry["edges"])
            out[kind] = psi(hist, np.asarray(entry["counts"], dtype=np.float64))
        return out
