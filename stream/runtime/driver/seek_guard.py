"""A Faust consumer whose seek to the committed offsets cannot drop events.

After a rebalance Faust's recovery lets the fetch loop run while it restores the tables,
so stream events can reach the agents' queues before it seeks the stream partitions to
their committed offsets; right after that seek it clears those queues. That leaves two
holes. The first made a restarted worker skip events (tests/runtime/test_worker_kafka.py,
``test_kill_9_mid_stream_loses_no_state``, about 1 run in 10); the second is the same
window, narrower:

- aiokafka seeks only partitions with a committed offset above 0. A partition the group
  has never committed keeps its fetch position, so the events cleared from the queues are
  never fetched again. Here such a partition goes back to its beginning (the consumer
  resets to ``earliest``); the state's duplicate check absorbs the replay.
- The fetch loop keeps handing records to the streams while the seek is in flight, and
  records fetched at the new position can be queued, then cleared. Here flow stops for
  the seek and stays stopped when it is done, so the loop hands over nothing until Faust
  clears the queues and resumes the flow itself (recovery does both right after its
  seek; the fetch loop's own seek, when it finds the flow stopped, leaves it stopped as
  Faust's does). Resuming it at the end of the seek, as this did at first, left a few
  event-loop turns between the resume and Faust's clear: a fetch that came back in them
  had a record queued, then cleared, at a position already passed, so it was never
  fetched again. Right after the second worker joined, the owner then applied 3 of a
  user's 4 events and never the other (tests/runtime/test_chaos_kafka.py, failover, on
  the aiokafka driver, about one CI run in three).

Stopping the flow has a cost of its own: the fetch loop drops every record it has fetched
but not yet handed over, changelog records included, and the seek to committed offsets
brings back only stream records (changelogs have no committed offsets). A standby replica
then missed the records dropped there, and once it read later ones its persisted offset
passed the hole for good: when it became the partition's owner, users' states lacked events
whose offsets were committed (tests/runtime/test_chaos_kafka.py, rebalance under load, a
few events lost in about one run in five under load). So the seek also puts every
changelog partition being read back to the last record recovery has taken from it, as
recovery's own seek does; records read twice are skipped by recovery's offset check.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

log = logging.getLogger(__name__)


class SeekGuardConsumer(faust_aiokafka.Consumer):
    async def perform_seek(self) -> None:
        """Seek with the flow stopped, and leave it stopped: the caller resumes it once the
        streams' queues are cleared (see the module's docstring)."""
        self.stop_flow()
        await super().perform_seek()
        await self._reread_changelogs()

    async def _reread_changelogs(self) -> None:
        """Seek the changelog partitions recovery reads back to the last record it took."""
        recovery = self.app.tables.recovery  # type: ignore[attr-defined]
        offsets = changelog_positions(recovery, set(self.assignment()))
        if offsets:
            await self.seek_wait(offsets)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[TP, int] = await super().seek_to_committed()
        if self.app.conf.consumer_auto_offset_reset == "earliest":
            changelogs = self.app.tables.changelog_topics
            never_committed = [
                tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs
            ]
            if never_committed:
                log.info("Never committed, so read from the beginning: %s", never_committed)
                await self._thread.seek_to_beginning(*never_committed)
        return committed

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's livelock check, skipped for a partition without a position yet: after the
        seek to the beginning above, aiokafka has none until its offset reset resolves, and
        the check's read of it fails an assertion in aiokafka that crashed the consumer."""
        if has_position(self._thread, tp):
            super().verify_event_path(now, tp)


def has_position(thread: Any, tp: TP) -> bool:
    """Whether aiokafka knows where it reads ``tp`` (false while an offset reset is due)."""
    try:
        assignment = thread._ensure_consumer()._fetcher._subscriptions.subscription.assignment
        state = assignment.state_value(TopicPartition(tp.topic, tp.partition))
    except (AttributeError, AssertionError):  # no consumer, or no assignment, yet
        return False
    return state is not None and bool(state.has_valid_position)


def changelog_positions(recovery: Any, assigned: set[TP]) -> dict[TP, int]:
    """Where recovery's reading of each assigned changelog partition stands: standbys
    always, actives while they are still being restored; -1 or unknown is the start."""
    reading = set(recovery.standby_tps)
    offsets: Mapping[TP, int | None] = dict(recovery.standby_offsets)
    if recovery.in_recovery:
        reading |= set(recovery.active_tps)
        offsets = {**offsets, **recovery.active_offsets}
    return {tp: max(0, offsets.get(tp) or 0) for tp in reading & assigned}


def install(app: Any) -> None:
    """Make ``app`` create its consumer from :class:`SeekGuardConsumer`."""
    app.transport.Consumer = SeekGuardConsumer
