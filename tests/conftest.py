"""Shared fixtures: a real Kafka broker for tests marked ``kafka``.

With ``FRAUDSTREAM_TEST_BROKER=host:port`` the tests use that broker (CI starts one with
``fraudstream broker start``); otherwise the session starts its own on a free port.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream import broker


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
