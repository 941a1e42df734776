"""Churn from habits and experience: a logistic model over what a user's state says beyond
BG/NBD's frequency and recency, fitted by ``fraudstream build`` (``model.churn_habits``)
and run by the stream where it ranks the validation days best.

BG/NBD reads only visits, tenure and idle time, so it cannot see why customers leave. Real
leavers' last weeks look different: shallower visits, smaller baskets, refunds, declined
payments, bad reviews. The features read those from the state's window (the events of the
last 30 days of activity, ``StateLimits.max_age_ms``) against the user's whole-history
averages, beside BG/NBD's own score. Weights travel as JSON in the bundle's manifest:
nothing is unpickled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from stream.core.state import (
    AMOUNT,
    RATING,
    STATUS,
    STATUS_CODE,
    TS,
    TYPE,
    TYPE_CODE,
    VISIT_GAP_MS,
    UserState,
)
from stream.core.timeutil import DAY_MS
from stream.detect.btyd import BGNBD
from stream.detect.churn import History

FEATURES = (
    "btyd_logit",  # BG/NBD's probability of no visit within the horizon, as a logit
    "btyd_by_visits",  # the same times log visits: BG/NBD says more of long histories
    "log_idle_days",
    "log_visits",
    "log_tenure_days",
    "idle_over_gap",  # idle time over the user's mean gap between visits (recency by habit)
    "refunds",  # in the window
    "bad_reviews",  # ratings of 1 or 2 in the window
    "failed_payments",  # in the window
    "window_purchases",
    "depth_trend",  # events per visit in the window against the whole history's, log ratio
    "spend_trend",  # spend per visit in the window against the whole history's, log ratio
    "last_visit_views",  # items viewed in the last visit that browsed (log)
    "last_visit_bought",  # whether that visit ended in a purchase
)

_REFUND, _REVIEW = TYPE_CODE["refund"], TYPE_CODE["review"]
_PAYMENT, _PURCHASE = TYPE_CODE["payment"], TYPE_CODE["purchase"]
_FAILED = STATUS_CODE["failed"]
_ITEM_VIEW = TYPE_CODE["item_view"]
_BROWSING = frozenset((_ITEM_VIEW, TYPE_CODE["search"]))


def habit_features(
    state: UserState, now_ms: int, horizon_days: float, params: BGNBD
) -> list[float]:
    """``FEATURES`` of a user with events, as of ``now_ms``."""
    h = History.of(state, now_ms)
    p = min(max(params.p_no_visit(h.x, h.t_x, h.T, horizon_days), 1e-6), 1.0 - 1e-6)
    visits = max(1, state.visits)
    idle = max(0.0, (now_ms - state.max_ts) / DAY_MS)
    gap = h.t_x / h.x if h.x > 0 else horizon_days
    rows = state.events
    counts = _window_counts(rows)
    w_visits = max(1, counts["visits"])
    depth_all = state.total / visits
    spend_all = state.spend / visits
    logit = math.log(p / (1.0 - p))
    return [
        logit,
        logit * math.log(visits),
        math.log1p(idle),
        math.log(visits),
        math.log1p(h.t_x),
        math.log1p(idle / max(gap, 1.0 / 24.0)),
        float(counts["refunds"]),
        float(counts["bad_reviews"]),
        float(counts["failed_payments"]),
        float(counts["purchases"]),
        math.log((len(rows) / w_visits + 1.0) / (depth_all + 1.0)),
        math.log((counts["spend"] / w_visits + 1.0) / (spend_all + 1.0)),
        math.log1p(counts["last_views"]),
        counts["last_bought"],
    ]


def _window_counts(rows: Sequence[Sequence[object]]) -> dict[str, float]:
    names = ("visits", "refunds", "bad_reviews", "failed_payments", "purchases", "spend")
    out = dict.fromkeys((*names, "last_views", "last_bought"), 0.0)
    prev: int | None = None
    views = bought = 0.0  # of the current visit
    for r in rows:
        ts, kind = int(r[TS]), r[TYPE]  # type: ignore[call-overload]
        if prev is None or ts - prev > VISIT_GAP_MS:
            out["visits"] += 1
            views = bought = 0.0
        prev = ts
        if kind in _BROWSING:
            views += kind == _ITEM_VIEW
            # A visit that browsed; later refunds and reviews (visits of their own) keep it.
            out["last_views"], out["last_bought"] = views, bought
        if kind == _REFUND:
            out["refunds"] += 1
        elif kind == _REVIEW and r[RATING] is not None and int(r[RATING]) <= 2:  # type: ignore[call-overload]
            out["bad_reviews"] += 1
        elif kind == _PAYMENT and r[STATUS] == _FAILED:
            out["failed_payments"] += 1
        elif kind == _PURCHASE:
            out["purchases"] += 1
            bought = 1.0
            if views:
                out["last_bought"] = 1.0
            out["spend"] += float(r[AMOUNT] or 0.0)  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class HabitModel:
    """Standardised features, then a logistic regression: the churn probability."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    btyd: BGNBD  # the fitted BG/NBD whose score is the first feature

    def __post_init__(self) -> None:
        n = len(FEATURES)
        for name in ("mean", "scale", "weights"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"habits.{name}: {n} values expected, one per feature")
        if min(self.scale) <= 0.0:
            raise ValueError("habits.scale: every value must be positive")

    def score(self, state: UserState, now_ms: int, horizon_days: float) -> float:
        f = habit_features(state, now_ms, horizon_days, self.btyd)
        return self.probability(f)

    def probability(self, f: Sequence[float]) -> float:
        z = self.bias + sum(
            w * (v - m) / s
            for w, v, m, s in zip(self.weights, f, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-700.0, min(700.0, z))))

    def to_json(self) -> dict[str, object]:
        return {
            "features": list(FEATURES),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "bias": self.bias,
            "btyd": self.btyd.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict[str, object]) -> HabitModel:
        if d.get("features") != list(FEATURES):
            raise ValueError(
                f"habits.features: the bundle's {d.get('features')} are not this "
                f"version's {list(FEATURES)}"
            )

        def floats(name: str) -> tuple[float, ...]:
            return tuple(float(v) for v in d[name])  # type: ignore[attr-defined]

        return cls(
            floats("mean"),
            floats("scale"),
            floats("weights"),
            float(d["bias"]),  # type: ignore[arg-type]
            BGNBD.from_json(d["btyd"]),  # type: ignore[arg-type]
        )
