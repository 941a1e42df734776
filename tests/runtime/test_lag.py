"""The lag gauge's reading during rebalances: unknown, never an exception."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import IllegalStateError

from stream.runtime.driver.lag import partition_lag


class FakeConsumer:
    def __init__(self, position: int | None, highwater: int | None, revoked: str = "") -> None:
        self._position, self._highwater, self._revoked = position, highwater, revoked

    async def position(self, tp: object) -> int | None:
        if self._revoked == "position":
            raise IllegalStateError("Partition is not assigned")
        return self._position

    def highwater(self, tp: object) -> int | None:
        assert self._revoked != "highwater", "Partition is not assigned"
        return self._highwater


@pytest.mark.parametrize(
    ("consumer", "lag"),
    [
        (FakeConsumer(7, 10), 3),
        (FakeConsumer(12, 10), 0),
        (FakeConsumer(7, None), None),  # assigned, nothing fetched yet
        (FakeConsumer(None, 10), None),
        (FakeConsumer(7, 10, revoked="position"), None),
        (FakeConsumer(7, 10, revoked="highwater"), None),
    ],
)
def test_partition_lag(consumer: FakeConsumer, lag: int | None) -> None:
    assert asyncio.run(partition_lag(consumer, ("events", 0))) == lag
