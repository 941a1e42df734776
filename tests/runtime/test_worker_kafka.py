"""The worker against the real broker: state, dead letters, alerts, crash recovery."""

from __future__ import annotations

import base64
import random
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.events import T0, card_testing, ev
from tests.support import WorkerProcess, consume, produce, produce_events

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture
def worker(kafka_broker: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(kafka_broker, tmp_path / "worker").start()
    yield proc
    proc.stop()


def wait_user(worker: WorkerProcess, user: str, total: int, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        status, state = worker.get(f"/users/{user}")
        if status == 200 and state["events_seen"] >= total:
            return state
        time.sleep(0.3)
    raise AssertionError(f"user {user} state {state}: {worker.log_tail()}")


def test_valid_event_updates_user_state(kafka_broker: str, worker: WorkerProcess) -> None:
    event = ev("alice", "item_view", T0, item_id="i1", seller_id="s1", device_id="d1")
    produce_events(kafka_broker, worker.topic("events"), [event])
    state = wait_user(worker, "alice", 1)
    assert [e["event_id"] for e in state["events"]] == [event["event_id"]]
    assert state["events"][0]["item_id"] == "i1"


BAD: list[tuple[bytes | None, bytes, str]] = [
    (b"u", b"{not json", "invalid JSON"),
    (b"u", b"\xff\xfe\xfa", "UTF-8"),
    (b"u", b'["an", "array"]', "JSON object"),
    (b"u", orjson.dumps({"ts": T0, "user_id": "u", "type": "login"}), "'event_id'"),
    (b"u", orjson.dumps({"event_id": "b5", "user_id": "u", "type": "login"}), "'ts'"),
    (b"u", orjson.dumps(ev("u", "teleport")), "'type'"),
    (b"u", orjson.dumps(ev("u", "payment", amount=-5)), "'amount'"),
    (b"u", orjson.dumps(ev("u", "login", ip="1.2.3.999")), "'ip'"),
    (b"u", orjson.dumps(ev("u", "payment", currency="euro")), "'currency'"),
    (b"u", orjson.dumps(ev("u", "login", country="Germany")), "'country'"),
    (b"u", orjson.dumps(ev("u", "review", rating=9)), "'rating'"),
    (b"u", orjson.dumps(ev("u", "login", attrs={"x": "y" * 5000})), "'attrs'"),
    (b"u", b"{" + b" " * (65 * 1024) + b"}", "exceeds"),
    (b"u", orjson.dumps(ev("u", "login", ts="yesterday")), "'ts'"),
    (b"someone-else", orjson.dumps(ev("u", "login")), "key"),
]


def test_each_bad_message_yields_one_dead_letter_and_work_goes_on(
    kafka_broker: str, worker: WorkerProcess
) -> None:
    topic = worker.topic("events")
    produce(kafka_broker, topic, [(k, v) for k, v, _ in BAD])
    after = ev("u", "login", T0, status="ok")
    produce_events(kafka_broker, topic, [after])
    letters = consume(kafka_broker, worker.topic("events.dlq"), expect=len(BAD))
    assert len(letters) == len(BAD)  # exactly one each, none extra
    records = [orjson.loads(m.value()) for m in letters]

    def original(rec: dict[str, Any]) -> bytes:
        if rec.get("raw_encoding") == "base64":
            return base64.b64decode(rec["raw"])
        return str(rec["raw"]).encode()

    by_raw = {original(rec): rec for rec in records}
    for key, raw, needle in BAD:
        rec = by_raw[raw]
        assert needle in rec["error"], (needle, rec["error"])
        assert rec["source_topic"] == topic and isinstance(rec["partition"], int)
        assert isinstance(rec["offset"], int) and rec["key"] == (key.decode() if key else None)
        assert rec["received_at"].endswith("Z")
    state = wait_user(worker, "u", 1)
    assert [e["event_id"] for e in state["events"]] == [after["event_id"]]
    assert worker.metric("fraudstream_events_rejected_total") == len(BAD)


def run_card_testing(kafka_broker: str, tmp_path: Path, name: str) -> list[dict[str, Any]]:
    worker = WorkerProcess(kafka_broker, tmp_path / name).start()
    try:
        events = [ev("carl", "login", T0 - 60000, status="ok"), *card_testing("carl", n=5)]
        for e in events:
            e["event_id"] = f"fixed-{e['ts']}"  # identical input for both runs
        produce_events(kafka_broker, worker.topic("events"), events)
        alerts = consume(kafka_broker, worker.topic("alerts.fraud"), expect=1)
        if name == "first":
            check_views(worker, [orjson.loads(m.value()) for m in alerts])
        return [orjson.loads(m.value()) for m in alerts]
    finally:
        worker.stop()


def check_views(worker: WorkerProcess, alerts: list[dict[str, Any]]) -> None:
    """The on-call views of the alerted user: named fields, RFC 3339 times, the alert."""
    status, index = worker.get("/")
    assert status == 200
    assert {"/metrics", "/users/{user_id}", "/sellers/{seller_id}"} <= {
        e["path"] for e in index["endpoints"]
    }
    deadline, state = time.monotonic() + 30, None
    while time.monotonic() < deadline:  # the view learns of an alert once it is delivered
        status, state = worker.get("/users/carl")
        if status == 200 and state["recent_alerts"]:
            break
        time.sleep(0.2)
    assert state is not None and state["recent_alerts"], state
    [recent] = state["recent_alerts"]
    assert recent["alert_id"] == alerts[0]["alert_id"]
    assert recent["summary"] == alerts[0]["summary"]
    assert state["events"][0]["ts"] == "2026-11-18T11:05:40.000Z" and state["events_seen"] == 6
    assert state["cooldowns_since"]  # the alert started the user's cooldown
    request = urllib.request.Request(worker.url("/users/carl"), headers={"Accept": "text/html"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/html")
        page = resp.read().decode()
    assert "<h1>user carl</h1>" in page and alerts[0]["alert_id"] in page
    assert worker.get("/sellers/nobody")[0] == 404


def test_card_testing_alert_and_replay_gives_same_id(kafka_broker: str, tmp_path: Path) -> None:
    first = run_card_testing(kafka_broker, tmp_path, "first")
    assert len(first) == 1
    alert = first[0]
    assert alert["kind"] == "fraud" and alert["subject"] == {"type": "user", "id": "carl"}
    assert alert["reasons"] and alert["evidence_event_ids"]
    assert alert["pattern"] == "card_testing" and "user carl" in alert["summary"]
    assert {e["type"] for e in alert["evidence"]} == {"payment"}
    assert 0 <= alert["score"] <= 1 and alert["score"] >= alert["threshold"]
    replayed = run_card_testing(kafka_broker, tmp_path, "replay")
    assert [a["alert_id"] for a in replayed] == [alert["alert_id"]]


def test_kill_9_mid_stream_loses_no_state(
    kafka_broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The restarted worker waits for the group to drop the killed one: 10 s, not 60.
    monkeypatch.setenv("FRAUDSTREAM_SESSION_TIMEOUT_SECONDS", "10")
    rng = random.Random(5)
    users = [f"k{i}" for i in range(40)]
    events = [
        ev(
            rng.choice(users),
            rng.choice(["page_view", "item_view", "search"]),
            T0 + i * 1000,
            event_id=f"k-{i}",
        )
        for i in range(4000)
    ]
    worker = WorkerProcess(kafka_broker, tmp_path / "w")
    worker.start()
    produce_events(kafka_broker, worker.topic("events"), events)
    worker.wait_metric("fraudstream_events_consumed_total", 1000)
    worker.kill()  # SIGKILL: no shutdown hooks, no final commit
    worker.start()
    try:
        expected: dict[str, list[str]] = {}
        for e in events:
            expected.setdefault(e["user_id"], []).append(e["event_id"])
        for user, ids in expected.items():
            state = wait_user(worker, user, len(ids), timeout=120)
            kept = [e["event_id"] for e in state["events"]]
            assert kept == ids[-len(kept) :]  # newest events, in order, none missing
            assert state["events_seen"] == len(ids)  # each event counted once: no loss, no double
    finally:
        worker.stop()


def test_churn_clock_alerts_an_inactive_user(
    kafka_broker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulated days pass in a second here, beyond the wall clock: the event-time guard
    # judges by the partition's own event time, with room for day-long steps (as in up).
    monkeypatch.setenv("FRAUDSTREAM_WALL_CLOCK_SKEW", "false")
    monkeypatch.setenv("FRAUDSTREAM_MAX_SKEW_MS", str(40 * 86_400_000))
    # Two users: any budget per 1,000 users would allow an alert every few years.
    monkeypatch.setenv("FRAUDSTREAM_CHURN_BUDGET_PER_1000", "0")
    worker = WorkerProcess(kafka_broker, tmp_path / "w", partitions=1).start()
    try:
        day = 86_400_000
        habitual = [ev("quitter", "page_view", T0 + d * day, event_id=f"q{d}") for d in range(20)]
        # Another user's events move the partition's event-time clock 12 days on.
        later = [ev("other", "page_view", T0 + (31 + d) * day, event_id=f"o{d}") for d in range(2)]
        produce_events(kafka_broker, worker.topic("events"), habitual + later)
        alerts = [
            orjson.loads(m.value())
            for m in consume(kafka_broker, worker.topic("alerts.churn"), expect=1)
        ]
        assert [a["subject"]["id"] for a in alerts] == ["quitter"]
        assert alerts[0]["event_id"] == "q19" and alerts[0]["score"] >= alerts[0]["threshold"]
    finally:
        worker.stop()


def test_partitions_moving_between_workers_keep_every_users_state(
    kafka_broker: str, tmp_path: Path
) -> None:
    """A worker that hands partitions to a second one and takes them back must not reuse
    the states it held before: the other worker changed them meanwhile."""
    users = [f"r{i}" for i in range(24)]
    rounds = [
        [
            ev(u, "item_view", T0 + (r * 100 + i) * 1000, event_id=f"r{r}-{i}-{u}")
            for i in range(3)
            for u in users
        ]
        for r in range(3)
    ]
    prefix = f"t{uuid.uuid4().hex[:10]}."
    first = WorkerProcess(kafka_broker, tmp_path / "a", prefix=prefix).start()
    second = WorkerProcess(kafka_broker, tmp_path / "b", prefix=prefix)
    consumed = "fraudstream_events_consumed_total"
    try:
        produce_events(kafka_broker, first.topic("events"), rounds[0])
        first.wait_metric(consumed, len(rounds[0]))
        second.start()
        second.wait_metric("fraudstream_rebalances_total", 1)
        produce_events(kafka_broker, first.topic("events"), rounds[1])
        # Both workers must have taken part in the second round.
        second.wait_metric(consumed, 1)
        deadline = time.monotonic() + 120
        while first.metric(consumed) + second.metric(consumed) < 2 * len(rounds[0]):
            assert time.monotonic() < deadline, first.log_tail()
            time.sleep(0.3)
        second.stop()  # its partitions go back to the first worker
        produce_events(kafka_broker, first.topic("events"), rounds[2])
        for user in users:
            state = wait_user(first, user, 9, timeout=120)
            assert state["events_seen"] == 9, (user, state["events_seen"])
            ids = [e["event_id"] for e in state["events"]]
            assert ids == sorted(ids, key=lambda i: (int(i[1]), int(i.split("-")[1])))
    finally:
        second.stop()
        first.stop()
