"""One tiny end-to-end build through the CLI, then checks of what it produced."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modelsynth import make_fixture, write_fixture

from model import cli
from model.bundle import BundleError, load_bundle
from model.features import KINDS, FeatureSpec, encode_batch
from model.scorer import OnnxScorer, Scorer, TorchScorer, load_scorer
from stream.core.cliutil import CommandError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraudstream")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    code: int = args.func(args)
    return code


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("build")
    events, labels = tmp / "e.jsonl", tmp / "l.jsonl"
    write_fixture(make_fixture(users=300, days=40, seed=7), events, labels)
    out = tmp / "bundle"
    assert (
        _run(
            [
                "build",
                "--events",
                str(events),
                "--labels",
                str(labels),
                "--out",
                str(out),
                "--tiny",
                "--churn-horizon-days",
                "3",
                "--threads",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    return out, make_fixture(users=300, days=40, seed=7).__dict__


def test_manifest_describes_the_build(built: tuple[Path, dict[str, Any]]) -> None:
    bundle = load_bundle(built[0])
    m = bundle.manifest
    assert {
        "student.onnx",
        "student.int8.onnx",
        "student.safetensors",
        "teacher.safetensors",
    } <= set(m["files"])
    assert m["T"] == 16 and FeatureSpec.from_json(m["feature_spec"]) == FeatureSpec()
    # Each kind goes to the rules exactly when they beat the student on validation.
    against = m["metrics"]["validation_against_rules"]
    assert set(against) == set(KINDS)
    for k in ("fraud", "brushing"):
        worse = against[k]["student_pr_auc"] < against[k]["rules_pr_auc"]
        assert (m["kinds"][k]["source"] == "rules") == worse, (k, against[k], m["kinds"][k])
        if worse:
            assert m["kinds"][k]["why"].startswith("the rules rank the validation days better")
    assert m["kinds"]["fraud"]["source"] == "model"
    # Churn goes to the student only where it beats the rules, fitted BG/NBD, the habits
    # model and LightGBM; otherwise to the best on validation of those the stream can run.
    chosen = m["metrics"]["churn_selection"]
    pr = chosen["val_pr_auc"]
    best = max(pr[w] for w in ("rules", "btyd", "habits", "lightgbm"))
    source = m["kinds"]["churn"]["source"]
    assert (source == "model") == (pr["student"] >= best)
    if source != "model":
        assert pr[source] == max(pr[w] for w in ("rules", "btyd", "habits"))
    if source in ("btyd", "habits"):
        assert m["kinds"]["churn"][source] == chosen[source]
        assert 0.0 <= m["kinds"]["churn"]["threshold"] <= 1.0
    overall = m["metrics"]["churn_by_history"]["overall"]
    assert set(overall) == {"student", "rules", "btyd", "habits", "lightgbm", "recency"}
    assert overall["recency"]["n"] == overall["student"]["n"] > 0
    assert m["churn_horizon_days"] == 3.0 and m["churn_interval_ms"] == 86_400_000
    for k in KINDS:
        assert 0.0 <= m["thresholds"][k]["threshold"] <= 1.0
        assert m["calibration"][k]["method"] == "platt"
    model = m["metrics"]["model"]
    assert model["onnx_parity_max_abs_diff"] <= 1e-4
    assert model["teacher_params"] >= 4 * model["student_params"]
    assert model["speed_ratio"] >= 2.0  # the 4x target holds for the default sizes


def test_student_learns_the_fixture_patterns(built: tuple[Path, dict[str, Any]]) -> None:
    test = load_bundle(built[0]).manifest["metrics"]["test"]
    for kind in ("fraud", "brushing"):
        res = test[kind]
        assert res["student"]["positives"] > 0
        assert res["student"]["pr_auc"] > 0.6, res
        assert res["int8_max_abs_prob_diff"] < 0.1
        assert res["lightgbm"]["pr_auc"] is not None


def _batch(fixture: dict[str, Any], T: int) -> tuple[Any, Any, Any]:
    by_user: dict[str, list[dict[str, Any]]] = {}
    for ev in fixture["events"]:
        by_user.setdefault(ev["user_id"], []).append(ev)
    return encode_batch([evs[:40] for evs in list(by_user.values())[:64]], FeatureSpec(), T)


def test_backends_agree_on_stream_encoded_windows(built: tuple[Path, dict[str, Any]]) -> None:
    out, fixture = built
    cat, num, mask = _batch(fixture, 16)
    onnx, torch_ = load_scorer(out, "onnx", threads=1), load_scorer(out, "torch", threads=1)
    int8 = load_scorer(out, "onnx-int8", threads=1)
    assert isinstance(onnx, OnnxScorer) and isinstance(torch_, TorchScorer)
    for scorer in (onnx, torch_, int8):
        assert isinstance(scorer, Scorer)
    a, b, c = (s.score_batch(cat, num, mask) for s in (onnx, torch_, int8))
    assert set(a) == set(onnx.kinds) >= {"fraud", "brushing"}
    for k in onnx.kinds:
        assert a[k].shape == (64,) and ((a[k] >= 0) & (a[k] <= 1)).all()
        np.testing.assert_allclose(a[k], b[k], atol=1e-5)
        assert np.abs(a[k] - c[k]).max() < 0.1
    # The graph takes any T up to 64, not only the bundle's.
    assert onnx.score_batch(*_batch(fixture, 64))["fraud"].shape == (64,)
    with pytest.raises(ValueError, match="expected cat"):
        onnx.score_batch(cat[..., :3], num, mask)


def test_the_int8_graph_has_its_own_calibration(built: tuple[Path, dict[str, Any]]) -> None:
    out, _ = built
    manifest = load_bundle(out).manifest
    own = manifest["student"]["onnx_int8_calibration"]
    int8 = load_scorer(out, "onnx-int8", threads=1)
    fp32 = load_scorer(out, "onnx", threads=1)
    assert isinstance(int8, OnnxScorer) and isinstance(fp32, OnnxScorer)
    for k in int8.kinds:
        assert int8.thresholds[k] == own["thresholds"][k]["threshold"]
        assert int8.calibration[k].to_json() == own["calibration"][k]
        assert fp32.thresholds[k] == manifest["thresholds"][k]["threshold"]
        assert fp32.calibration[k].to_json() == manifest["calibration"][k]
    # Fitted on the INT8 graph's own validation logits, not copied.
    assert own["calibration"] != manifest["calibration"]


def test_tampered_bundle_is_refused(built: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(built[0], copy)
    data = bytearray((copy / "student.onnx").read_bytes())
    data[-1] ^= 1
    (copy / "student.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"student\.onnx"):
        load_scorer(copy, "onnx")
    with pytest.raises(CommandError, match=r"student\.onnx"):
        _run(["bench", "model", "--model", str(copy)])


def test_bench_model_reports_json(
    built: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "bench",
        "model",
        "--model",
        str(built[0]),
        "--backends",
        "onnx,torch",
        "--batches",
        "1,8",
        "--seq-lens",
        "16",
        "--seconds",
        "0.05",
        "--threads",
        "1",
    ]
    assert _run(argv) == 0
    report = json.loads(capsys.readouterr().out)
    cells = {(r["backend"], r["batch"], r["T"]) for r in report["results"]}
    assert cells == {(b, n, 16) for b in ("onnx", "torch") for n in (1, 8)}
    assert all(r["seq_per_s"] > 0 and r["p99_ms"] >= r["p50_ms"] for r in report["results"])
    with pytest.raises(CommandError, match="--batches"):
        _run(["bench", "model", "--model", str(built[0]), "--batches", "0"])


def test_build_reports_user_errors(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file"):
        _run(
            [
                "build",
                "--events",
                str(tmp_path / "nope.jsonl"),
                "--labels",
                str(tmp_path / "l.jsonl"),
                "--out",
                str(tmp_path / "b"),
            ]
        )


@pytest.mark.gpu
def test_tensorrt_fp16_parity(built: tuple[Path, dict[str, Any]]) -> None:
    trt_mod = pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible")
    assert trt_mod is not None
    from model.trt import parity_check

    cat, num, mask = _batch(built[1], 16)
    diffs = parity_check(load_bundle(built[0]), cat, num, mask)
    assert diffs["max_abs_prob_diff"] < 1e-2, diffs


def test_kinds_without_labels_keep_the_rules(tmp_path: Path) -> None:
    fixture = make_fixture(users=150, days=30, seed=9)
    fixture.labels = [lab for lab in fixture.labels if lab["kind"] == "fraud"]
    events, labels = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    write_fixture(fixture, events, labels)
    out = tmp_path / "bundle"
    argv = ["build", "--events", str(events), "--labels", str(labels), "--out", str(out),
            "--tiny", "--threads", "1", "--no-progress"]  # fmt: skip
    assert _run(argv) == 0
    manifest = load_bundle(out).manifest
    assert manifest["kinds"]["fraud"]["source"] == "model"
    assert manifest["kinds"]["brushing"] == {"source": "rules", "why": "no labels of this kind"}
    assert manifest["kinds"]["churn"] == {"source": "rules", "why": "no labels of this kind"}
    scorer = load_scorer(out, "onnx", threads=1)
    assert scorer.kinds == ("fraud",)
    cat, num, mask = _batch(fixture.__dict__, 16)
    assert set(scorer.score_batch(cat, num, mask)) == {"fraud"}
