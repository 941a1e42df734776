"""Shared fixtures: a real Kafka broker for tests marked ``kafka``.

With ``FRAUDSTREAM_TEST_BROKER=host:port`` the tests use that broker (CI starts one with
``fraudstream broker start``); otherwise the session starts its own on a free port.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stream.cli import main
from stream.local import broker
from stream.simulate import SimConfig, generate_files


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("FRAUDSTREAM_TEST_BROKER")
    if given:
        yield given
        return
    data_dir = Path(tmp_path_factory.mktemp("kafka"))
    cfg = broker.BrokerConfig(data_dir=data_dir, port=broker.free_port())
    broker.start(cfg)
    try:
        yield cfg.bootstrap
    finally:
        broker.stop(data_dir)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny model bundle (seconds to build) and the simulated events it was trained on."""
    root = tmp_path_factory.mktemp("tiny-bundle")
    events, labels, bundle = root / "e.jsonl", root / "l.jsonl", root / "bundle"
    generate_files(
        events,
        labels,
        SimConfig(users=800, days=10, seed=8, start=datetime(2026, 9, 1, tzinfo=UTC)),
    )
    argv = ["build", "--events", str(events), "--labels", str(labels), "--out", str(bundle),
            "--tiny", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return events, bundle


@pytest.fixture(scope="session")
def churn_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny bundle with a churn head, its events and labels, built on the model tests'
    synthetic shop (many departures over 40 days, a 3-day horizon). It keeps its churn
    head whatever its quality, so the tests always check the model's churn wiring; whether
    a simulator bundle's churn head beats the rules depends on the run."""
    from tests.model.modelsynth import make_fixture, write_fixture

    root = tmp_path_factory.mktemp("churn-bundle")
    events, labels, bundle = root / "e.jsonl", root / "l.jsonl", root / "bundle"
    write_fixture(make_fixture(users=300, days=40, seed=7), events, labels)
    argv = ["build", "--events", str(events), "--labels", str(labels), "--out", str(bundle),
            "--tiny", "--churn-horizon-days", "3", "--no-rules-gate", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return events, labels, bundle
