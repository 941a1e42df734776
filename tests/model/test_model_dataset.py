from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from modelsynth import make_fixture, write_fixture

from model.dataset import (
    BRUSHING,
    CHURN,
    CHURN_MIN_EVENTS,
    FRAUD,
    Corpus,
    build_corpus,
    encode,
    read_labels,
)
from model.features import NOW_TYPE, FeatureSpec, encode_window
from stream.core.schema import DECISION_TYPES
from stream.core.timeutil import DAY_MS

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
    for i in np.flatnonzero(~ex.clock):
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
    at = ~ex.clock  # event points; churn points go by their window (see below)
    assert ex.ts[at & (ex.part == 0)].max() < split.train_end <= ex.ts[at & (ex.part == 1)].min()
    assert ex.ts[at & (ex.part == 1)].max() < split.val_end <= ex.ts[at & (ex.part == 2)].min()
    # No user is a positive churn point in two splits: nothing to remember across them.
    churned = [set(ex.user[ex.clock & (ex.y[:, CHURN] == 1) & (ex.part == p)]) for p in range(3)]
    assert not (churned[0] & churned[1]) and not (churned[0] & churned[2])
    assert not (churned[1] & churned[2])


def test_churn_labels_never_look_past_their_split(corpus: Corpus, files: tuple[Path, Path]) -> None:
    ex, split = corpus.examples, corpus.split
    churners = read_labels(files[1]).churn_users
    horizon = HORIZON_DAYS * DAY_MS
    has = ex.y[:, CHURN] >= 0
    assert (has == ex.clock).all()  # churn points are clock ticks, and only they
    assert (ex.y[ex.clock][:, :CHURN] == -1).all()
    assert (ex.ts[ex.clock] % DAY_MS == 0).all()
    assert {0, 1} <= set(ex.y[has, CHURN].tolist())
    for i in np.flatnonzero(has):
        uid = corpus.user_ids[ex.user[i]]
        times = np.array([e["ts"] for e in corpus.events[ex.user[i]]])
        tick, end = int(ex.ts[i]), split.horizon_end(int(ex.part[i]))
        # The split of the window's last event: one window never lands in two splits.
        assert split.part(int(times[ex.end[i] - 1])) == ex.part[i]
        assert ex.end[i] == (times < tick).sum() >= CHURN_MIN_EVENTS == 1
        assert tick - times[ex.end[i] - 1] <= horizon
        back = ((times > tick) & (times < min(tick + horizon, end))).any()
        gone = uid in churners and times.max() < tick
        if back:
            assert ex.y[i, CHURN] == 0  # seen again within the horizon, inside the split
        elif tick + horizon < end:
            assert ex.y[i, CHURN] == 1  # the whole horizon passed inside the split
        else:
            # The rest of the horizon lies beyond the split: the labels decide.
            assert ex.y[i, CHURN] == float(gone)


def test_churn_windows_end_with_the_clock(corpus: Corpus) -> None:
    ex, spec, T = corpus.examples, FeatureSpec(), 16
    points = np.flatnonzero(ex.clock)[:50]
    events = np.flatnonzero(~ex.clock)[:50]
    cat, num, mask = encode(corpus, ex.subset(points), spec, T)
    gap = spec.cat_features.index("gap")
    for b, i in enumerate(points):
        table = corpus.tables[ex.user[i]]
        idle_s = (ex.ts[i] - table.ts[ex.end[i] - 1]) / 1000
        assert cat[b, -1, 0] == NOW_TYPE and mask[b, -1]
        assert num[b, -1, 2] == pytest.approx(np.log1p(idle_s) / 10, rel=1e-5)
        assert cat[b, -1, gap] == 2 + min(spec.gap_buckets - 1, int(np.log1p(idle_s) * 1.5))
        # The events before it are the window of the last T - 1 events.
        c, _, m = encode_window(table, 0, int(ex.end[i]), spec, T - 1)
        assert (mask[b, :-1] == m).all()
        assert (cat[b, :-1, 0][m] == c[m, 0]).all()
    # Event points are exactly the stream's encoding of the window ending at the event.
    cat, num, mask = encode(corpus, ex.subset(events), spec, T)
    for b, i in enumerate(events):
        c, x, m = encode_window(corpus.tables[ex.user[i]], 0, int(ex.end[i]), spec, T)
        assert (cat[b] == c).all() and (num[b] == x).all() and (mask[b] == m).all()


def test_bad_label_rows_are_refused(tmp_path: Path, files: tuple[Path, Path]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "fraud", "event_id": "e1"}\n{"kind": "spam"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not a label row of docs/contract\.md"):
        build_corpus(files[0], bad, FeatureSpec())


def test_reads_the_simulator_output(tmp_path: Path) -> None:
    simulate = pytest.importorskip("stream.simulate")
    events, labels = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    simulate.generate_files(events, labels, simulate.SimConfig(users=150, days=6, seed=2))
    corpus = build_corpus(events, labels, FeatureSpec(), horizon_days=1.0)
    assert len(corpus.examples) > 100 and corpus.kinds["fraud"]
    assert (corpus.examples.y[:, FRAUD] == 1).any()
