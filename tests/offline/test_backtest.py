"""Backtest and evaluate over simulator output, without a broker."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.core.schema import EVENT_TYPES
from stream.core.timeutil import parse_ts
from stream.offline.backtest import run_backtest
from stream.offline.evaluate import Labels, evaluate
from stream.simulate import SimConfig, generate_files

ALERT_FIELDS = {
    "alert_id", "kind", "subject", "score", "threshold", "event_id", "event_ts", "emitted_at",
    "model_version", "reasons", "evidence_event_ids",
}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("bt")
    events, labels = root / "e.jsonl", root / "l.jsonl"
    start = datetime(2026, 11, 1, tzinfo=UTC)
    generate_files(events, labels, SimConfig(users=600, days=10, seed=5, start=start))
    return events, labels


def read(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_backtest_writes_contract_alerts_and_scores(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    events, _ = data
    stats = run_backtest(events, tmp_path / "a.jsonl", tmp_path / "s.jsonl")
    alerts, scores = read(tmp_path / "a.jsonl"), read(tmp_path / "s.jsonl")
    assert stats.events > 10_000 and stats.rejected == 0
    assert sum(stats.alerts.values()) == len(alerts) > 0
    for alert in alerts:
        assert set(alert) >= ALERT_FIELDS and alert["reasons"]
        assert 0.0 <= alert["score"] <= 1.0
    kinds = {(r["kind"], r["subject"]["type"]) for r in scores}
    assert kinds == {
        ("fraud", "user"),
        ("brushing", "user"),
        ("brushing", "seller"),
        ("churn", "user"),
    }
    assert all(0.0 <= r["score"] <= 1.0 for r in scores)
    # The closing churn evaluation covers users as of the last event time.
    churn_end = max(parse_ts(r["ts"]) for r in scores if r["kind"] == "churn")
    assert churn_end >= max(parse_ts(r["ts"]) for r in scores if r["kind"] != "churn")
    last = churn_end
    closing = {
        r["subject"]["id"] for r in scores if r["kind"] == "churn" and parse_ts(r["ts"]) == last
    }
    assert len(closing) > 100


def test_backtest_is_deterministic_and_order_independent(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    events, _ = data
    run_backtest(events, tmp_path / "a1.jsonl", tmp_path / "s1.jsonl")
    lines = events.read_bytes().splitlines()
    random.Random(3).shuffle(lines)
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_bytes(b"\n".join(lines) + b"\n")
    run_backtest(shuffled, tmp_path / "a2.jsonl", tmp_path / "s2.jsonl")

    def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "emitted_at"} for r in rows]

    assert strip(read(tmp_path / "a1.jsonl")) == strip(read(tmp_path / "a2.jsonl"))
    assert read(tmp_path / "s1.jsonl") == read(tmp_path / "s2.jsonl")


def test_until_stops_in_event_time(data: tuple[Path, Path], tmp_path: Path) -> None:
    events, _ = data
    until = parse_ts("2026-11-04T00:00:00Z")
    run_backtest(events, tmp_path / "a.jsonl", tmp_path / "s.jsonl", until)
    scores = read(tmp_path / "s.jsonl")
    assert max(parse_ts(r["ts"]) for r in scores) <= until
    assert all(parse_ts(a["event_ts"]) <= until for a in read(tmp_path / "a.jsonl"))


def test_rules_find_fraud_on_simulated_data(data: tuple[Path, Path], tmp_path: Path) -> None:
    events, labels = data
    run_backtest(events, tmp_path / "a.jsonl", tmp_path / "s.jsonl")
    report = evaluate(
        Labels(iter(read(labels))), read(tmp_path / "a.jsonl"), read(tmp_path / "s.jsonl")
    )
    fraud = report["fraud"]
    assert fraud["precision"] is not None and fraud["precision"] >= 0.5
    assert fraud["per_decision"]["pr_auc"] > 0.3  # prevalence is about 0.05
    assert report["churn"]["per_user"]["pr_auc"] is not None


def test_evaluate_counts_exactly() -> None:
    labels = Labels(iter([
        {"kind": "fraud", "event_id": "f1"}, {"kind": "fraud", "event_id": "f2"},
        {"kind": "brushing", "seller_id": "s1"}, {"kind": "brushing", "event_id": "o1"},
        {"kind": "churn", "user_id": "c1", "ts": "2026-11-02T00:00:00Z"},
    ]))  # fmt: skip

    def alert(kind: str, sid: str, eid: str, ts: str) -> dict[str, Any]:
        subject = {"type": "seller" if kind == "brushing" else "user", "id": sid}
        return {
            "kind": kind,
            "subject": subject,
            "user_id": sid,
            "event_id": eid,
            "event_ts": ts,
            "threshold": 0.5,
        }

    def row(
        kind: str, st: str, sid: str, eid: str, ts: str, score: float, **kw: str
    ) -> dict[str, Any]:
        return {
            "kind": kind,
            "subject": {"type": st, "id": sid},
            "user_id": sid,
            "event_id": eid,
            "ts": ts,
            "score": score,
            **kw,
        }

    alerts = [
        alert("fraud", "u1", "f2", "2026-11-01T00:10:00Z"),
        alert("fraud", "u2", "x", "2026-11-01T00:10:00Z"),
        alert("brushing", "s1", "o1", "2026-11-01T01:00:00Z"),
        alert("churn", "c1", "last", "2026-11-02T00:00:00Z"),
    ]
    scores = [
        row("fraud", "user", "u1", "f1", "2026-11-01T00:00:00Z", 0.4),
        row("fraud", "user", "u1", "f2", "2026-11-01T00:10:00Z", 0.9),
        row("fraud", "user", "u2", "x", "2026-11-01T00:10:00Z", 0.8),
        row("brushing", "user", "u3", "o1", "2026-11-01T00:30:00Z", 0.7, seller_id="s1"),
        row("brushing", "seller", "s1", "o1", "2026-11-01T00:30:00Z", 0.7),
        row("churn", "user", "c1", "last", "2026-11-03T00:00:00Z", 0.9),
        row("churn", "user", "u1", "f2", "2026-11-03T00:00:00Z", 0.1),
    ]
    report = evaluate(labels, alerts, scores)
    fraud = report["fraud"]
    assert (fraud["precision"], fraud["recall"], fraud["cases"]) == (0.5, 1.0, 1)
    assert fraud["delay"]["median_seconds"] == 600.0 and fraud["delay"]["median_events"] == 1
    assert fraud["per_decision"]["pr_auc"] == pytest.approx((1 / 1 + 2 / 3) / 2, abs=1e-4)
    assert report["brushing"]["precision"] == 1.0 and report["brushing"]["recall"] == 1.0
    assert report["brushing"]["delay"]["median_seconds"] == 1800.0
    churn = report["churn"]
    assert (churn["precision"], churn["recall"], churn["per_user"]["pr_auc"]) == (1.0, 1.0, 1.0)
    assert churn["delay"]["median_seconds"] == 86400.0


def test_every_alert_explains_itself(tmp_path: Path) -> None:
    """Whatever the kind and detector: a pattern, a summary naming the subject, and the
    evidence events described with type and time, in the evidence ids' order."""
    events = tmp_path / "e.jsonl"
    start = datetime(2026, 11, 1, tzinfo=UTC)  # seed 8's market brushes within ten days
    generate_files(events, tmp_path / "l.jsonl", SimConfig(users=600, days=10, seed=8, start=start))
    run_backtest(events, tmp_path / "a.jsonl")
    alerts = read(tmp_path / "a.jsonl")
    assert {a["kind"] for a in alerts} == {"fraud", "brushing", "churn"}
    for alert in alerts:
        subject = alert["subject"]
        assert alert["pattern"] and f"{subject['type']} {subject['id']}" in alert["summary"]
        described = [e["event_id"] for e in alert["evidence"]]
        assert described and described == alert["evidence_event_ids"][: len(described)]
        for e in alert["evidence"]:
            assert e["type"] in EVENT_TYPES and parse_ts(e["ts"]) <= parse_ts(alert["event_ts"])
    patterns = {a["pattern"] for a in alerts}
    assert {"card_testing", "brushing", "churn"} <= patterns, patterns
