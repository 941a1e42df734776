"""What makes an alert readable: its pattern, a one-line summary, and its evidence events.

Detectors say what they measured (``Reason``s, evidence ids); this module turns that into
what a person reads first, the same way for every kind and detector, so fraud, brushing
and churn alerts explain themselves alike (docs/contract.md, Additions):

- ``pattern``: a stable code for the behaviour (``card_testing``, ``account_takeover``,
  ``brushing``, ``churn``, ...), from the reasons' codes;
- ``summary``: pattern, subject, the two strongest reasons, the amount at stake, the score;
- ``evidence``: the evidence events with type, time, status and amount, looked up in the
  subject's stored window (``user_evidence``, ``seller_evidence``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stream.core.alerts import Detection, EvidenceEvent, Reason
from stream.core.schema import EVENT_TYPES
from stream.core.state import (
    AMOUNT,
    EID,
    S_AMOUNT,
    S_EID,
    S_KIND,
    S_TS,
    S_USER,
    STATUS,
    STATUS_NAME,
    TS,
    TYPE,
    TYPE_CODE,
    Row,
)

MAX_EVIDENCE = 20  # evidence events described in full; the ids list may hold more

# Reason-code prefix -> pattern, first match wins: rule findings name a pattern outright.
RULE_PATTERNS = (
    ("ato.", "account_takeover"),
    ("card_testing.", "card_testing"),
    ("brushing.", "brushing"),
    ("model.brushing", "brushing"),
    ("churn.", "churn"),
    ("model.churn", "churn"),
)
# A model alert without a rule finding: the feature group whose removal lowers the score
# most suggests the pattern (the simulator's and the rules' vocabulary).
FEATURE_PATTERNS = {
    "failed_attempts": "card_testing",
    "new_device_ip_country": "account_takeover",
    "new_instrument": "new_instrument",
    "amounts": "unusual_amounts",
    "timing": "unusual_timing",
}
CARD_TESTING_FAILED = 3  # failed payments among the evidence that read as card testing
PATTERN_TITLES = {
    "card_testing": "Card testing",
    "account_takeover": "Account takeover",
    "new_instrument": "New payment instrument",
    "unusual_amounts": "Unusual amounts",
    "unusual_timing": "Unusual timing",
    "unusual_activity": "Unusual activity",
    "brushing": "Brushing",
    "churn": "Churn risk",
}
# Reasons that restate the score rather than explain it: never in the summary.
SCORE_ONLY = frozenset({"model.fraud", "model.score", "churn.history"})


def pattern_of(
    kind: str, reasons: tuple[Reason, ...], evidence: tuple[EvidenceEvent, ...] = ()
) -> str:
    """A rule's finding names the pattern; else a telling feature group among the model's
    reasons, or a run of failed payments in the evidence; else the strongest feature."""
    for prefix, pattern in RULE_PATTERNS:
        if any(r.code.startswith(prefix) for r in reasons):
            return pattern
    features = [
        r.code.removeprefix("model.feature.")
        for r in reasons
        if r.code.startswith("model.feature.")
    ]
    for telling in ("failed_attempts", "new_device_ip_country"):
        if telling in features:
            return FEATURE_PATTERNS[telling]
    failed = [e for e in evidence if e.type == "payment" and e.status == "failed"]
    if len(failed) >= CARD_TESTING_FAILED:
        return "card_testing"
    if features:
        return FEATURE_PATTERNS.get(features[0], "unusual_activity")
    return "unusual_activity" if kind == "fraud" else kind


def summary_of(det: Detection, pattern: str) -> str:
    """One line a person reads first: what, who, why (two reasons), how much, how sure."""
    title = PATTERN_TITLES.get(pattern, pattern.replace("_", " ").capitalize())
    why = [r.detail for r in det.reasons if r.code not in SCORE_ONLY][:2] or [det.reasons[0].detail]
    parts = [f"{title}: {det.subject_type} {det.subject_id}", "; ".join(why)]
    if det.at_stake is not None:
        parts.append(f"{det.at_stake:,.2f} at stake")
    parts.append(f"score {det.score:.2f} (threshold {det.threshold:.2f})")
    return " - ".join(parts)


def explained(det: Detection) -> dict[str, Any]:
    """The alert fields that make it readable (docs/contract.md, Additions)."""
    pattern = pattern_of(det.kind, det.reasons, det.evidence)
    out: dict[str, Any] = {"pattern": pattern, "summary": summary_of(det, pattern)}
    if det.at_stake is not None:
        out["amount_at_stake"] = round(det.at_stake, 2)
    out["evidence"] = [e.as_dict() for e in det.evidence]
    return out


def user_evidence(det: Detection, rows: list[Row]) -> Detection:
    """``det`` with its evidence events described from the user's stored window. At stake:
    the triggering event's amount (fraud), or the purchases in the window (churn: the
    customer's recent spending)."""
    by_id = {r[EID]: r for r in rows}
    found = [by_id[e] for e in det.evidence_event_ids if e in by_id][:MAX_EVIDENCE]
    evidence = tuple(
        EvidenceEvent(r[EID], EVENT_TYPES[r[TYPE]], r[TS], r[AMOUNT], STATUS_NAME[r[STATUS]])
        for r in found
    )
    if det.kind == "churn":
        purchase = TYPE_CODE["purchase"]
        spent = [r[AMOUNT] for r in rows if r[TYPE] == purchase and r[AMOUNT] is not None]
        at_stake = sum(spent) if spent else None
    else:
        trigger = by_id.get(det.event_id)
        at_stake = trigger[AMOUNT] if trigger is not None else None
    return replace(det, evidence=evidence, at_stake=at_stake)


def seller_evidence(det: Detection, orders: list[Row]) -> Detection:
    """``det`` with its evidence orders described from the seller's window; at stake: the
    amount of those orders."""
    by_id = {r[S_EID]: r for r in orders}
    found = [by_id[e] for e in det.evidence_event_ids if e in by_id]
    evidence = tuple(
        EvidenceEvent(r[S_EID], r[S_KIND], r[S_TS], r[S_AMOUNT], user_id=r[S_USER])
        for r in found[:MAX_EVIDENCE]
    )
    amounts = [r[S_AMOUNT] for r in found if r[S_AMOUNT] is not None]
    return replace(det, evidence=evidence, at_stake=sum(amounts) if amounts else None)
