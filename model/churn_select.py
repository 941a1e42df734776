"""Who scores churn: the student only where it ranks the validation days better than every
baseline (the streaming rules, BG/NBD fitted on the training days, the habits model fitted
on them, LightGBM); otherwise the best of those the stream can run (the rules, BG/NBD with
the fitted parameters, or the habits model). Also the build's churn table on the test
days, per history bucket, with recency beside them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from model.baseline import LightGBMBaseline, window_features
from model.btyd import bgnbd_scores, by_bucket, calibration_histories, fit_bgnbd, histories
from model.calibrate import choose_threshold, ranking_metrics
from model.churn_habits import fit_habits, habit_scores, habit_targets, point_features
from model.config import BuildConfig
from model.dataset import Corpus, Examples
from model.evaluate import Rules, rule_point_scores
from model.features import KINDS, FeatureSpec
from stream.detect.btyd import BGNBD
from stream.detect.churn_habits import HabitModel

CHURN = KINDS.index("churn")
# The detectors the stream can run, simplest first.
STREAMABLE = ("rules", "btyd", "habits")
Windows = tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]


@dataclass
class ChurnBaselines:
    """BG/NBD and the habits model fitted on the training days and a churn-only LightGBM,
    with the scores of every baseline at a split's churn points."""

    corpus: Corpus
    cfg: BuildConfig
    spec: FeatureSpec
    rules: Rules | None
    params: BGNBD
    habits: HabitModel
    gbm: LightGBMBaseline = field(repr=False)

    @classmethod
    def fit(
        cls,
        corpus: Corpus,
        train: Examples,
        d_train: Windows,
        spec: FeatureSpec,
        rules: Rules | None,
        cfg: BuildConfig,
    ) -> ChurnBaselines:
        h = calibration_histories(corpus, corpus.split.train_end)
        params = fit_bgnbd(h, cfg.churn_horizon_days)
        has = train.y[:, CHURN] >= 0
        sub = train.subset(np.flatnonzero(has).astype(np.int64))
        x = point_features(corpus, sub, cfg.churn_horizon_days, params)
        habits = fit_habits(x, habit_targets(corpus, sub), params)
        gbm = LightGBMBaseline(cfg.lgbm_estimators, cfg.threads, cfg.seed)
        gbm.fit(window_features(*d_train, spec), train.y, [CHURN])
        return cls(corpus, cfg, spec, rules, params, habits, gbm)

    def scores(
        self, ex: Examples, windows: Windows
    ) -> tuple[npt.NDArray[np.bool_], dict[str, npt.NDArray[Any]], npt.NDArray[np.int64]]:
        """The churn points of ``ex`` (a mask), each baseline's scores there, and the events
        visits before each."""
        has = ex.y[:, CHURN] >= 0
        sub = ex.subset(np.flatnonzero(has).astype(np.int64))
        h = histories(self.corpus, sub)
        out: dict[str, npt.NDArray[Any]] = {
            "recency": h.idle_days,
            "btyd": bgnbd_scores(self.params, h, self.cfg.churn_horizon_days),
            "habits": habit_scores(
                self.habits,
                point_features(self.corpus, sub, self.cfg.churn_horizon_days, self.params),
            ),
            "lightgbm": self.gbm.predict(window_features(*windows, self.spec), CHURN)[has],
        }
        if self.rules is not None:
            out["rules"] = rule_point_scores(self.corpus, sub, self.rules, "churn")
        return has, out, h.x + 1


def choose_churn(
    base: ChurnBaselines,
    val: Examples,
    d_val: Windows,
    student_val: npt.NDArray[np.float32],
) -> tuple[str, dict[str, Any]]:
    """``model``, ``habits``, ``btyd`` or ``rules`` for churn, with the validation PR-AUCs
    behind it, BG/NBD's and the habits model's parameters and, for those two, the threshold."""
    has, scores, _ = base.scores(val, d_val)
    y = val.y[has, CHURN]
    scores["student"] = student_val[has, CHURN]
    pr = {who: float(ranking_metrics(s, y)["pr_auc"]) for who, s in scores.items()}
    pr = {who: (v if np.isfinite(v) else 0.0) for who, v in pr.items()}
    rivals = {who: v for who, v in pr.items() if who in (*STREAMABLE, "lightgbm")}
    record: dict[str, Any] = {
        "val_pr_auc": pr,
        "btyd": base.params.to_json(),
        "habits": base.habits.to_json(),
    }
    if pr["student"] >= max(rivals.values()):
        return "model", record
    # The first of the best: a tie goes to the simpler detector.
    streamable = max(STREAMABLE, key=lambda w: pr.get(w, -1.0))
    best = max(rivals, key=lambda w: rivals[w])
    record["why"] = (
        f"{best} ranks the validation days better than the student (PR-AUC "
        f"{rivals[best]:.3f} against {pr['student']:.3f}); the stream runs {streamable}"
    )
    if streamable != "rules":
        chosen = choose_threshold(
            scores[streamable], y, base.cfg.target_precision, base.cfg.alert_budget
        )
        record["threshold"] = float(chosen["threshold"])
    return streamable, record


def churn_table(
    base: ChurnBaselines,
    test: Examples,
    d_test: Windows,
    student_test: npt.NDArray[np.float32],
) -> dict[str, Any]:
    """Test-day ROC AUC and PR-AUC of the student and every baseline, per history bucket
    (visits seen: 1, 2-4, 5-19, 20+) and overall."""
    has, scores, events = base.scores(test, d_test)
    scores = {"student": student_test[has, CHURN], **scores}
    return by_bucket(scores, test.y[has, CHURN], events)
