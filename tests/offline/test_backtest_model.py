"""Backtests with a model bundle: the model decides fraud, the rules keep the other kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from model.sequence_model import SequenceModel
from stream.cli import main
from stream.offline.backtest import run_backtest

pytestmark = pytest.mark.slow


@pytest.fixture
def built(tiny_bundle: tuple[Path, Path]) -> tuple[Path, Path]:
    return tiny_bundle


def read(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def test_model_scores_fraud_decisions(built: tuple[Path, Path], tmp_path: Path) -> None:
    events, bundle = built
    model = SequenceModel(bundle, "onnx")
    assert "fraud" in model.kinds
    run_backtest(events, tmp_path / "a.jsonl", tmp_path / "s.jsonl", model=model)
    alerts, scores = read(tmp_path / "a.jsonl"), read(tmp_path / "s.jsonl")
    fraud_rows = [r for r in scores if r["kind"] == "fraud"]
    assert len({r["score"] for r in fraud_rows}) > 100  # probabilities, not rule steps
    fraud = [a for a in alerts if a["kind"] == "fraud"]
    # The model's alerts cross its threshold; below it a rule may fire, naming the score.
    by_model = [a for a in fraud if a["reasons"][0]["code"] == "model.fraud"]
    assert by_model, [a["reasons"][0] for a in fraud]
    for alert in fraud:
        assert alert["model_version"] == model.version
        assert alert["score"] >= alert["threshold"]
        if alert in by_model:
            assert alert["threshold"] == pytest.approx(model.thresholds["fraud"], abs=1e-6)
        else:
            assert alert["reasons"][-1]["code"] == "model.score"
    # Fraud and brushing carry the bundle's version (the rules below its threshold are part of
    # its decision); churn alerts name their detector and carry the version only when the
    # bundle's fitted detector scored them (student, habits model or fitted BG/NBD), not the
    # rules with their prior parameters.
    assert {a["model_version"] for a in alerts if a["kind"] != "churn"} == {model.version}
    for alert in (a for a in alerts if a["kind"] == "churn"):
        assert (alert["model_version"] == model.version) == (alert["detector"] != "rules")


def test_tampered_bundle_is_refused(
    built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, bundle = built
    copy = tmp_path / "bundle"
    copy.mkdir()
    for f in bundle.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    with open(copy / "student.onnx", "ab") as f:
        f.write(b"\0")
    code = main(
        [
            "backtest",
            "--events",
            str(events),
            "--alerts-out",
            str(tmp_path / "a.jsonl"),
            "--model",
            str(copy),
        ]
    )
    assert code != 0
    assert "student.onnx" in capsys.readouterr().err
