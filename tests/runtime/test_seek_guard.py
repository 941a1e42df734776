"""The consumer's seek to committed offsets: never-committed partitions start over, and
no record is handed to a stream while the seek is in flight. The broker side of this is
``test_kill_9_mid_stream_loses_no_state``; here the consumer's own decisions."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from stream.runtime.driver.seek_guard import SeekGuardConsumer

EVENTS_0 = TopicPartition("p.events", 0)
EVENTS_1 = TopicPartition("p.events", 1)
EVENTS_2 = TopicPartition("p.events", 2)
CHANGELOG = TopicPartition("app-users-changelog", 0)


class FakeThread:
    """Stands in for the aiokafka consumer thread: committed offsets, and the seeks asked."""

    def __init__(self, consumer: SeekGuardConsumer, committed: dict[Any, int | None]) -> None:
        self.consumer, self.committed = consumer, committed
        self.to_beginning: list[Any] = []
        self.flow_during_seek: list[bool] = []

    async def seek_to_committed(self) -> dict[Any, int | None]:
        self.flow_during_seek.append(self.consumer.flow_active)
        await asyncio.sleep(0)
        return dict(self.committed)

    async def seek_to_beginning(self, *partitions: Any) -> None:
        self.flow_during_seek.append(self.consumer.flow_active)
        self.to_beginning.extend(partitions)


def consumer(committed: dict[Any, int | None], reset: str = "earliest") -> SeekGuardConsumer:
    c: Any = object.__new__(SeekGuardConsumer)  # no transport or app needed for seeking
    c.app = SimpleNamespace(
        conf=SimpleNamespace(consumer_auto_offset_reset=reset),
        tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}),
    )
    c.flow_active = True
    c.can_resume_flow, c.suspend_flow = asyncio.Event(), asyncio.Event()
    c._read_offset, c._committed_offset = {}, {}
    c._thread = FakeThread(c, committed)
    return c  # type: ignore[no-any-return]


def test_never_committed_stream_partitions_go_back_to_their_beginning() -> None:
    c = consumer({EVENTS_0: None, EVENTS_1: 0, EVENTS_2: 42, CHANGELOG: None})
    asyncio.run(c.perform_seek())
    # None and 0 both mean no record was ever committed; changelogs are Faust's to place.
    assert sorted(c._thread.to_beginning) == [EVENTS_0, EVENTS_1]
    assert c._read_offset[EVENTS_2] == 42 and c._read_offset[EVENTS_0] is None


def test_with_latest_reset_nothing_is_rewound() -> None:
    c = consumer({EVENTS_0: None}, reset="latest")
    asyncio.run(c.perform_seek())
    assert c._thread.to_beginning == []


def test_flow_stops_for_the_seek_and_comes_back_only_if_it_was_on() -> None:
    c = consumer({EVENTS_0: None, EVENTS_2: 7})
    asyncio.run(c.perform_seek())
    assert c._thread.flow_during_seek == [False, False]
    assert c.flow_active and c.can_resume_flow.is_set()

    stopped = consumer({EVENTS_2: 7})
    stopped.stop_flow()  # a rebalance stopped it: the seek must not restart it
    asyncio.run(stopped.perform_seek())
    assert not stopped.flow_active
