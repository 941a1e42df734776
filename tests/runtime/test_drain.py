"""The fetch loop of the confluent driver (``stream.runtime.driver.drain``) without a broker:
a poll delivered in order past the read offsets, and no second lost waiting for a
partition whose stream buffer drained."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncGenerator
from typing import Any

from faust.types import TP

from stream.runtime.driver.drain import PollDrain

A, B = TP("t", 0), TP("t", 1)


class Message:
    def __init__(self, tp: TP, offset: int) -> None:
        self.tp, self.topic, self.offset = tp, tp.topic, offset


class Topics:
    def acks_enabled_for(self, topic: str) -> bool:
        return True


class App:
    client_only = False
    topics = Topics()


class FaustLike:
    """What PollDrain reads of a Faust consumer."""

    def __init__(self) -> None:
        self.delivered: list[tuple[TP, int]] = []
        self.gaps: list[tuple[TP, int, int]] = []
        self._read_offset: defaultdict[TP, int | None] = defaultdict(lambda: None)
        self._commit_every = None
        self._n_acked = 0
        self.app = App()
        self.flow_active = True
        self.not_waiting_next_records = asyncio.Event()
        self.active: set[TP] = set()
        self.dropped: list[TP] = []

    async def callback(self, message: Message) -> None:
        self.delivered.append((message.tp, message.offset))

    async def _add_gap(self, tp: TP, start: int, end: int) -> None:
        self.gaps.append((tp, start, end))

    def _get_active_partitions(self) -> set[TP]:
        return self.active

    async def _getmany(self, active_partitions: set[TP], timeout: float) -> dict[TP, Any]:  # noqa: ASYNC109
        return {tp: [] for tp in active_partitions}

    def on_buffer_drop(self, tp: TP) -> None:
        self.dropped.append(tp)
        self.active.add(tp)


class Consumer(PollDrain, FaustLike):
    pass


async def _poll(items: list[tuple[TP, Message]]) -> AsyncGenerator[tuple[TP, Message], None]:
    for item in items:
        yield item


def test_a_poll_is_delivered_in_order_past_the_read_offsets() -> None:
    async def run() -> None:
        consumer = Consumer()
        consumer._read_offset[A] = 5
        items = [(A, Message(A, o)) for o in (3, 5, 6, 9)] + [(B, Message(B, 0))]
        rest = _poll(items[1:])
        await consumer._deliver(items[0], rest)
        # 3 is below the read offset; 9 follows 6 with a gap, which is recorded
        assert consumer.delivered == [(A, 5), (A, 6), (A, 9), (B, 0)]
        assert consumer.gaps == [(A, 7, 9)]
        assert consumer._read_offset[A] == 9 and consumer._read_offset[B] == 0

    asyncio.run(run())


def test_no_active_partition_waits_only_until_one_is_back() -> None:
    async def run() -> None:
        consumer = Consumer()
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, consumer.on_buffer_drop, A)
        started = time.monotonic()
        records, active = await consumer._wait_next_records(1.0)
        assert time.monotonic() - started < 0.5  # Faust's loop sleeps a full second here
        assert records == {} and active == {A}
        assert consumer.dropped == [A]
        # with a partition active, records are asked for at once
        records, _ = await consumer._wait_next_records(1.0)
        assert records == {A: []}

    asyncio.run(run())
