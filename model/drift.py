"""Drift: how far live traffic has moved from the data a bundle was trained on.

A build records reference distributions in the bundle's manifest (``drift_reference``):
for each model feature at the decision event, how many training and validation windows
fall in each code (categorical; rare codes pooled) or quantile bin (numeric); for each
score kind, how many calibrated validation scores fall in each quantile bin. The worker
keeps a sliding window of the latest decisions' features and scores (``DriftWindow``) and
reports the population stability index, sum((live - ref) * ln(live / ref)), per feature
group (the largest of its features) and per score kind. Rules of thumb: below 0.1
stable, 0.1 to 0.25 moving, above 0.25 shifted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from model.features import KINDS, NOW_TYPE, TYPE_INDEX, FeatureSpec

# Feature groups, named as the occlusion explanations name theirs where they overlap. Left
# out: the seller bucket (a hash of the seller id; which sellers sell moves every day) and
# the hour of day (a window shorter than a day sees some hours only): both move without the
# model's inputs drifting.
GROUPS: dict[str, tuple[str, ...]] = {
    "event_type": ("type",),
    "new_device_ip_country": (
        "new_device_id", "new_ip", "new_country",
        "distinct_devices", "distinct_ips", "distinct_countries",
    ),
    "new_instrument": ("new_instrument_id", "distinct_instruments"),
    "failed_attempts": ("status", "failed_so_far"),
    "amounts": ("price", "amount", "log_price", "log_amount", "log_quantity"),
    "timing": ("gap", "log_gap"),
    "catalogue": (
        "category", "payment_method", "new_item_id", "new_seller_id", "new_order_id",
    ),
    "account_age": ("log_age",),
    "reviews": ("rating",),
}  # fmt: skip
NUM_BINS = 10
SMOOTHING = 0.5
MIN_SHARE = 0.01  # categorical codes below this share of the reference are pooled
MIN_SAMPLES = 200  # fewer live values than this give no index (too noisy to alert on)
PURCHASE = TYPE_INDEX["purchase"]

FloatArray = npt.NDArray[np.float64]


def psi(live: FloatArray, ref: FloatArray) -> float:
    """The population stability index of two histograms of the same bins (counts)."""
    a, e = _shares(live), _shares(ref)
    return float(np.sum((a - e) * np.log(a / e)))


def _shares(counts: FloatArray) -> FloatArray:
    # Half a count added to every bin: an empty bin on one side would make the index
    # infinite, and sparse bins (rare codes) would otherwise dominate it with noise.
    smoothed = counts + SMOOTHING
    out: FloatArray = smoothed / smoothed.sum()
    return out


def _edges(values: FloatArray) -> list[float]:
    """Inner quantile edges; repeated ones merged (a feature that is often 0, say)."""
    if not len(values):
        return []
    qs = np.quantile(values, np.linspace(0, 1, NUM_BINS + 1)[1:-1])
    return [float(q) for q in np.unique(qs)]


def _binned(values: npt.NDArray[Any], edges: list[float]) -> FloatArray:
    bins = np.searchsorted(edges, np.asarray(values, dtype=np.float64), side="right")
    return np.bincount(bins, minlength=len(edges) + 1).astype(np.float64)


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
        counts = np.bincount(cat[:, j].astype(np.int64), minlength=size)[:size]
        # Codes rarer than MIN_SHARE share one bin: sparse bins measure noise, not drift.
        kept = np.flatnonzero(counts >= MIN_SHARE * max(len(cat), 1))
        binned = [
            *counts[kept].astype(np.float64).tolist(),
            float(counts.sum() - counts[kept].sum()),
        ]
        features[name] = {"codes": kept.tolist(), "counts": binned}
    for j, name in enumerate(spec.num_features):
        edges = _edges(num[:, j].astype(np.float64))
        features[name] = {"edges": edges, "counts": _binned(num[:, j], edges).tolist()}
    score_ref = {}
    for kind, values in scores.items():
        edges = _edges(np.asarray(values, dtype=np.float64))
        score_ref[kind] = {"edges": edges, "counts": _binned(values, edges).tolist()}
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
            entry = self.ref["features"][name]
            counts = np.bincount(cat[:, j].astype(np.int64)).astype(np.float64)
            kept = np.array([counts[c] if c < len(counts) else 0.0 for c in entry["codes"]])
            live = np.append(kept, len(cat) - kept.sum())
            per[name] = psi(live, np.asarray(entry["counts"], dtype=np.float64))
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
