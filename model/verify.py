"""Reproduce a bundle's recorded test-day metrics from its recipe's data.

A bundle's manifest records the PR-AUC its student reached on the test days of the data
it was built from. Scoring those days again with the bundle's ONNX graph must give the
same figures: the check that a shipped or copied bundle is the model its numbers describe
(and that the code reading it still encodes windows as the build did).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model.bundle import load_bundle
from model.calibrate import ranking_metrics
from model.dataset import build_corpus, encode
from model.features import KINDS, FeatureSpec
from model.scorer import OnnxScorer
from stream.core.timeutil import DAY_MS

TEST_PART = 2  # the day split's parts: train, validation, test


def reproduce_test_metrics(
    bundle_dir: Path, events: Path, labels: Path, chunk: int = 2048
) -> dict[str, dict[str, float]]:
    """Per kind the model scores: the recorded and the measured test-day PR-AUC."""
    bundle = load_bundle(bundle_dir)
    m = bundle.manifest
    cfg: dict[str, Any] = m["build_config"]
    spec = FeatureSpec.from_json(m["feature_spec"])
    corpus = build_corpus(
        events,
        labels,
        spec,
        horizon_days=float(m.get("churn_horizon_days", cfg["churn_horizon_days"])),
        interval_ms=int(m.get("churn_interval_ms", DAY_MS)),
        val_frac=float(cfg["val_frac"]),
        test_frac=float(cfg["test_frac"]),
    )
    test = corpus.examples.subset(np.flatnonzero(corpus.examples.part == TEST_PART))
    cat, num, mask = encode(corpus, test, spec, int(m["T"]))
    scorer = OnnxScorer(bundle)
    logits = np.concatenate(
        [
            scorer.logits(
                cat[i : i + chunk].astype(np.int64), num[i : i + chunk], mask[i : i + chunk]
            )
            for i in range(0, len(test), chunk)
        ]
    )
    out: dict[str, dict[str, float]] = {}
    for kind in scorer.kinds:
        j = KINDS.index(kind)
        has = test.y[:, j] >= 0
        measured = ranking_metrics(logits[has, j], test.y[has, j])["pr_auc"]
        recorded = float(m["metrics"]["test"][kind]["student"]["pr_auc"])
        out[kind] = {"recorded": recorded, "measured": float(measured)}
    return out
