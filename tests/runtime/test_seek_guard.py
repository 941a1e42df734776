"""The consumer's seek to committed offsets: never-committed partitions start over, no
record is handed to a stream while the seek is in flight, and changelog partitions being
read go back to the last record recovery took. The broker side of this is
``test_kill_9_mid_stream_loses_no_state`` and the chaos tests; here the consumer's own
decisions."""

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
CHANGELOG_1 = TopicPartition("app-users-changelog", 1)
CHANGELOG_2 = TopicPartition("app-users-changelog", 2)


class FakeThread:
    """Stands in for the aiokafka consumer thread: committed offsets, and the seeks asked."""

    def __init__(self, consumer: SeekGuardConsumer, committed: dict[Any, int | None]) -> None:
        self.consumer, self.committed = consumer, committed
        self.to_beginning: list[Any] = []
        self.flow_during_seek: list[bool] = []
        self.seeks: dict[Any, int] = {}

    async def seek_to_committed(self) -> dict[Any, int | None]:
        self.flow_during_seek.append(self.consumer.flow_active)
        await asyncio.sleep(0)
        return dict(self.committed)

    async def seek_to_beginning(self, *partitions: Any) -> None:
        self.flow_during_seek.append(self.consumer.flow_active)
        self.to_beginning.extend(partitions)

    async def seek_wait(self, partitions: dict[Any, int]) -> None:
        self.flow_during_seek.append(self.consumer.flow_active)
        self.seeks.update(partitions)


def recovery(
    standbys: dict[Any, int | None] | None = None,
    actives: dict[Any, int | None] | None = None,
    restoring: bool = False,
) -> SimpleNamespace:
    """Faust's recovery as the seek reads it: the changelog partitions it reads and the
    offset of the last record it took from each (-1: none yet)."""
    standbys, actives = standbys or {}, actives or {}
    return SimpleNamespace(standby_tps=set(standbys), standby_offsets=dict(standbys),
                           active_tps=set(actives), active_offsets=dict(actives),
                           in_recovery=restoring)  # fmt: skip


def consumer(
    committed: dict[Any, int | None],
    reset: str = "earliest",
    reading: SimpleNamespace | None = None,
) -> SeekGuardConsumer:
    c: Any = object.__new__(SeekGuardConsumer)  # no transport or app needed for seeking
    c.app = SimpleNamespace(
        conf=SimpleNamespace(consumer_auto_offset_reset=reset),
        tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}, recovery=reading or recovery()),
    )
    assigned = set(committed) | set(c.app.tables.recovery.standby_tps)
    c.assignment = lambda: assigned
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


def test_flow_stops_for_the_seek_and_stays_stopped() -> None:
    """Faust clears the streams' queues after the seek and then resumes the flow itself;
    resumed by the seek, the fetch loop could queue a record from the new position just
    before that clear, and the record was lost."""
    c = consumer({EVENTS_0: None, EVENTS_2: 7})
    asyncio.run(c.perform_seek())
    assert c._thread.flow_during_seek == [False, False]
    assert not c.flow_active and not c.can_resume_flow.is_set()

    stopped = consumer({EVENTS_2: 7})
    stopped.stop_flow()  # a rebalance stopped it: the seek must not restart it
    asyncio.run(stopped.perform_seek())
    assert not stopped.flow_active


def test_standby_changelogs_go_back_to_the_last_record_recovery_took() -> None:
    """Stopping the flow drops records the fetch loop holds, changelog records too, and
    nothing else fetches those again: a standby would keep a hole."""
    c = consumer({EVENTS_0: 5}, reading=recovery(standbys={CHANGELOG: 170, CHANGELOG_1: -1}))
    asyncio.run(c.perform_seek())
    assert c._thread.seeks == {CHANGELOG: 170, CHANGELOG_1: 0}
    assert c._thread.flow_during_seek == [False, False]  # before any record flows again


def test_active_changelogs_go_back_only_while_they_are_restored() -> None:
    actives = {CHANGELOG_2: 40}
    done = consumer({EVENTS_0: 5, CHANGELOG_2: None}, reading=recovery(actives=actives))
    asyncio.run(done.perform_seek())
    assert done._thread.seeks == {}  # restored: recovery has paused and left them
    restoring = recovery(actives=actives, restoring=True)
    busy = consumer({EVENTS_0: 5, CHANGELOG_2: None}, reading=restoring)
    asyncio.run(busy.perform_seek())
    assert busy._thread.seeks == {CHANGELOG_2: 40}


def test_changelogs_no_longer_assigned_are_left_alone() -> None:
    c = consumer({EVENTS_0: 5}, reading=recovery(standbys={CHANGELOG: 9}))
    c.assignment = lambda: {EVENTS_0}  # type: ignore[method-assign]
    asyncio.run(c.perform_seek())
    assert c._thread.seeks == {}


def test_the_livelock_check_waits_for_a_partition_to_have_a_position() -> None:
    """After a seek to the beginning aiokafka has no position for the partition until its
    offset reset resolves; Faust's livelock check read it anyway and crashed the consumer
    on aiokafka's assertion. The check now skips such a partition (aiokafka's subscription
    state wants a running loop)."""
    asyncio.run(_livelock_check())


async def _livelock_check() -> None:
    from aiokafka.consumer.subscription_state import SubscriptionState

    from stream.runtime.driver.seek_guard import has_position

    subscriptions = SubscriptionState()
    subscriptions.assign_from_user({EVENTS_0})
    thread = SimpleNamespace(
        _ensure_consumer=lambda: SimpleNamespace(
            _fetcher=SimpleNamespace(_subscriptions=subscriptions)
        )
    )
    state = subscriptions.subscription.assignment.state_value(EVENTS_0)
    assert not state.has_valid_position and not has_position(thread, EVENTS_0)
    state.seek(5)
    assert has_position(thread, EVENTS_0)
    assert not has_position(thread, EVENTS_1)  # not assigned here
    assert not has_position(SimpleNamespace(_ensure_consumer=lambda: None), EVENTS_0)
