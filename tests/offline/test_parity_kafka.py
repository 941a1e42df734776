"""A file replayed through Kafka to a worker, and run through ``backtest``: same alerts."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from model.sequence_model import SequenceModel
from stream.detect.churn import ChurnConfig
from stream.local.workerproc import WorkerProcess
from stream.offline.backtest import run_backtest
from stream.offline.replay import replay_file
from stream.simulate import SimConfig, generate_files
from tests.support import consume

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
KINDS = ("fraud", "brushing", "churn")


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("parity")
    events, labels = root / "e.jsonl", root / "l.jsonl"
    # Fraud five times the default rate, so both detectors raise enough alerts to compare.
    config = SimConfig(
        users=400, days=8, seed=11, start=datetime(2026, 10, 1, tzinfo=UTC), fraud_rate=0.04
    )
    return events, generate_files(events, labels, config).events


def offline_alerts(
    events: Path, out: Path, model: SequenceModel | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    # Without the closing evaluation, which the worker has no counterpart for.
    run_backtest(
        events, out, model=model, churn=ChurnConfig(budget_per_1000=None), close_churn=False
    )
    found: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
    for line in out.read_bytes().splitlines():
        alert = orjson.loads(line)
        found[alert["kind"]][alert["alert_id"]] = alert
    return found


def online_alerts(
    broker: str, events: Path, count: int, worker: WorkerProcess
) -> tuple[dict[str, dict[str, dict[str, Any]]], float]:
    """The worker's alerts per kind, and how many model calls it made."""
    worker.start()
    try:
        replay_file(events, broker, worker.topic("events"))
        worker.wait_metric("fraudstream_events_consumed_total", count, timeout=240)
        wait_seller_side_done(worker)
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for kind in KINDS:
            messages = consume(broker, worker.topic(f"alerts.{kind}"), 1, timeout=15)
            found[kind] = {a["alert_id"]: a for a in (orjson.loads(m.value()) for m in messages)}
        return found, worker.metric("fraudstream_model_batch_size_count")
    finally:
        worker.stop()


def wait_seller_side_done(worker: WorkerProcess, timeout: float = 60) -> None:
    """Until no seller record waits for a watermark (two readings a second apart)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        quiet = quiet + 1 if worker.metric("fraudstream_seller_reorder_waiting") == 0 else 0
        time.sleep(1)


@pytest.fixture(autouse=True)
def patient_seller_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker under test shares two cores with the broker and the replay: its input
    partitions may drift apart by more than the default wait, so give the watermarks time."""
    monkeypatch.setenv("FRAUDSTREAM_REORDER_WAIT_MS", "10000")
    # The churn budget is shared out per input partition, so under one the worker's eight
    # partitions and the backtest's one alert different users: compare without it.
    monkeypatch.setenv("FRAUDSTREAM_CHURN_BUDGET_PER_1000", "0")


def assert_churn_agrees(online: set[str], offline: set[str]) -> None:
    # The worker's churn clocks run per partition and a partition's clock only moves with its
    # own events, so the last ticks of a quiet partition may be missing online; whatever the
    # stream raised, the backtest raised.
    assert online and online <= offline
    assert len(online) >= 0.8 * len(offline)


def test_stream_and_backtest_agree(
    kafka_broker: str, traffic: tuple[Path, int], tmp_path: Path
) -> None:
    events, count = traffic
    offline = offline_alerts(events, tmp_path / "a.jsonl")
    assert offline["fraud"] and offline["brushing"] and offline["churn"]
    worker = WorkerProcess(kafka_broker, tmp_path / "w", log_level="warn")
    online, model_calls = online_alerts(kafka_broker, events, count, worker)
    assert model_calls == 0
    assert set(online["fraud"]) == set(offline["fraud"])
    # The seller side decides purchases in event time, behind the input partitions' watermarks.
    assert set(online["brushing"]) == set(offline["brushing"])
    assert_churn_agrees(set(online["churn"]), set(offline["churn"]))


