"""The habits model's training points: the features the build computes at a churn point
are the ones the stream computes from a user state fed the same events, and the target is
the labels' "gone for good by the tick"."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import orjson

from model.churn_habits import habit_targets, point_features
from model.dataset import build_corpus
from model.features import FeatureSpec
from stream.core.schema import Event, parse_event
from stream.core.state import StateLimits, UserState
from stream.core.timeutil import parse_ts
from stream.detect.btyd import BGNBD
from stream.detect.churn_habits import habit_features
from stream.simulate import SimConfig
from stream.simulate.writer import generate_files


def test_build_features_are_the_streams(tmp_path: Path) -> None:
    events, labels = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    generate_files(events, labels, SimConfig.rare_buyers(users=150, seed=2))
    corpus = build_corpus(events, labels, FeatureSpec(), horizon_days=90.0)
    ex = corpus.examples
    points = ex.subset(np.flatnonzero(ex.clock)[::97].astype(np.int64))
    assert len(points) > 20
    params = BGNBD.prior(90.0)
    got = point_features(corpus, points, 90.0, params)
    by_user: dict[str, list[Event]] = defaultdict(list)
    for line in events.read_bytes().splitlines():
        e = parse_event(line)
        by_user[e.user_id].append(e)
    for i in range(len(points)):
        evs = sorted(by_user[corpus.user_ids[points.user[i]]], key=lambda e: (e.ts, e.event_id))
        state = UserState()
        for e in evs[: points.end[i]]:
            state.add(e, StateLimits())
        want = habit_features(state, int(points.ts[i]), 90.0, params)
        assert np.allclose(got[i], want), i

    churned = {
        r["user_id"]: r["ts"] for r in map(orjson.loads, labels.read_bytes().splitlines())
        if r["kind"] == "churn"
    }  # fmt: skip
    y = habit_targets(corpus, points)
    for i in range(len(points)):
        uid = corpus.user_ids[points.user[i]]
        gone = uid in churned and parse_ts(churned[uid]) < points.ts[i]
        assert y[i] == float(gone)
    assert 0 < y.sum() < len(y)
