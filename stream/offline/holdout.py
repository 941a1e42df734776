"""How a bundle does on the latest days: the backtest over the whole history (so users and
sellers come to those days with their state), judged on the decisions and alerts at or
after a cutoff. Fraud per decision event, brushing per purchase.

Alert precision is judged only on the alerts that carry a verdict: right when their event
(fraud), purchase or seller (brushing) is labelled or an analyst confirmed them, wrong when
an analyst found them a false positive. An alert nobody judged is neither: on the days a
challenger is judged, its alerts on cases the champion never raised have not been reviewed,
and counting them as false positives held back challengers that caught a new pattern.
Below ``MIN_JUDGED`` judged alerts a side's precision is not measurable."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from model.sequence_model import SequenceModel
from stream.core.feedback import Feedback
from stream.core.ranking import average_precision
from stream.core.timeutil import parse_ts
from stream.offline.backtest import run_backtest

KINDS = ("fraud", "brushing")
# Fewer judged alerts than this and a precision is noise: one verdict moves it by 10 points.
MIN_JUDGED = 10


@dataclass
class Truth:
    """The labels (contract section 4, verdicts applied) as sets, and what analysts found
    wrong: alerts, events and sellers whose latest verdict is a false positive. Alert-level
    verdicts (by ``alert_id``, the same for every bundle) are kept both ways."""

    fraud_events: set[str] = field(default_factory=set)
    brushing_events: set[str] = field(default_factory=set)
    brushing_sellers: set[str] = field(default_factory=set)
    false_events: set[tuple[str, str]] = field(default_factory=set)  # (kind, event_id)
    false_sellers: set[str] = field(default_factory=set)  # brushing
    alert_verdicts: dict[str, bool] = field(default_factory=dict)  # alert_id -> confirmed

    @classmethod
    def of(cls, labels: list[dict[str, Any]], verdicts: Sequence[Feedback] = ()) -> Truth:
        t = cls()
        for label in labels:
            if label.get("kind") == "fraud" and "event_id" in label:
                t.fraud_events.add(str(label["event_id"]))
            elif label.get("kind") == "brushing" and "event_id" in label:
                t.brushing_events.add(str(label["event_id"]))
            elif label.get("kind") == "brushing" and "seller_id" in label:
                t.brushing_sellers.add(str(label["seller_id"]))
        latest: dict[tuple[str, str, str], bool] = {}
        for fb in sorted(verdicts, key=lambda f: f.at):  # the latest verdict wins
            confirmed = fb.verdict == "confirmed"
            if fb.alert_id is not None:
                t.alert_verdicts[fb.alert_id] = confirmed
            if fb.event_id is not None:
                latest[(fb.kind, "event", fb.event_id)] = confirmed
            elif fb.kind == "brushing" and fb.seller_id is not None:
                latest[(fb.kind, "seller", fb.seller_id)] = confirmed
        for (kind, what, ident), confirmed in latest.items():
            if confirmed:
                continue
            if what == "event":
                t.false_events.add((kind, ident))
            else:
                t.false_sellers.add(ident)
        return t

    def brushing(self, event_id: str | None, seller_id: str | None) -> bool:
        return event_id in self.brushing_events or seller_id in self.brushing_sellers

    def judge(self, alert: dict[str, Any]) -> bool | None:
        """True (right), False (a false positive) or None (nobody judged it)."""
        by_alert = self.alert_verdicts.get(str(alert.get("alert_id")))
        if by_alert is not None:
            return by_alert
        kind, event_id = alert["kind"], alert.get("event_id")
        if kind == "fraud":
            if event_id in self.fraud_events:
                return True
            return False if (kind, event_id) in self.false_events else None
        if self.brushing(event_id, alert.get("seller_id")):
            return True
        if (kind, event_id) in self.false_events or alert.get("seller_id") in self.false_sellers:
            return False
        return None


@dataclass
class Scorecard:
    """One bundle on the holdout days, per kind."""

    pr_auc: dict[str, float | None] = field(default_factory=dict)
    # Over the judged alerts only; None when none was judged.
    alert_precision: dict[str, float | None] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    judged: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "pr_auc": {k: r(v) for k, v in self.pr_auc.items()},
            "alert_precision": {k: r(v) for k, v in self.alert_precision.items()},
            "alerts": self.alerts,
            "judged": self.judged,
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
        judged = [j for a in late if (j := truth.judge(a)) is not None]
        card.alerts[kind], card.judged[kind] = len(late), len(judged)
        card.alert_precision[kind] = sum(judged) / len(judged) if judged else None
    return card


def _rows(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as lines:
        return [orjson.loads(line) for line in lines if line.strip()]


def verdict(
    champion: Scorecard, challenger: Scorecard, min_judged: int = MIN_JUDGED
) -> tuple[bool, str]:
    """Promote only when the challenger ranks better (mean PR-AUC over the kinds labelled
    on the holdout days) and no kind's judged alert precision is worse.

    A kind's precision is compared when both sides have ``min_judged`` judged alerts. With
    fewer on either side it is not measurable and the kind is judged on PR-AUC alone: the
    challenger's threshold was chosen at build for the recipe's alert precision on its own
    validation days, and the holdout has too few verdicts to say otherwise. One exception:
    a challenger that raised no alert of a kind at all where the champion's were judged
    stays out (it stopped detecting that kind, whatever its ranking)."""
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
    notes = []
    for k in KINDS:
        n_old, n_new = champion.judged.get(k, 0), challenger.judged.get(k, 0)
        was, now = champion.alert_precision.get(k), challenger.alert_precision.get(k)
        if n_old >= min_judged and not challenger.alerts.get(k, 0):
            return False, (
                f"the challenger raised no {k} alert on the holdout days, where the "
                f"champion's {n_old} judged alerts had precision {was or 0.0:.4f}"
            )
        if min(n_old, n_new) < min_judged:
            if champion.alerts.get(k, 0) or challenger.alerts.get(k, 0):
                notes.append(
                    f"{k} alert precision not measurable (champion {n_old} judged alerts, "
                    f"challenger {n_new}; {min_judged} needed): judged on PR-AUC alone"
                )
            continue
        if (now or 0.0) < (was or 0.0):
            return False, (
                f"{k} alert precision worse ({now or 0.0:.4f} on {n_new} judged alerts "
                f"against {was or 0.0:.4f} on {n_old})"
            )
    why = f"PR-AUC {new:.4f} against {old:.4f}, judged alert precision not worse"
    return True, "; ".join([why, *notes])
