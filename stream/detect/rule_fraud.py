"""Fraud by the rules at one decision event: the detector without a model, and the floor
under the model with one (``stream.detect.model_fraud``)."""

from __future__ import annotations

from stream.core.alerts import Detection, Reason
from stream.core.state import EID, TS, Row, UserState
from stream.detect.rules import RuleConfig, RuleHit, account_takeover, card_testing, fraud_partial


def rule_hits(window: list[Row], trigger: Row, rules: RuleConfig) -> list[RuleHit]:
    return [h for rule in (card_testing, account_takeover) if (h := rule(window, trigger, rules))]


def rule_fraud(
    state: UserState,
    window: list[Row],
    trigger: Row,
    user_id: str,
    seller_id: str | None,
    rules: RuleConfig,
    cooldown_ms: int,
) -> tuple[float, list[Detection]]:
    """The rules' fraud score, and an alert unless every firing rule is cooling down
    (one alert per user and rule per cooldown; the cooldowns live in ``state``)."""
    found = rule_hits(window, trigger, rules)
    score = max((h.score for h in found), default=fraud_partial(window, trigger, rules))
    ts = trigger[TS]
    hits: list[RuleHit] = []
    for hit in found:
        last = state.cooldowns.get(hit.rule)
        if last is not None and 0 <= ts - last < cooldown_ms:
            continue
        state.cooldowns[hit.rule] = ts
        hits.append(hit)
    if not hits:
        return score, []
    hits.sort(key=lambda h: -h.score)
    reasons: list[Reason] = [r for h in hits for r in h.reasons]
    evidence = list(dict.fromkeys(e for h in hits for e in h.evidence))
    return score, [
        Detection(
            kind="fraud",
            subject_type="user",
            subject_id=user_id,
            score=hits[0].score,
            threshold=rules.threshold,
            event_id=trigger[EID],
            event_ts=ts,
            reasons=tuple(reasons),
            evidence_event_ids=tuple(evidence),
            user_id=user_id,
            seller_id=seller_id,
        )
    ]
