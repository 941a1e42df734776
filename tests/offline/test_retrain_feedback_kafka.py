"""``retrain --feedback-topic``: verdicts read from the ``feedback`` topic itself, every
partition (whichever worker would keep them), one per id, dead-lettered records skipped."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from stream.cli import main
from stream.offline.retrain import merged_labels, topic_verdicts
from stream.runtime.topics import ensure_topics

pytestmark = pytest.mark.kafka

T = 1_795_000_000_000


def verdict(event_id: str, kind: str = "fraud", verdict: str = "confirmed") -> bytes:
    return orjson.dumps({"kind": kind, "verdict": verdict, "analyst": "ana", "at": T,
                         "event_id": event_id, "feedback_id": f"fb-{event_id}"})  # fmt: skip


def test_every_partition_of_the_feedback_topic_reaches_retraining(
    kafka_broker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    topic = f"{prefix}feedback"
    ensure_topics(kafka_broker, [topic], 3)
    producer = Producer({"bootstrap.servers": kafka_broker})
    # One verdict per partition (three workers would each keep one), a redelivered verdict,
    # a record the worker dead-letters, and a tombstone.
    bad = b'{"kind": "fraud", "verdict": "maybe"}'
    sent = [(0, verdict("e0")), (1, verdict("e1", verdict="false_positive")), (2, verdict("e2")),
            (2, verdict("e2")), (1, bad), (0, b"")]  # fmt: skip
    for partition, value in sent:
        producer.produce(topic, value=value, key=b"k", partition=partition)
    assert producer.flush(30) == 0
    # And one through the command analysts use.
    args = ["alerts", "feedback", "--broker", kafka_broker, "--topic-prefix", prefix]
    assert main([*args, "--kind", "brushing", "--verdict", "confirmed", "--seller-id", "s7",
                 "--analyst", "bo"]) == 0  # fmt: skip
    capsys.readouterr()

    verdicts, skipped = topic_verdicts(kafka_broker, topic, str(tmp_path))
    assert sorted(v.event_id or v.seller_id or "" for v in verdicts) == ["e0", "e1", "e2", "s7"]
    assert skipped == 2
    labels = tmp_path / "labels.jsonl"
    labels.write_bytes(b'{"kind": "fraud", "event_id": "e1"}\n')
    merged, _ = merged_labels([labels], [], tuple(verdicts))
    # e1 was found a false positive; the seller's confirmation is a brushing label.
    assert sorted(x.get("event_id") or x["seller_id"] for x in merged) == ["e0", "e2", "s7"]


def test_a_missing_feedback_topic_is_named(
    kafka_broker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, labels = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    events.write_bytes(b"")
    labels.write_bytes(b"")
    code = main(["retrain", "--model", str(tmp_path / "none"), "--events", str(events),
                 "--labels", str(labels), "--broker", kafka_broker,
                 "--feedback-topic", "no-such-feedback"])  # fmt: skip
    assert code != 0
    assert "--feedback-topic no-such-feedback: no such topic" in capsys.readouterr().err