def test_stream_with_model_and_backtest_agree(
    kafka_broker: str,
    traffic: tuple[Path, int],
    tiny_bundle: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    """With a bundle the worker scores decisions in micro-batches across users, the backtest
    in batches of its own: the same fraud alerts, scores within 1e-6, the same reasons."""
    events, count = traffic
    _, bundle = tiny_bundle
    model = SequenceModel(bundle, "onnx")
    offline = offline_alerts(events, tmp_path / "a.jsonl", model)
    assert len(offline["fraud"]) >= 3
    worker = WorkerProcess(kafka_broker, tmp_path / "w", log_level="warn", model=bundle,
                           backend="onnx")  # fmt: skip
    online, model_calls = online_alerts(kafka_broker, events, count, worker)
    assert model_calls > 0
    assert set(online["fraud"]) == set(offline["fraud"])
    assert set(online["brushing"]) == set(offline["brushing"])
    for alert_id, alert in online["fraud"].items():
        expected = offline["fraud"][alert_id]
        assert alert["score"] == pytest.approx(expected["score"], abs=1e-6)
        assert alert["model_version"] == model.version
        assert [r["code"] for r in alert["reasons"]] == [r["code"] for r in expected["reasons"]]
        assert alert["evidence_event_ids"] == expected["evidence_event_ids"]
    assert_churn_agrees(set(online["churn"]), set(offline["churn"]))
    if "churn" in model.kinds:  # the model scores idle users at the same ticks
        for alert_id, alert in online["churn"].items():
            assert alert["reasons"][0]["code"] == "model.churn"
            assert alert["score"] == pytest.approx(offline["churn"][alert_id]["score"], abs=1e-6)


def alert_id(message: Any) -> str:
    return str(orjson.loads(message.value())["alert_id"])


def wait_caught_up(worker: WorkerProcess, timeout: float = 240) -> None:
    """Until the restarted worker has consumed something and reports no lag (the lag gauge
    is refreshed every 5 s, so two refreshes must have passed)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        consumed = worker.metric("fraudstream_events_consumed_total")
        settled = time.monotonic() - started > 12
        if consumed and settled and worker.metric("fraudstream_consumer_lag") == 0:
            return
        time.sleep(1)
    raise AssertionError(f"the worker did not catch up:\n{worker.log_tail()}")


def test_kill_9_mid_stream_loses_and_invents_no_alert(
    kafka_broker: str,
    traffic: tuple[Path, int],
    tiny_bundle: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    """SIGKILL a third of the way in, restart: every alert the backtest raises arrives, none
    other does. At-least-once may repeat an alert in flight at the kill, with the same id:
    only an alert of an event whose offset the group had not committed."""
    events, count = traffic
    _, bundle = tiny_bundle
    offline = offline_alerts(events, tmp_path / "a.jsonl", SequenceModel(bundle, "onnx"))
    worker = WorkerProcess(kafka_broker, tmp_path / "w", log_level="warn", model=bundle,
                           backend="onnx").start()  # fmt: skip
    try:
        replay_file(events, kafka_broker, worker.topic("events"))
        worker.wait_metric("fraudstream_events_consumed_total", count // 3, timeout=240)
        # Something committed before the kill, or the check of repeats below means nothing.
        deadline = time.monotonic() + 30
        while not any(
            committed_offsets(kafka_broker, worker.app_id, worker.topic("events")).values()
        ):
            assert time.monotonic() < deadline, "the worker committed nothing"
            time.sleep(0.2)
        worker.kill()
        committed = committed_offsets(kafka_broker, worker.app_id, worker.topic("events"))
        assert sum(committed.values()) < count
        worker.start()
        wait_caught_up(worker)
        # Repeats at the kill must not end the wait before every distinct alert is in.
        topic = worker.topic("alerts.fraud")
        messages = consume(kafka_broker, topic, len(offline["fraud"]), 30, unique=alert_id)
    finally:
        worker.stop()
    alerts = [orjson.loads(m.value()) for m in messages]
    ids = [a["alert_id"] for a in alerts]
    assert set(ids) == set(offline["fraud"])
    repeated = {i for i in ids if ids.count(i) > 1}
    where = event_offsets(kafka_broker, worker.topic("events"))
    for alert in alerts:
        if alert["alert_id"] in repeated:
            partition, offset = where[alert["event_id"]]
            assert offset >= committed[partition], (
                f"alert {alert['alert_id']} repeated, but its event (partition {partition}, "
                f"offset {offset}) was committed at the kill (committed {committed})"
            )
    assert len(repeated) < len(set(ids))  # a restart that repeated everything is no resume


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset of every partition of ``topic`` (0 where none)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in partitions]
        return {tp.partition: max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10)}
    finally:
        consumer.close()


def event_offsets(bootstrap: str, topic: str) -> dict[str, tuple[int, int]]:
    """Every event's partition and offset in ``topic``, by event id."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        where: dict[str, tuple[int, int]] = {}
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + 60
        while len(done) < len(ends) and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 1.0):
                if msg.error() is None:
                    where[orjson.loads(msg.value())["event_id"]] = (msg.partition(), msg.offset())
                    if msg.offset() + 1 >= ends[msg.partition()]:
                        done.add(msg.partition())
        return where
    finally:
        consumer.close()
