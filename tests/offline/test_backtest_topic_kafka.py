"""``backtest --from-topic``: a topic's history, chosen by message time, backtested."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from stream.cli import main
from stream.offline.replay import replay_file
from stream.runtime.topics import ensure_topics
from stream.simulate import SimConfig, generate_files

pytestmark = pytest.mark.kafka


def alert_ids(path: Path) -> set[str]:
    return {orjson.loads(line)["alert_id"] for line in path.read_bytes().splitlines()}


def backtest(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["backtest", "--rules-only", *args]) == 0
    stats: dict[str, object] = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return stats


def test_topic_history_backtests_like_the_file(
    kafka_broker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events, labels = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    config = SimConfig(users=300, days=6, seed=5, start=datetime(2026, 8, 1, tzinfo=UTC))
    total = generate_files(events, labels, config).events
    lines = events.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"".join(lines[: total // 2]))
    second.write_bytes(b"".join(lines[total // 2 :]))
    topic = f"history-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_broker, [topic], 3)
    replay_file(first, kafka_broker, topic)
    time.sleep(0.2)
    middle = int(time.time() * 1000)  # message times: the first half before, the second after
    time.sleep(0.2)
    replay_file(second, kafka_broker, topic)

    whole = backtest(["--events", str(events), "--alerts-out", str(tmp_path / "f.jsonl")], capsys)
    history = backtest(["--from-topic", topic, "--broker", kafka_broker,
                        "--alerts-out", str(tmp_path / "t.jsonl")], capsys)  # fmt: skip
    assert history["events"] == whole["events"] == total
    assert alert_ids(tmp_path / "t.jsonl") == alert_ids(tmp_path / "f.jsonl")

    before = backtest(["--from-topic", topic, "--broker", kafka_broker, "--until", str(middle),
                       "--alerts-out", str(tmp_path / "b.jsonl")], capsys)  # fmt: skip
    after = backtest(["--from-topic", topic, "--broker", kafka_broker, "--since", str(middle),
                      "--alerts-out", str(tmp_path / "a.jsonl")], capsys)  # fmt: skip
    assert before["events"] == total // 2
    assert after["events"] == total - total // 2


def test_one_source_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "a.jsonl")
    assert main(["backtest", "--alerts-out", out]) != 0
    assert "--events" in capsys.readouterr().err
    assert main(["backtest", "--events", "x", "--from-topic", "t", "--alerts-out", out]) != 0
    assert main(["backtest", "--events", "x", "--since", "0", "--alerts-out", out]) != 0
    assert "--from-topic" in capsys.readouterr().err


def test_unknown_topic_is_a_clear_error(
    kafka_broker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backtest", "--from-topic", f"nope-{uuid.uuid4().hex[:6]}", "--broker",
                 kafka_broker, "--alerts-out", str(tmp_path / "a.jsonl")])  # fmt: skip
    assert code != 0
    assert "no such topic" in capsys.readouterr().err
