"""Fraud decisions by the sequence model, in two steps.

``apply_user_event(..., defer_fraud=True)`` updates the user's state and hands back the
decision event as a ``PendingFraud`` (a snapshot of the window, decision event last). The
worker collects those across users for a micro-batch and scores them in one model call;
``decide`` then applies threshold and cooldown in the original event order, so the result
is what scoring each decision on arrival would have given. The backtest runs the same
two steps, which is what keeps stream and backtest in agreement.

An alert explains itself by occlusion: the window is scored again with each earlier event
hidden, and with groups of features neutralised; the biggest drops become its reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from stream.core.alerts import Detection, Reason
from stream.core.schema import EVENT_TYPES
from stream.core.state import (
    AMOUNT,
    EID,
    FLAGS,
    NEW_COUNTRY,
    NEW_DEVICE,
    NEW_INSTRUMENT,
    S_KIND,
    STATUS,
    STATUS_CODE,
    TS,
    TYPE,
    Row,
    UserState,
)
from stream.core.timeutil import HOUR_MS, format_ts
from stream.detect.rule_fraud import rule_fraud, rule_hits
from stream.detect.rules import RuleConfig, RuleHit

MODEL_COOLDOWN = "model"
TOP_EVENTS = 3  # events named in an alert's reasons
MIN_DROP = 0.01  # smaller contributions are noise, not reasons
# Feature groups of ``model.explain`` in words, as hidden by occlusion.
FEATURE_WORDS = {
    "new_device_ip_country": "the new device, IP address and country",
    "new_instrument": "the new payment instrument",
    "failed_attempts": "the failed payments and logins",
    "amounts": "the amounts and prices",
    "timing": "the time between events",
}


# Occlusion results for one window: (window index, drop) and (feature group, drop).
Explanation = tuple[list[tuple[int, float]], list[tuple[str, float]]]


@dataclass(frozen=True)
class PendingFraud:
    """A decision event waiting for its score."""

    state: UserState  # the live state: ``decide`` records the cooldown there
    window: list[Row]  # the user's events up to and including the decision event
    user_id: str
    seller_id: str | None
    # A purchase or review for the seller side, sent once scored (with the brushing score).
    seller_record: tuple[str, Row] | None = None

    @property
    def trigger(self) -> Row:
        return self.window[-1]


class FraudModel(Protocol):
    """What ``decide`` needs from a model; ``model.sequence_model`` provides it."""

    version: str

    def scores(self, windows: list[list[Row]]) -> dict[str, list[float]]: ...

    def explain_frauds(self, windows: list[list[Row]]) -> list[Explanation]: ...


@dataclass(frozen=True)
class ModelAlert:
    """A decision the model alerts on, to be explained (``explain``) before it is sent."""

    pending: PendingFraud
    score: float
    threshold: float
    hits: list[RuleHit]


def decide(
    pending: PendingFraud,
    score: float,
    threshold: float,
    cooldown_ms: int,
    rules: RuleConfig,
) -> list[Detection] | ModelAlert:
    """An alert when ``score`` crosses ``threshold`` and the user is not cooling down
    (a ``ModelAlert``: explaining it needs the model); the rules' findings on the same
    window, when any, join the model's reasons.

    Below the threshold the rules still decide: a rule that fires (and is not cooling
    down) raises its own alert, with the model's score as a reason. The rules know patterns
    a model trained on little data can miss. One fraud alert per user per cooldown either
    way: any fraud alert starts it, and while it runs neither the model nor a rule that
    had not fired yet alerts again."""
    state, ts = pending.state, pending.trigger[TS]
    last = state.cooldowns.get(MODEL_COOLDOWN)
    if last is not None and 0 <= ts - last < cooldown_ms:
        return []
    if score < threshold:
        return _rules_below_threshold(pending, score, threshold, cooldown_ms, rules)
    state.cooldowns[MODEL_COOLDOWN] = ts
    hits = rule_hits(pending.window, pending.trigger, rules)
    for hit in hits:
        state.cooldowns[hit.rule] = ts
    return ModelAlert(pending, score, threshold, hits)


def _rules_below_threshold(
    pending: PendingFraud, score: float, threshold: float, cooldown_ms: int, rules: RuleConfig
) -> list[Detection]:
    """The rules' own alerts (any firing rule not cooling down), the model's score as a
    reason; one of them starts the user's cooldown."""
    state, trigger = pending.state, pending.trigger
    _, found = rule_fraud(
        state, pending.window, trigger, pending.user_id, pending.seller_id, rules, cooldown_ms
    )
    if found:
        state.cooldowns[MODEL_COOLDOWN] = trigger[TS]
    model_reason = Reason(
        "model.score", f"sequence model score {score:.3f} (threshold {threshold:.3f})"
    )
    return [replace(d, reasons=(*d.reasons, model_reason)) for d in found]


