"""Analyst verdicts through a real broker: `fraudstream alerts feedback` writes one, the
worker keeps valid ones in its data directory and dead-letters bad ones naming the field."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from stream.cli import main
from stream.core.feedback import read_feedback
from stream.runtime.feedback_keeper import FEEDBACK_FILE
from tests.support import WorkerProcess, consume, produce

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_verdicts_are_kept_and_bad_ones_dead_lettered(
    kafka_broker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = WorkerProcess(kafka_broker, tmp_path / "worker").start()
    try:
        args = ["alerts", "feedback", "--broker", kafka_broker, "--topic-prefix", worker.prefix]
        assert main([*args, "--kind", "fraud", "--verdict", "confirmed", "--event-id", "e9",
                     "--alert-id", "a9", "--analyst", "ana"]) == 0  # fmt: skip
        sent = orjson.loads(capsys.readouterr().out)
        assert main([*args, "--kind", "fraud", "--verdict", "confirmed"]) == 1
        assert "names no subject" in capsys.readouterr().err
        bad = orjson.dumps({"kind": "fraud", "verdict": "perhaps", "analyst": "x", "at": 1,
                            "event_id": "e1"})  # fmt: skip
        produce(kafka_broker, worker.topic("feedback"), [(b"e1", bad)])
        letters = consume(kafka_broker, worker.topic("events.dlq"), expect=1)
        assert len(letters) == 1
        letter = orjson.loads(letters[0].value())
        assert "field 'verdict'" in letter["error"]
        assert letter["source_topic"] == worker.topic("feedback")
        path = worker.data_dir / FEEDBACK_FILE
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (path.is_file() and path.read_bytes()):
            time.sleep(0.3)
        worker.wait_metric("fraudstream_feedback_total", 1)
    finally:
        worker.stop()
    kept = read_feedback(path)
    assert [(f.id, f.event_id, f.alert_id, f.analyst) for f in kept] == [
        (sent["feedback_id"], "e9", "a9", "ana")
    ]
