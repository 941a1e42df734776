from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from modelsynth import make_fixture, write_fixture

from model.dataset import BRUSHING, CHURN, DAY_MS, FRAUD, Corpus, build_corpus, read_labels
from model.features import DECISION_TYPES, FeatureSpec

HORIZON_DAYS = 3.0


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("ds")
    events, labels = tmp / "e.jsonl", tmp / "l.jsonl"
    write_fixture(make_fixture(users=80, days=30, seed=5), events, labels)
    return events, labels


@pytest.fixture(scope="module")
def corpus(files: tuple[Path, Path]) -> Corpus:
    return build_corpus(*files, FeatureSpec(), horizon_days=HORIZON_DAYS)


def _event(corpus: Corpus, i: int) -> dict[str, object]:
    return corpus.events[corpus.examples.user[i]][corpus.examples.end[i] - 1]


def test_targets_follow_labels_and_kinds(corpus: Corpus, files: tuple[Path, Path]) -> None:
    labels = read_labels(files[1])
    ex = corpus.examples
    for i in range(len(ex)):
        ev = _event(corpus, i)
        assert (ex.y[i, FRAUD] >= 0) == (ev["type"] in DECISION_TYPES)
        assert (ex.y[i, BRUSHING] >= 0) == (ev["type"] == "purchase")
        if ex.y[i, FRAUD] >= 0:
            assert bool(ex.y[i, FRAUD]) == (ev["event_id"] in labels.fraud_events)
    assert all(corpus.kinds.values())
    assert ex.y[:, FRAUD].max() == 1 and ex.y[:, BRUSHING].max() == 1


def test_split_is_by_day_and_ordered(corpus: Corpus) -> None:
    ex, split = corpus.examples, corpus.split
    assert split.train_end % DAY_MS == 0 and split.val_end % DAY_MS == 0
    for part in range(3):
        assert (ex.part == part).any()
    assert ex.ts[ex.part == 0].max() < split.train_end <= ex.ts[ex.part == 1].min()
    assert ex.ts[ex.part == 1].max() < split.val_end <= ex.ts[ex.part == 2].min()


def test_churn_labels_never_look_past_their_split(corpus: Corpus) -> None:
    ex, split = corpus.examples, corpus.split
    horizon = HORIZON_DAYS * DAY_MS
    has = ex.y[:, CHURN] >= 0
    assert has.any()
    ends = np.array([split.horizon_end(int(p)) for p in ex.part[has]])
    assert (ex.ts[has] + horizon < ends).all()
    # Churn labels agree with the events: positive exactly when no event follows within
    # the horizon.
    for i in np.flatnonzero(has)[:300]:
        evs = corpus.events[ex.user[i]]
        nxt = evs[ex.end[i]]["ts"] if ex.end[i] < len(evs) else None
        expected = nxt is None or nxt - ex.ts[i] > horizon
        assert bool(ex.y[i, CHURN]) == expected


def test_bad_label_rows_are_refused(tmp_path: Path, files: tuple[Path, Path]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "fraud", "event_id": "e1"}\n{"kind": "spam"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not a CONTRACT label row"):
        build_corpus(files[0], bad, FeatureSpec())


def test_reads_the_simulator_output(tmp_path: Path) -> None:
    simulate = pytest.importorskip("stream.simulate")
    events, labels = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    simulate.generate_files(events, labels, simulate.SimConfig(users=150, days=6, seed=2))
    corpus = build_corpus(events, labels, FeatureSpec(), horizon_days=1.0)
    assert len(corpus.examples) > 100 and corpus.kinds["fraud"]
    assert (corpus.examples.y[:, FRAUD] == 1).any()
