"""A new bundle replaces the running one without a restart: nothing lost, nothing doubled."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import orjson
import pytest

from model.bundle import MANIFEST, load_bundle, write_bundle
from model.drift import GROUPS
from model.sequence_model import SequenceModel
from stream.local.workerproc import WorkerProcess
from stream.offline.backtest import run_backtest
from stream.offline.replay import replay_file
from tests.support import consume

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def same_weights_new_version(src: Path, out: Path) -> str:
    """A second bundle with the first one's files: another version, the same decisions."""
    manifest = json.loads((src / MANIFEST).read_text())
    files = {name: src / name for name in manifest.pop("files")}
    for key in ("format", "version", "created_at"):
        manifest.pop(key)
    manifest["note"] = "re-released"
    return write_bundle(out, files, manifest).version


def point(link: Path, target: Path) -> None:
    """Swap a symlink atomically, as an operator would with ``ln -sfn``."""
    tmp = link.with_name(link.name + ".new")
    tmp.symlink_to(target)
    os.replace(tmp, link)


def test_worker_swaps_bundles_between_batches(
    kafka_broker: str,
    tiny_bundle: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events, bundle_a = tiny_bundle
    version_a = load_bundle(bundle_a).version
    version_b = same_weights_new_version(bundle_a, tmp_path / "bundle-b")
    assert version_b != version_a
    lines = events.read_bytes().splitlines(keepends=True)  # sorted by ts
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"".join(lines[: len(lines) // 2]))
    second.write_bytes(b"".join(lines[len(lines) // 2 :]))
    offline = tmp_path / "offline.jsonl"
    run_backtest(events, offline, model=SequenceModel(bundle_a, "onnx"))
    expected = {
        a["alert_id"]
        for a in map(orjson.loads, offline.read_bytes().splitlines())
        if a["kind"] == "fraud"
    }
    assert expected

    link = tmp_path / "current"
    link.symlink_to(bundle_a)
    monkeypatch.setenv("FRAUDSTREAM_MODEL_RELOAD_SECONDS", "0.5")
    monkeypatch.setenv("FRAUDSTREAM_DRIFT_SECONDS", "0.5")
    worker = WorkerProcess(kafka_broker, tmp_path / "w", log_level="warn", model=link,
                           backend="onnx").start()  # fmt: skip
    try:
        replay_file(first, kafka_broker, worker.topic("events"))
        worker.wait_metric("fraudstream_events_consumed_total", len(lines) // 2, timeout=180)
        point(link, tmp_path / "bundle-b")
        worker.wait_metric("fraudstream_model_reloads_total", 1, timeout=30)
        replay_file(second, kafka_broker, worker.topic("events"))
        worker.wait_metric("fraudstream_events_consumed_total", len(lines), timeout=180)
        drift = wait_drift(worker)
        info = str(worker.get("/metrics")[1])
        alerts = [
            orjson.loads(m.value())
            for m in consume(kafka_broker, worker.topic("alerts.fraud"), len(expected), 20)
        ]
    finally:
        worker.stop()
    assert f'version="{version_b}"' in info
    # Drift of the bundle's own traffic, against its reference: every group present, stable.
    assert set(drift) == set(GROUPS) and max(drift.values()) < 0.25, drift
    assert "fraudstream_model_reload_failures_total 0.0" in info
    ids = [a["alert_id"] for a in alerts]
    assert len(ids) == len(set(ids)), "an alert was emitted twice"
    assert set(ids) == expected  # same weights: the swap changed no decision
    # Every alert names the bundle that scored it: the first half A's, the second B's.
    second_half = {orjson.loads(line)["event_id"] for line in lines[len(lines) // 2 :]}
    for alert in alerts:
        wanted = version_b if alert["event_id"] in second_half else version_a
        assert alert["model_version"] == wanted


def wait_drift(worker: WorkerProcess, timeout: float = 30) -> dict[str, float]:
    """The feature drift gauges, once the worker has set them."""
    deadline = time.monotonic() + timeout
    found: dict[str, float] = {}
    while time.monotonic() < deadline and len(found) < len(GROUPS):
        for line in str(worker.get("/metrics")[1]).splitlines():
            if line.startswith("fraudstream_feature_psi{"):
                group = line.split('group="')[1].split('"')[0]
                found[group] = float(line.rsplit(" ", 1)[1])
        time.sleep(0.3)
    return found
