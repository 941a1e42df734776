"""Privacy by default, on a real broker and RocksDB: a worker run with no key configured keeps
no raw device id, IP address or instrument token in its RocksDB state, its changelog and
seller topics, its log or its alerts; a restart keeps the same generated key."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from rocksdict import AccessType, Rdict

from stream.core.privacy import GENERATED_KEY_FILE, Pseudonymiser
from stream.runtime.topics import changelog_topic
from tests.detect.test_rules import history, takeover
from tests.events import T0, ev
from tests.support import WorkerProcess, consume, produce_events

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

DEVICE, IP, CARD = "dev-PRIVATE-4711", "198.51.100.213", "tok-PRIVATE-0815"
MINUTE = 60_000


def traffic() -> list[dict[str, Any]]:
    """An account takeover whose rule quotes the new device, card testing on raw tokens, and
    purchases at one seller from one device and address (seller state and topic)."""
    ato = history("victim") + takeover("victim", 1500.0, device=DEVICE)
    for e in ato:
        if "instrument_id" in e:
            e["instrument_id"] = CARD
    cards = [
        ev("tester", "payment", T0 + i * MINUTE, status="failed", amount=1.0,
           instrument_id=f"{CARD}-{i}", device_id=DEVICE, ip=IP, currency="EUR")
        for i in range(4)
    ]  # fmt: skip
    buys = [
        ev(f"buyer{i}", "purchase", T0 + (20 + i) * MINUTE, seller_id="shop", item_id="i1",
           order_id=f"o{i}", amount=9.0, device_id=DEVICE, ip=IP, instrument_id=CARD)
        for i in range(3)
    ]  # fmt: skip
    return ato + cards + buys


def raw_values() -> list[bytes]:
    return [v.encode() for v in (DEVICE, IP, CARD, "10.0.0.1", "203.0.113.9")]


def rocksdb_items(data_dir: Path) -> Iterator[tuple[bytes, bytes]]:
    """Every key and value of every RocksDB database under the worker's data directory."""
    dbs = sorted({p.parent for p in data_dir.rglob("CURRENT")})
    assert dbs, f"no RocksDB database under {data_dir}"
    for path in dbs:
        db = Rdict(str(path), access_type=AccessType.read_only())
        try:
            for key, value in db.items():
                yield bytes(key), bytes(value)
        finally:
            db.close()


def test_no_raw_identifier_reaches_state_changelogs_logs_or_alerts(
    kafka_broker: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "worker"
    worker = WorkerProcess(kafka_broker, data_dir).start()
    try:
        events = traffic()
        produce_events(kafka_broker, worker.topic("events"), events)
        alerts = consume(kafka_broker, worker.topic("alerts.fraud"), expect=2)
        worker.wait_metric("fraudstream_events_consumed_total", len(events))
        _wait_seller(worker, "shop", orders=3)
    finally:
        worker.stop()
    key = (data_dir / GENERATED_KEY_FILE).read_bytes().strip()
    pseudonym = Pseudonymiser(key).pseudonym("device_id", DEVICE).encode()
    log = worker.log_path.read_bytes()
    assert log.count(b"no pseudonym key configured") == 1

    stored = b"\n".join(k + b"\t" + v for k, v in rocksdb_items(data_dir))
    changelogs = _topic_bytes(kafka_broker, changelog_topic(worker.app_id, "users"), 5)
    changelogs += _topic_bytes(kafka_broker, changelog_topic(worker.app_id, "sellers"), 1)
    by_seller = _topic_bytes(kafka_broker, worker.topic("events.by_seller"), 3)
    alert_text = b"\n".join(m.value() for m in alerts)
    for where, text in (
        ("RocksDB state", stored),
        ("changelogs", changelogs),
        ("seller topic", by_seller),
        ("worker log", log),
        ("alerts", alert_text),
    ):
        for raw in raw_values():
            assert raw not in text, f"{raw!r} found in the {where}"
    # The identifiers are there, as pseudonyms: the test looked where they are kept.
    for text in (stored, changelogs, by_seller, alert_text):
        assert pseudonym in text
    assert {orjson.loads(m.value())["user_id"] for m in alerts} == {"victim", "tester"}

    # A restart keeps the generated key, so the pseudonyms stay the same, and says nothing.
    again = WorkerProcess(kafka_broker, data_dir, prefix=worker.prefix, app_id=worker.app_id)
    again.start()
    again.stop()
    assert (data_dir / GENERATED_KEY_FILE).read_bytes().strip() == key
    assert worker.log_path.read_bytes().count(b"no pseudonym key configured") == 1


def _topic_bytes(bootstrap: str, topic: str, expect: int) -> bytes:
    messages = consume(bootstrap, topic, expect=expect, timeout=30)
    assert len(messages) >= expect, f"{topic}: {len(messages)} messages"
    return b"\n".join((m.key() or b"") + b"\t" + (m.value() or b"") for m in messages)


def _wait_seller(worker: WorkerProcess, seller: str, orders: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, state = worker.get(f"/sellers/{seller}")
        if status == 200 and len(state.get("orders", [])) >= orders:
            return
        time.sleep(0.3)
    raise AssertionError(f"seller {seller} not stored: {worker.log_tail()}")
