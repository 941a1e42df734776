"""Alert records of docs/contract.md, section 3, with ids that replays reproduce exactly."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from stream.core.timeutil import format_ts, now_rfc3339

AlertKind = Literal["fraud", "brushing", "churn"]
SubjectType = Literal["user", "seller"]
RULES_MODEL_VERSION = "rules-v1"


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "detail": self.detail}


@dataclass(frozen=True)
class EvidenceEvent:
    event_id: str
    type: str
    ts: int
    amount: float | None = None
    status: str | None = None
    user_id: str | None = None  # the buyer, for a seller's orders

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event_id": self.event_id, "type": self.type}
        out["ts"] = format_ts(self.ts)
        for name in ("amount", "status", "user_id"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True)
class Detection:
    """What a detector concluded about one subject at one trigger; not yet an alert."""

    kind: AlertKind
    subject_type: SubjectType
    subject_id: str
    score: float
    threshold: float
    event_id: str
    event_ts: int
    reasons: tuple[Reason, ...]
    evidence_event_ids: tuple[str, ...]
    user_id: str | None = None
    seller_id: str | None = None
    # The window an alert stands for when it is not one event (brushing): part of the id.
    window: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Filled from the subject's stored window by ``stream.core.explain``.
    evidence: tuple[EvidenceEvent, ...] = ()
    at_stake: float | None = None  # money the alert is about, where known
    # Which detector scored it ("rules", "btyd", "habits", "model"; churn alerts say so), and the
    # version to report when it is not the loaded bundle's (the rules' while they decide).
    detector: str | None = None
    model_version: str | None = None


def alert_id(kind: str, subject_type: str, subject_id: str, trigger: str) -> str:
    """Deterministic from (kind, subject, triggering event or window)."""
    digest = hashlib.sha256(f"{kind}\x1f{subject_type}\x1f{subject_id}\x1f{trigger}".encode())
    return digest.hexdigest()[:32]


def to_alert(det: Detection, model_version: str) -> dict[str, Any]:
    from stream.core.explain import explained  # it builds on this module's records

    if not det.reasons:
        raise ValueError("an alert needs at least one reason")
    trigger = det.window if det.window is not None else det.event_id
    alert: dict[str, Any] = {
        "alert_id": alert_id(det.kind, det.subject_type, det.subject_id, trigger),
        "kind": det.kind,
        "subject": {"type": det.subject_type, "id": det.subject_id},
        "score": round(min(1.0, max(0.0, det.score)), 6),
        # Rounded like the score: rounding keeps order, so a score never reads below it.
        "threshold": round(det.threshold, 6),
        "event_id": det.event_id,
        "event_ts": format_ts(det.event_ts),
        "emitted_at": now_rfc3339(),
        "model_version": det.model_version or model_version,
        "reasons": [r.as_dict() for r in det.reasons],
        "evidence_event_ids": list(det.evidence_event_ids),
        **explained(det),
    }
    if det.detector is not None:
        alert["detector"] = det.detector
    if det.user_id is not None:
        alert["user_id"] = det.user_id
    if det.seller_id is not None:
        alert["seller_id"] = det.seller_id
    return alert
