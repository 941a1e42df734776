"""Churn verdicts at a clock tick, from the sequence model or from the rule.

The model scores each user with enough history on their recent events followed by a clock
token that carries their idle time (``SequenceModel.idle_scores``), in batches. Either way
a verdict alerts through ``stream.detect.churn.churn_detection``: once per inactivity episode.
The worker and the backtest both call ``churn_verdicts``, at the same ticks with the same
states, so they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from stream.core.alerts import Detection, Reason
from stream.core.state import Row, UserState
from stream.detect.churn import ChurnConfig, churn_detection, churn_score


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


def churn_verdicts(
    users: Sequence[tuple[str, UserState]],
    now_ms: int,
    cfg: ChurnConfig,
    model: ChurnModel | None = None,
    batch: int = 256,
) -> list[ChurnVerdict]:
    """Score every user in ``users`` that can be scored at ``now_ms``; decide alerts.

    With a model that scores churn, users with at least ``cfg.min_events`` events, all
    before ``now_ms``, are scored by it against the bundle's threshold; otherwise by the
    rule (``stream.detect.churn.churn_score``)."""
    threshold = model.threshold("churn") if model is not None else None
    if model is None or threshold is None:
        verdicts = []
        for user_id, state in users:
            score = churn_score(state, now_ms, cfg)
            if score is not None:
                det = churn_detection(user_id, state, now_ms, score, cfg)
                verdicts.append(ChurnVerdict(user_id, state, score, det))
        return verdicts
    chosen = [
        (user_id, state)
        for user_id, state in users
        if len(state.events) >= cfg.min_events and state.max_ts < now_ms
    ]
    scores = model.idle_scores([state.events for _, state in chosen], now_ms, batch)
    verdicts = []
    for (user_id, state), score in zip(chosen, scores, strict=True):
        lead = (Reason("model.churn", f"sequence model score {score:.3f} >= {threshold:.3f}"),)
        det = churn_detection(user_id, state, now_ms, score, cfg, threshold, lead)
        verdicts.append(ChurnVerdict(user_id, state, score, det))
    return verdicts