def explain(alert: ModelAlert, explanation: Explanation) -> Detection:
    """The model's alert, explained by occlusion: the events and feature groups whose
    hiding lowers the score most, then the rules' findings and what was new."""
    pending, score, threshold, hits = alert.pending, alert.score, alert.threshold, alert.hits
    window, trigger = pending.window, pending.trigger
    events, features = explanation
    drivers = [(i, d) for i, d in events if d >= MIN_DROP][:TOP_EVENTS]
    reasons = [Reason("model.fraud", f"sequence model score {score:.3f} >= {threshold:.3f}")]
    # Events and feature groups together, the biggest drop first: most important first.
    measured = [(drop, _event_reason(window[i], score, drop)) for i, drop in drivers]
    measured += [
        (
            drop,
            Reason(f"model.feature.{name}", _without(score, drop, FEATURE_WORDS.get(name, name))),
        )
        for name, drop in features
        if drop >= MIN_DROP
    ]
    reasons += [r for _, r in sorted(measured, key=lambda m: -m[0])]
    reasons += [r for h in hits for r in h.reasons]
    reasons += novelty_reasons(window)
    recent = [r[EID] for r in window[-8:]][::-1]
    driving = [window[i][EID] for i, _ in drivers]
    evidence = dict.fromkeys([trigger[EID], *driving, *(e for h in hits for e in h.evidence)])
    evidence.update(dict.fromkeys(recent))
    return Detection(
        kind="fraud",
        subject_type="user",
        subject_id=pending.user_id,
        score=score,
        threshold=threshold,
        event_id=trigger[EID],
        event_ts=trigger[TS],
        reasons=tuple(reasons),
        evidence_event_ids=tuple(list(evidence)[:20]),
        user_id=pending.user_id,
        seller_id=pending.seller_id,
    )


def _without(score: float, drop: float, what: str) -> str:
    """An occlusion result as what was measured: the score with and without ``what``.
    Drops are not shares of the score and need not add up to it."""
    return f"the score falls from {score:.2f} to {max(0.0, score - drop):.2f} without {what}"


def _event_reason(row: Row, score: float, drop: float) -> Reason:
    what = [EVENT_TYPES[row[TYPE]], row[EID]]
    if row[STATUS] == STATUS_CODE["failed"]:
        what.insert(0, "the failed")
    else:
        what.insert(0, "the")
    if row[AMOUNT] is not None:
        what.append(f"of {row[AMOUNT]:,.2f}")
    what.append(f"at {format_ts(row[TS])}")
    return Reason("model.event", _without(score, drop, " ".join(what)))


def decide_all(
    pending: list[PendingFraud],
    model: FraudModel,
    threshold: float,
    cooldown_ms: int,
    rules: RuleConfig,
    max_batch: int = 256,
) -> tuple[dict[str, list[float]], list[list[Detection]]]:
    """Score decisions in model calls of at most ``max_batch`` windows, decide them in
    order, then explain the model's alerts together. Returns every kind's scores (fraud,
    and brushing where the bundle has it) and the fraud detections per decision."""
    scores: dict[str, list[float]] = {}
    for start in range(0, len(pending), max_batch):
        chunk = pending[start : start + max_batch]
        for kind, values in model.scores([p.window for p in chunk]).items():
            scores.setdefault(kind, []).extend(values)
    decided = [
        decide(p, s, threshold, cooldown_ms, rules)
        for p, s in zip(pending, scores["fraud"], strict=True)
    ]
    alerts = [d for d in decided if isinstance(d, ModelAlert)]
    explained = iter(model.explain_frauds([a.pending.window for a in alerts]))
    detections = [
        [explain(d, next(explained))] if isinstance(d, ModelAlert) else d for d in decided
    ]
    return scores, detections


def scored_seller_records(
    pending: list[PendingFraud], scores: dict[str, list[float]]
) -> list[tuple[str, Row]]:
    """The decisions' seller-side records, in order; purchases carry the brushing score
    when the bundle has a brushing head (``stream.detect.model_brushing`` uses it)."""
    brushing = scores.get("brushing")
    out = []
    for i, p in enumerate(pending):
        if p.seller_record is None:
            continue
        seller_id, row = p.seller_record
        if brushing is not None and row[S_KIND] == "purchase":
            row = (*row, round(brushing[i], 6))
        out.append((seller_id, row))
    return out


def novelty_reasons(window: list[Row]) -> list[Reason]:
    """What was new for this user in the last day of the window."""
    horizon = window[-1][TS] - 24 * HOUR_MS
    recent = [r for r in window if r[TS] >= horizon]
    out = []
    for bit, what in (
        (NEW_DEVICE, "device"),
        (NEW_COUNTRY, "country"),
        (NEW_INSTRUMENT, "payment instrument"),
    ):
        if any(r[FLAGS] & bit for r in recent):
            out.append(
                Reason(f"novelty.{what.replace(' ', '_')}", f"new {what} in the last 24 hours")
            )
    return out
