"""A worker whose bundle gave churn to the habits model scores churn with it: the alert
names the detector, leads with its reason and carries the bundle's version."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import pytest

from model.bundle import MANIFEST, content_version
from stream.detect.btyd import BGNBD
from stream.detect.churn_habits import FEATURES, HabitModel
from tests.events import T0, ev
from tests.support import WorkerProcess, consume, produce_events

pytestmark = pytest.mark.kafka

SHIPPED = Path(__file__).resolve().parents[2] / "model" / "bundles" / "default"


def habits_bundle(out: Path) -> str:
    """The shipped bundle with churn given to a habits model that alerts after about ten
    idle days (log1p(idle) over 2.4), whatever else the user did."""
    shutil.copytree(SHIPPED, out)
    n = len(FEATURES)
    weights = [0.0] * n
    weights[FEATURES.index("log_idle_days")] = 4.0
    model = HabitModel((0.0,) * n, (1.0,) * n, tuple(weights), -4.0 * 2.4, BGNBD.prior(30.0))
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    manifest["kinds"]["churn"] = {
        "source": "habits",
        "why": "habits ranks the validation days better",
        "habits": model.to_json(),
        "threshold": 0.5,
    }
    manifest["version"] = content_version(manifest)
    (out / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return str(manifest["version"])


def test_worker_scores_churn_with_the_habits_model(
    kafka_broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_WALL_CLOCK_SKEW", "false")
    monkeypatch.setenv("FRAUDSTREAM_MAX_SKEW_MS", str(40 * 86_400_000))
    monkeypatch.setenv("FRAUDSTREAM_CHURN_BUDGET_PER_1000", "0")
    version = habits_bundle(tmp_path / "bundle")
    worker = WorkerProcess(
        kafka_broker, tmp_path / "w", partitions=1, log_level="warn", model=tmp_path / "bundle"
    ).start()
    try:
        day = 86_400_000
        habitual = [ev("quitter", "page_view", T0 + d * day, event_id=f"q{d}") for d in range(5)]
        later = [ev("other", "page_view", T0 + (30 + d) * day, event_id=f"o{d}") for d in range(2)]
        produce_events(kafka_broker, worker.topic("events"), habitual + later)
        alerts = [
            orjson.loads(m.value())
            for m in consume(kafka_broker, worker.topic("alerts.churn"), expect=1)
        ]
        assert [a["subject"]["id"] for a in alerts] == ["quitter"]
        assert alerts[0]["reasons"][0]["code"] == "habits.churn"
        assert alerts[0]["model_version"] == version
    finally:
        worker.stop()
