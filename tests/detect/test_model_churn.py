"""Churn from the model: the stream scores idle users exactly as training saw them, and
alerts once per inactivity episode against the bundle's threshold."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from model.dataset import build_corpus, encode
from model.features import FeatureSpec
from model.sequence_model import SequenceModel
from stream.core.schema import Event, parse_event
from stream.core.state import EID, StateLimits, UserState
from stream.core.timeutil import DAY_MS
from stream.detect.churn import ChurnConfig, value_at_risk
from stream.detect.model_churn import ChurnVerdict, bundle_churn, churn_verdicts
from stream.offline.backtest import run_backtest

pytestmark = pytest.mark.slow


def user_events(events: Path) -> dict[str, list[Event]]:
    users: dict[str, list[Event]] = defaultdict(list)
    with open(events, "rb") as f:
        for line in f:
            event = parse_event(line)
            users[event.user_id].append(event)
    for evs in users.values():
        evs.sort(key=lambda e: (e.ts, e.event_id))
    return users


def state_of(events: list[Event]) -> UserState:
    state = UserState()
    for event in events:
        state.add(event, StateLimits())
    return state


def test_idle_windows_match_the_training_points(churn_bundle: tuple[Path, Path, Path]) -> None:
    events, labels, bundle = churn_bundle
    model = SequenceModel(bundle, "onnx")
    assert "churn" in model.kinds
    spec = model.scorer.spec
    corpus = build_corpus(events, labels, FeatureSpec(**spec.to_json()), horizon_days=3.0)
    ex = corpus.examples
    points = np.flatnonzero(ex.clock)
    assert len(points) > 100
    by_user = user_events(events)
    for tick in sorted(set(ex.ts[points].tolist()))[:4]:
        at = points[ex.ts[points] == tick][:40]
        expected = encode(corpus, ex.subset(at), spec, model.T)
        windows = [state_of(by_user[corpus.user_ids[ex.user[i]]][: ex.end[i]]).events for i in at]
        got = model.encode(windows, int(tick))
        for e, g in zip(expected, got, strict=True):
            assert np.array_equal(np.asarray(e, np.int64), np.asarray(g, np.int64))


def test_model_alerts_once_per_inactivity_episode(churn_bundle: tuple[Path, Path, Path]) -> None:
    events, _, bundle = churn_bundle
    model = SequenceModel(bundle, "onnx")
    cfg = ChurnConfig(budget_per_1000=None)  # every user over the threshold alerts
    users = [(uid, state_of(evs)) for uid, evs in sorted(user_events(events).items())]
    end = max(state.max_ts for _, state in users)
    # The alerting is what is checked here, not the tiny bundle's quality: with the
    # threshold at the median score of the first day, many users cross it.
    first = churn_verdicts(users, (end // DAY_MS + 1) * DAY_MS, cfg, model)
    users = [(uid, state_of(evs)) for uid, evs in sorted(user_events(events).items())]
    threshold = float(np.median([v.score for v in first]))
    model.thresholds["churn"] = threshold
    alerts: dict[str, int] = defaultdict(int)
    scored = 0
    for day in range(1, 8):
        now = (end // DAY_MS + day) * DAY_MS
        verdicts = churn_verdicts(users, now, cfg, model, batch=64)
        scored += len(verdicts)
        for v in verdicts:
            assert v.state.events and 0.0 <= v.score <= 1.0
            if v.detection is not None:
                alerts[v.user_id] += 1
                assert v.score >= threshold == v.detection.threshold
                assert v.detection.reasons[0].code == "model.churn"
                assert (v.detection.detector, v.detection.model_version) == ("model", None)
                assert v.detection.event_id == v.state.events[-1][EID]
            else:  # below the threshold, or already alerted for this episode
                assert v.score < threshold or alerts[v.user_id] == 1
    assert scored == 7 * len(users)  # every user, however short their history
    # A week of silence for everyone: many alerts, and never two for one episode.
    assert len(alerts) > 10 and set(alerts.values()) == {1}


def test_every_user_with_events_is_scored(churn_bundle: tuple[Path, Path, Path]) -> None:
    events, _, bundle = churn_bundle
    model = SequenceModel(bundle, "onnx")
    evs = max(user_events(events).values(), key=len)
    one, short, empty = state_of(evs[:1]), state_of(evs[:3]), UserState()
    cfg = ChurnConfig()
    verdicts = churn_verdicts(
        [("a", one), ("b", short), ("c", empty)], short.max_ts + DAY_MS, cfg, model
    )
    assert [v.user_id for v in verdicts] == ["a", "b"]
    assert all(0.0 <= v.score <= 1.0 for v in verdicts)


def test_the_budget_alerts_the_most_likely_first(churn_bundle: tuple[Path, Path, Path]) -> None:
    events, _, bundle = churn_bundle
    model = SequenceModel(bundle, "onnx")
    users = [(uid, state_of(evs)) for uid, evs in sorted(user_events(events).items())]
    now = (max(s.max_ts for _, s in users) // DAY_MS + 3) * DAY_MS
    model.thresholds["churn"] = 0.0
    verdicts = churn_verdicts(users, now, ChurnConfig(), model, allowance=5)
    alerted = [v for v in verdicts if v.detection is not None]
    assert len(alerted) == 5
    cfg, _ = bundle_churn(model, ChurnConfig())  # the bundle's horizon

    def rank(v: ChurnVerdict) -> float:  # probability times value at risk (plus one)
        return v.score * (1.0 + value_at_risk(v.state, now, cfg))

    assert min(map(rank, alerted)) >= max(rank(v) for v in verdicts if v.detection is None)


def test_backtest_takes_churn_from_the_model(
    churn_bundle: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    events, _, bundle = churn_bundle
    model = SequenceModel(bundle, "onnx")

    def backtest() -> tuple[list[dict[str, Any]], list[float]]:
        run_backtest(events, tmp_path / "a.jsonl", tmp_path / "s.jsonl", model=model)
        alerts = [orjson.loads(x) for x in (tmp_path / "a.jsonl").read_bytes().splitlines()]
        scores = [orjson.loads(x) for x in (tmp_path / "s.jsonl").read_bytes().splitlines()]
        return alerts, [r["score"] for r in scores if r["kind"] == "churn"]

    _, churn_scores = backtest()
    assert len(set(churn_scores)) > 100  # probabilities from the model, not the rule's curve
    model.thresholds["churn"] = float(np.quantile(churn_scores, 0.9))  # alerts to check
    alerts, _ = backtest()
    churn_alerts = [a for a in alerts if a["kind"] == "churn"]
    assert churn_alerts
    for alert in churn_alerts:
        assert alert["reasons"][0]["code"] == "model.churn"
        assert alert["score"] >= alert["threshold"]
        assert alert["threshold"] == pytest.approx(model.thresholds["churn"], abs=1e-6)
    assert len({a["alert_id"] for a in churn_alerts}) == len(churn_alerts)
