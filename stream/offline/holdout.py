"""How a bundle does on the latest days: the backtest over the whole history (so users and
sellers come to those days with their state), judged on the decisions and alerts at or
after a cutoff. Fraud per decision event, brushing per purchase; alert precision is the
share of alerts whose event (fraud) or seller (brushing) is labelled."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from model.sequence_model import SequenceModel
from stream.core.ranking import average_precision
from stream.core.timeutil import parse_ts
from stream.offline.backtest import run_backtest

KINDS = ("fraud", "brushing")


@dataclass
class Truth:
    """The labels (contract section 4) as sets."""

    fraud_events: set[str] = field(default_factory=set)
    brushing_events: set[str] = field(default_factory=set)
    brushing_sellers: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, labels: list[dict[str, Any]]) -> Truth:
        t = cls()
        for label in labels:
            if label.get("kind") == "fraud" and "event_id" in label:
                t.fraud_events.add(str(label["event_id"]))
            elif label.get("kind") == "brushing" and "event_id" in label:
                t.brushing_events.add(str(label["event_id"]))
            elif label.get("kind") == "brushing" and "seller_id" in label:
                t.brushing_sellers.add(str(label["seller_id"]))
        return t

    def brushing(self, event_id: str | None, seller_id: str | None) -> bool:
        return event_id in self.brushing_events or seller_id in self.brushing_sellers


@dataclass
class Scorecard:
    """One bundle on the holdout days, per kind."""

    pr_auc: dict[str, float | None] = field(default_factory=dict)
    alert_precision: dict[str, float | None] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "pr_auc": {k: r(v) for k, v in self.pr_auc.items()},
            "alert_precision": {k: r(v) for k, v in self.alert_precision.items()},
            "alerts": self.alerts,
        }


def score_bundle(
    events: Path, bundle: Path, backend: str, cutoff_ms: int, truth: Truth
) -> Scorecard:
    model = SequenceModel(bundle, backend)
    with tempfile.TemporaryDirectory(prefix="fraudstream-holdout-") as tmp:
        alerts_path, scores_path = Path(tmp) / "alerts.jsonl", Path(tmp) / "scores.jsonl"
        run_backtest(events, alerts_path, scores_path, model=model)
        return scorecard(_rows(alerts_path), _rows(scores_path), cutoff_ms, truth)


def scorecard(
    alerts: list[dict[str, Any]], scores: list[dict[str, Any]], cutoff_ms: int, truth: Truth
) -> Scorecard:
    card = Scorecard()
    ranked: dict[str, tuple[list[float], list[bool]]] = {k: ([], []) for k in KINDS}
    for row in scores:
        kind = row["kind"]
        if kind not in ranked or parse_ts(row["ts"]) < cutoff_ms:
            continue
        if kind == "fraud":
            label = row["event_id"] in truth.fraud_events
        elif row["subject"]["type"] == "user":  # brushing per purchase, not per seller
            label = truth.brushing(row["event_id"], row["seller_id"])
        else:
            continue
        ranked[kind][0].append(float(row["score"]))
        ranked[kind][1].append(label)
    for kind, (values, labels) in ranked.items():
        card.pr_auc[kind] = average_precision(values, labels) if any(labels) else None
    for kind in KINDS:
        late = [a for a in alerts if a["kind"] == kind and parse_ts(a["event_ts"]) >= cutoff_ms]
        right = sum(_right(a, truth) for a in late)
        card.alerts[kind] = len(late)
        card.alert_precision[kind] = right / len(late) if late else None
    return card


def _right(alert: dict[str, Any], truth: Truth) -> bool:
    if alert["kind"] == "fraud":
        return alert["event_id"] in truth.fraud_events
    return truth.brushing(alert.get("event_id"), alert.get("seller_id"))


def _rows(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as lines:
        return [orjson.loads(line) for line in lines if line.strip()]


def verdict(champion: Scorecard, challenger: Scorecard) -> tuple[bool, str]:
    """Promote only when the challenger ranks better (mean PR-AUC over the kinds labelled
    on the holdout days) and no kind's alert precision is worse."""
    kinds = [
        k
        for k in KINDS
        if champion.pr_auc.get(k) is not None and challenger.pr_auc.get(k) is not None
    ]
    if not kinds:
        return False, "no labelled case on the holdout days: nothing to compare"
    old = sum(champion.pr_auc[k] or 0.0 for k in kinds) / len(kinds)
    new = sum(challenger.pr_auc[k] or 0.0 for k in kinds) / len(kinds)
    if new <= old:
        return False, f"PR-AUC not better ({new:.4f} against the champion's {old:.4f})"
    for k in KINDS:
        was, now = champion.alert_precision.get(k), challenger.alert_precision.get(k)
        if was is not None and (now or 0.0) < was:
            return False, f"{k} alert precision worse ({now or 0.0:.4f} against {was:.4f})"
    return True, f"PR-AUC {new:.4f} against {old:.4f}, alert precision not worse"
