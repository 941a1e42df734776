"""Drift: the population stability index, the bundle's reference distributions, and the
window of recent decisions a worker keeps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.bundle import MANIFEST, load_bundle, write_bundle
from model.drift import GROUPS, MIN_SAMPLES, PURCHASE, DriftWindow, psi, reference
from model.features import FeatureSpec
from model.sequence_model import SequenceModel
from stream.offline.backtest import run_backtest

SPEC = FeatureSpec()


def test_psi_is_zero_for_equal_shares_and_large_for_a_shift() -> None:
    ref = np.array([10.0, 30.0, 60.0])
    assert psi(ref * 3, ref) == pytest.approx(0.0, abs=1e-3)
    assert 0.0 < psi(np.array([12.0, 30.0, 58.0]), ref) < 0.1
    assert psi(np.array([60.0, 30.0, 10.0]), ref) > 0.25
    assert np.isfinite(psi(np.array([0.0, 0.0, 1.0]), ref))  # empty bins do not blow up


def test_every_model_feature_belongs_to_a_group() -> None:
    members = {f for fs in GROUPS.values() for f in fs}
    assert members == (set(SPEC.cat_features) | set(SPEC.num_features)) - {"seller", "hour"}


def synthetic(rng: np.random.Generator, n: int, amount_shift: float = 0.0) -> tuple:
    cat = np.stack([rng.integers(2, size, n) for size in SPEC.cardinalities], axis=1)
    cat[:, 0] = rng.choice([PURCHASE, 2, 3], n)
    num = rng.normal(0.0, 1.0, (n, SPEC.n_num)).astype(np.float32)
    num[:, SPEC.num_features.index("log_amount")] += amount_shift
    return cat, num


def test_a_window_like_the_reference_is_stable_and_a_shifted_one_is_not() -> None:
    rng = np.random.default_rng(1)
    cat, num = synthetic(rng, 4000)
    scores = {"fraud": rng.beta(1, 20, 4000), "brushing": rng.beta(1, 20, 4000)}
    ref = json.loads(json.dumps(reference(cat, num, scores, SPEC)))  # as the manifest keeps it
    same, moved = DriftWindow(ref, SPEC, 2000), DriftWindow(ref, SPEC, 2000)
    assert same.feature_psi() == {} and same.score_psi() == {}  # nothing seen yet
    for window, shift, alpha in ((same, 0.0, 1), (moved, 2.0, 5)):
        for _ in range(10):  # model calls of 300 decisions, as (batch, T, features)
            c, n = synthetic(rng, 300, shift)
            out = {"fraud": rng.beta(alpha, 20, 300), "brushing": rng.beta(1, 20, 300)}
            window.observe(c[:, None, :], n[:, None, :], out)
    assert same.rows >= 2000 and same.rows - 300 < 2000  # a sliding window of ~2000
    stable, shifted = same.feature_psi(), moved.feature_psi()
    assert set(stable) == set(GROUPS)
    assert max(stable.values()) < 0.1
    assert shifted["amounts"] > 0.25 and shifted["event_type"] < 0.1
    assert same.score_psi()["fraud"] < 0.1 < 0.25 < moved.score_psi()["fraud"]
    assert "churn" not in same.score_psi()  # no churn reference, no churn gauge


@pytest.mark.slow
def test_a_built_bundle_records_references_and_old_ones_still_load(
    tiny_bundle: tuple[Path, Path], tmp_path: Path
) -> None:
    events, bundle_dir = tiny_bundle
    bundle = load_bundle(bundle_dir)
    ref = bundle.manifest["drift_reference"]
    assert set(ref["features"]) == set(SPEC.cat_features) | set(SPEC.num_features)
    assert ref["samples"] > 0 and set(ref["scores"]) <= {"fraud", "brushing", "churn"}
    model = SequenceModel(bundle_dir, "onnx", drift_window=3000)
    run_backtest(events, tmp_path / "a.jsonl", model=model)  # its own training traffic
    assert model.drift is not None and model.drift.rows >= MIN_SAMPLES
    assert max(model.drift.feature_psi().values()) < 0.25
    # A bundle written before references existed: it loads and has no drift window.
    meta = {k: v for k, v in bundle.manifest.items() if k not in ("drift_reference", "files")}
    files = {name: bundle_dir / name for name in bundle.manifest["files"]}
    old = write_bundle(tmp_path / "old", files, meta)
    assert "drift_reference" not in json.loads((old.path / MANIFEST).read_text())
    assert SequenceModel(old.path, "onnx").drift is None
