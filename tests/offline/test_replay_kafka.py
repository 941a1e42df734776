"""``replay``: every line of a file reaches the topic exactly once, in event-time order per
user key. The ordering helpers are tested without a broker; the rest against real Kafka."""

from __future__ import annotations

import random
import time
import uuid
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from stream.core.timeutil import parse_ts
from stream.offline.replay import _is_sorted, _records, _sorted_records, replay_file
from stream.simulate import SimConfig, generate_files


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("replay")
    generate_files(
        tmp / "events.jsonl", tmp / "labels.jsonl", SimConfig(users=120, days=3, seed=21)
    )
    return tmp / "events.jsonl"


@pytest.fixture(scope="module")
def shuffled_file(events_file: Path) -> Path:
    lines = _lines(events_file)
    random.Random(1).shuffle(lines)
    path = events_file.with_name("shuffled.jsonl")
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _ts_of(line: bytes) -> int:
    return parse_ts(orjson.loads(line)["ts"])


@pytest.mark.parametrize("chunk", [10**9, 97])
def test_unsorted_file_comes_out_in_time_order(
    shuffled_file: Path, tmp_path: Path, chunk: int
) -> None:
    """In memory (one run) and as an external merge of many spilled runs alike."""
    out = [line for _, _, _, line in _sorted_records(shuffled_file, chunk, str(tmp_path))]
    assert sorted(out) == sorted(_lines(shuffled_file))
    times = [_ts_of(line) for line in out]
    assert times == sorted(times)
    if chunk < 1000:
        assert len(list(tmp_path.iterdir())) > 10


def test_sort_check(events_file: Path, shuffled_file: Path, tmp_path: Path) -> None:
    assert _is_sorted(events_file)
    assert not _is_sorted(shuffled_file)
    # Other spellings of time (epoch ms, offsets) take the parsing path.
    mixed = tmp_path / "mixed.jsonl"
    rows = [
        {"ts": 1_795_943_703_000, "user_id": "a"},
        {"ts": "2026-11-29T10:15:03.500+01:00", "user_id": "b"},
        {"ts": 1_795_943_704_000, "user_id": "c"},
    ]
    mixed.write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    assert _is_sorted(mixed)
    mixed.write_bytes(b"\n".join(orjson.dumps(r) for r in reversed(rows)))
    assert not _is_sorted(mixed)


def test_records_read_keys_times_and_keep_bad_lines() -> None:
    lines = [
        b'{"event_id":"a","ts":"2026-11-29T10:15:03.123Z","user_id":"u1","type":"login"}',
        b'{"ts":"2026-11-29T11:15:03.123+01:00","type":"login","user_id":"u\\"2"}',
        b"not json",
        b"   ",
        b'{"event_id":"c","ts":1795943703500,"user_id":"u3","type":"login"}',
    ]
    records = list(_records(lines))
    assert [r[2] for r in records] == [b"u1", b'u"2', None, b"u3"]
    base = parse_ts("2026-11-29T10:15:03.123Z")
    assert [r[0] for r in records[:2]] == [base, base]
    assert records[2][0] < 0  # invalid, placed after the line before it
    assert records[3][0] == 1795943703500
    assert [r[3] for r in records] == [lines[0], lines[1], lines[2], lines[4]]


def _topic(broker: str) -> str:
    name = f"replay-test-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": broker})
    for future in admin.create_topics(
        [NewTopic(name, num_partitions=8, replication_factor=1)]
    ).values():
        future.result(30)
    return name


Message = tuple[bytes | None, bytes | None]


def _consume_all(broker: str, topic: str, expected: int) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"t-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(8)])
    got: list[Message] = []
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(10_000, timeout=1.0):
                assert msg.error() is None, msg.error()
                got.append((msg.key(), msg.value()))
            if len(got) >= expected:
                # Linger briefly: anything beyond ``expected`` would be a duplicate.
                got.extend((m.key(), m.value()) for m in consumer.consume(10_000, timeout=2.0))
                break
    finally:
        consumer.close()
    return got


def _check_delivery(lines: list[bytes], got: list[Message]) -> None:
    assert len(got) == len(lines)
    values = [v for _, v in got if v is not None]
    assert sorted(values) == sorted(lines)  # every line, byte for byte, once
    per_key: dict[bytes | None, list[bytes]] = defaultdict(list)
    for key, value in got:
        assert value is not None and key == orjson.loads(value)["user_id"].encode()
        per_key[key].append(value)
    expected: dict[bytes | None, list[bytes]] = defaultdict(list)
    for line in sorted(lines, key=_ts_of):  # stable: file order among equal times
        expected[orjson.loads(line)["user_id"].encode()].append(line)
    assert per_key == expected


@pytest.mark.kafka
def test_replay_delivers_each_line_once_in_order(kafka_broker: str, events_file: Path) -> None:
    topic = _topic(kafka_broker)
    stats = replay_file(events_file, kafka_broker, topic, None)
    lines = _lines(events_file)
    assert (stats.events, stats.errors, stats.invalid) == (len(lines), 0, 0)
    assert stats.sorted_input
    _check_delivery(lines, _consume_all(kafka_broker, topic, len(lines)))


@pytest.mark.kafka
def test_replay_sorts_an_unsorted_file(kafka_broker: str, shuffled_file: Path) -> None:
    topic = _topic(kafka_broker)
    stats = replay_file(shuffled_file, kafka_broker, topic, None, sort_chunk_lines=500)
    lines = _lines(shuffled_file)
    assert (stats.events, stats.errors, stats.sorted_input) == (len(lines), 0, False)
    _check_delivery(lines, _consume_all(kafka_broker, topic, len(lines)))


@pytest.mark.kafka
def test_replay_speed_keeps_scaled_gaps(kafka_broker: str, tmp_path: Path) -> None:
    path = tmp_path / "paced.jsonl"
    path.write_bytes(
        b"".join(
            orjson.dumps(
                {
                    "event_id": f"p{i}",
                    "ts": 1_795_000_000_000 + i * 500,
                    "user_id": "u",
                    "type": "page_view",
                }
            )
            + b"\n"
            for i in range(5)
        )
    )
    topic = _topic(kafka_broker)
    stats = replay_file(path, kafka_broker, topic, speed=4.0)  # 2 s of event time
    assert stats.events == 5 and stats.errors == 0
    assert 0.45 <= stats.seconds < 5.0
    assert [v for _, v in _consume_all(kafka_broker, topic, 5)] == _lines(path)
