"""One far-future event must not blind detection for its user (the real broker)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from stream.local.workerproc import WorkerProcess
from tests.events import T0, card_testing, ev
from tests.support import consume, produce_events

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
YEAR_MS = 365 * 24 * 3600 * 1000


def test_a_far_future_event_is_refused_and_the_card_testing_after_it_is_alerted(
    kafka_broker: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(kafka_broker, tmp_path / "w", log_level="warn").start()
    try:
        user = "mallory"
        warmup = [ev(user, "login", T0, status="ok", device_id="d1")]
        future = ev(user, "page_view", T0 + 30 * YEAR_MS)
        burst = card_testing(user, T0 + 60_000)
        produce_events(kafka_broker, worker.topic("events"), [*warmup, future, *burst])
        letters = consume(kafka_broker, worker.topic("events.dlq"), 1, timeout=60)
        assert len(letters) == 1
        letter = orjson.loads(letters[0].value())
        assert letter["reason"] == "future" and "ts" in letter["error"]
        assert orjson.loads(letter["raw"])["event_id"] == future["event_id"]
        alerts = consume(kafka_broker, worker.topic("alerts.fraud"), 1, timeout=60)
        found = [orjson.loads(m.value()) for m in alerts]
        assert [a["user_id"] for a in found] == [user]
        assert found[0]["event_id"] in {e["event_id"] for e in burst}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, state = worker.get(f"/users/{user}")
            if status == 200 and state["events_seen"] == 1 + len(burst):
                break
            time.sleep(0.3)
        assert state["events_seen"] == 1 + len(burst)
        assert future["event_id"] not in {e["event_id"] for e in state["events"]}
    finally:
        worker.stop()
