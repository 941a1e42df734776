"""Failing well against a real broker: topics that do not exist, and the probe's answer."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from stream.cli import main
from stream.core.cliutil import EXIT_FAILURE
from stream.runtime.preflight import missing_topics, probe_broker

pytestmark = pytest.mark.kafka


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[-3000:]
    return lines[0]


def test_replay_to_a_missing_topic_says_how_it_gets_created(
    kafka_broker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text('{"event_id":"e1","ts":0,"user_id":"u1","type":"login"}\n')
    prefix = f"t{uuid.uuid4().hex[:8]}."
    argv = ["replay", str(events), "--broker", kafka_broker, "--topic", f"{prefix}events"]
    assert main(argv) == EXIT_FAILURE
    line = one_line(capsys.readouterr().err)
    assert "does not exist" in line and "--create-topic" in line
    assert f"fraudstream worker --broker {kafka_broker} --topic-prefix {prefix}" in line

    assert main([*argv, "--create-topic", "--partitions", "3"]) == 0
    assert '"events":1' in capsys.readouterr().out
    metadata = probe_broker(kafka_broker)
    assert len(metadata.topics[f"{prefix}events"].partitions) == 3
    assert main(argv) == 0  # it exists now


def test_tail_of_missing_alert_topics(
    kafka_broker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    argv = ["alerts", "tail", "--broker", kafka_broker, "--topic-prefix", prefix, "--kind", "fraud"]
    assert main(argv) == EXIT_FAILURE
    line = one_line(capsys.readouterr().err)
    assert f"{prefix}alerts.fraud" in line and "--topic-prefix" in line


def test_probe_lists_topics(kafka_broker: str) -> None:
    metadata = probe_broker(kafka_broker, timeout=10)
    assert missing_topics(metadata, ["__consumer_offsets-nope"]) == ["__consumer_offsets-nope"]
