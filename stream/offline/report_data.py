"""What the backtest report shows, per kind, computed from a run's alerts and scores and
the labels: labelled scores (for precision-recall curves and score distributions), alert
counts over event time, detection delays and the alerts' most frequent reasons.

A run is one backtest's output (``backtest --alerts-out --scores-out``); the report sets
a model's run against the rules' run on the same events. The labelling follows
``fraudstream evaluate``: fraud per decision event, brushing per order (fake or not) and
per seller, churn per user (the user's last evaluation)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.core.ranking import average_precision, pr_curve
from stream.core.timeutil import parse_ts
from stream.offline.evaluate import Labels, churn_evaluations, gone, read_jsonl

KINDS = ("fraud", "brushing", "churn")


@dataclass
class Run:
    """One backtest's output, named for the legend (its bundle's version by default)."""

    name: str
    alerts: list[dict[str, Any]]
    scores: list[dict[str, Any]]

    @classmethod
    def load(cls, alerts: Path, scores: Path, name: str | None = None) -> Run:
        rows = list(read_jsonl(scores))
        for r in rows:
            r["_ts"] = parse_ts(r["ts"])
        found = list(read_jsonl(alerts))
        versions = sorted({str(a.get("model_version")) for a in found})
        return cls(name or (", ".join(versions) if versions else alerts.stem), found, rows)


@dataclass
class KindResult:
    """One kind's figures for one run."""

    kind: str
    run: str
    scores: list[float] = field(default_factory=list)  # the ranked unit's scores ...
    labels: list[bool] = field(default_factory=list)  # ... and whether each is a positive
    alert_times: list[int] = field(default_factory=list)  # event time of every alert
    right: int = 0  # alerts on a labelled positive
    cases: int = 0  # labelled positives (users, sellers) in the run's scores
    found: int = 0  # of those, with at least one right alert
    delays_s: list[float] = field(default_factory=list)  # first sign to first right alert
    reasons: Counter[str] = field(default_factory=Counter)
    patterns: Counter[str] = field(default_factory=Counter)
    unit: str = ""

    @property
    def alerts(self) -> int:
        return len(self.alert_times)

    @property
    def pr_auc(self) -> float | None:
        return average_precision(self.scores, self.labels)

    def curve(self) -> list[tuple[float, float]]:
        """(recall, precision) points, recall ascending, for plotting."""
        return [(p.recall, p.precision) for p in pr_curve(self.scores, self.labels)]


def kind_result(kind: str, run: Run, labels: Labels) -> KindResult:
    rows = [r for r in run.scores if r.get("kind") == kind]
    alerts = [a for a in run.alerts if a.get("kind") == kind]
    out = KindResult(kind, run.name)
    out.alert_times = sorted(parse_ts(a["event_ts"]) for a in alerts)
    for a in alerts:
        out.reasons.update(r["code"] for r in a.get("reasons", ()))
        out.patterns[a.get("pattern") or "(none)"] += 1
    {"fraud": _fraud, "brushing": _brushing, "churn": _churn}[kind](out, rows, alerts, labels)
    return out


def _fraud(
    out: KindResult, rows: list[dict[str, Any]], alerts: list[dict[str, Any]], labels: Labels
) -> None:
    out.unit = "decision events"
    out.scores = [r["score"] for r in rows]
    out.labels = [r["event_id"] in labels.fraud_events for r in rows]
    first: dict[str, int] = {}
    for r in sorted(rows, key=lambda r: r["_ts"]):
        if r["event_id"] in labels.fraud_events:
            first.setdefault(r["user_id"], r["_ts"])
    right = [a for a in alerts if a["event_id"] in labels.fraud_events]
    _tally(out, first, [(a["user_id"], parse_ts(a["event_ts"])) for a in right])


def _brushing(
    out: KindResult, rows: list[dict[str, Any]], alerts: list[dict[str, Any]], labels: Labels
) -> None:
    out.unit = "orders"
    orders = [r for r in rows if r["subject"]["type"] == "user"]
    out.scores = [r["score"] for r in orders]
    out.labels = [r["event_id"] in labels.fake_orders for r in orders]
    first: dict[str, int] = {}
    for r in sorted(orders, key=lambda r: r["_ts"]):
        if r["event_id"] in labels.fake_orders and r.get("seller_id"):
            first.setdefault(r["seller_id"], r["_ts"])
    right = [a for a in alerts if a["subject"]["id"] in labels.brushing_sellers]
    _tally(out, first, [(a["subject"]["id"], parse_ts(a["event_ts"])) for a in right])


def _churn(
    out: KindResult, rows: list[dict[str, Any]], alerts: list[dict[str, Any]], labels: Labels
) -> None:
    """Ranked by each user's last evaluation; a churn alert is right when the user churned
    and the alert came at or after their last activity. Its delay runs from that last
    activity to the evaluation that first scored the user at the alert threshold."""
    out.unit = "users (last evaluation)"
    churners = labels.churn_users
    last, flagged = churn_evaluations(rows, alerts, churners)
    users = sorted(last)
    out.scores = [last[u]["score"] for u in users]
    out.labels = [gone(labels, u, last[u]["_ts"]) for u in users]  # as evaluate ranks them
    right = [
        a["subject"]["id"]
        for a in alerts
        if parse_ts(a["event_ts"]) >= churners.get(a["subject"]["id"], 2**62)
    ]
    out.right = len(right)
    cases = [u for u in users if u in churners]
    out.cases, out.found = len(cases), len(set(right))
    out.delays_s = [(flagged[u] - churners[u]) / 1000 for u in set(right) if u in flagged]


def _tally(out: KindResult, first: dict[str, int], right: list[tuple[str, int]]) -> None:
    """Right alerts per subject; delay from the subject's first positive to its first
    right alert (an alert before it counts as no delay)."""
    out.right = len(right)
    earliest: dict[str, int] = defaultdict(lambda: 2**62)
    for subject, ts in right:
        earliest[subject] = min(earliest[subject], ts)
    out.cases = len(first)
    out.found = len(set(earliest) & set(first))
    out.delays_s = [max(0, earliest[s] - first[s]) / 1000 for s in earliest if s in first]


def human_duration(seconds: float) -> str:
    """A duration as a person says it: 42 s, 7.5 min, 3.2 h, 4.8 days."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
