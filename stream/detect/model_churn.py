"""Churn verdicts at a clock tick: every user with events is scored, by the sequence model,
by the habits model (``stream.detect.churn_habits``), by BG/NBD with a bundle's fitted
parameters, or by the rule (BG/NBD with prior ones), and
the tick's alert budget goes to the highest probability times value at risk.

Verdicts alert through ``stream.detect.churn.churn_detection``: once per inactivity
episode, saying which detector scored them. The worker and the backtest both call
``churn_verdicts``, at the same ticks with the same states, so they agree (up to the
budget, which the worker shares out per partition).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from stream.core.alerts import Detection, Reason
from stream.core.state import Row, UserState
from stream.detect.btyd import BGNBD
from stream.detect.churn import (
    RULES,
    ChurnConfig,
    Scorer,
    churn_detection,
    churn_score,
    value_at_risk,
)
from stream.detect.churn_habits import HabitModel

HABITS = Scorer(
    "habits",
    None,
    (Reason("habits.churn", "habits model: recency, frequency and the last weeks' visits, "
            "baskets, refunds, declined payments and reviews"),),
)  # fmt: skip


class ChurnModel(Protocol):
    """What churn needs from a model (``model.sequence_model.SequenceModel`` provides it)."""

    def threshold(self, kind: str) -> float | None: ...

    def idle_scores(self, windows: list[list[Row]], now_ms: int, batch: int) -> list[float]: ...


@dataclass
class ChurnVerdict:
    user_id: str
    state: UserState
    score: float
    detection: Detection | None


def churn_for(model: Any, cfg: ChurnConfig | None = None) -> ChurnConfig:
    """Churn settings with the horizon and clock interval a bundle was built for."""
    cfg = cfg or ChurnConfig()
    if model is None:
        return cfg
    horizon = getattr(model, "churn_horizon_days", cfg.horizon_days)
    interval = getattr(model, "churn_interval_ms", cfg.interval_ms)
    return dataclasses.replace(cfg, horizon_days=horizon, interval_ms=interval)


def bundle_churn(model: Any, cfg: ChurnConfig) -> tuple[ChurnConfig, BGNBD | None]:
    """The churn settings a bundle was built for (its horizon, its threshold where BG/NBD
    decides) and its fitted BG/NBD parameters; ``cfg`` as it is without a bundle."""
    if model is None:
        return cfg, None
    horizon = getattr(model, "churn_horizon_days", None)
    if horizon is not None:
        cfg = dataclasses.replace(cfg, horizon_days=float(horizon))
    params = getattr(model, "churn_btyd", None)
    threshold = getattr(model, "churn_btyd_threshold", None)
    if params is not None and threshold is not None:
        cfg = dataclasses.replace(cfg, threshold=float(threshold))
    return cfg, params


def churn_verdicts(
    users: Sequence[tuple[str, UserState]],
    now_ms: int,
    cfg: ChurnConfig,
    model: ChurnModel | None = None,
    batch: int = 256,
    allowance: int | None = None,
) -> list[ChurnVerdict]:
    """Score every user in ``users`` that has events, as of ``now_ms``; decide alerts,
    at most ``allowance`` of them (None: no limit)."""
    cfg, params = bundle_churn(model, cfg)
    habits: HabitModel | None = getattr(model, "churn_habits", None)
    scored = [(u, s) for u, s in users if s.events]
    threshold = model.threshold("churn") if model is not None else None
    if model is not None and threshold is not None:
        scores = model.idle_scores([s.events for _, s in scored], now_ms, batch)
        scorer = Scorer("model", None, ())
    elif habits is not None:
        scores = [habits.score(s, now_ms, cfg.horizon_days) for _, s in scored]
        threshold = cfg.threshold
        scorer = HABITS
    else:
        scores = [churn_score(s, now_ms, cfg, params) or 0.0 for _, s in scored]
        threshold = cfg.threshold
        scorer = RULES if params is None else Scorer(
            "btyd", None, (Reason("btyd.churn", "BG/NBD fitted on the shop's history"),)
        )  # fmt: skip
    verdicts = [ChurnVerdict(u, s, p, None) for (u, s), p in zip(scored, scores, strict=True)]
    due = [
        (value_at_risk(v.state, now_ms, cfg, params), v)
        for v in verdicts
        if v.score >= threshold and v.state.cooldowns.get("churn") != v.state.max_ts
    ]
    # Probability times value at risk (plus one, so that users who never bought still rank).
    due.sort(key=lambda d: (-d[1].score * (1.0 + d[0]), d[1].user_id))
    for value, v in due if allowance is None else due[:allowance]:
        lead = (
            (Reason("model.churn", f"sequence model score {v.score:.3f} >= {threshold:.3f}"),)
            if scorer.detector == "model"
            else ()
        )
        v.detection = churn_detection(
            v.user_id, v.state, now_ms, v.score, cfg, threshold, lead, scorer, value
        )
    return verdicts
