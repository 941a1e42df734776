"""The worker's consumer with records fetched by librdkafka (``batch_fetcher``).

Only the fetching changes. Group membership stays aiokafka's, as in the default driver:
Faust's own partition assignor (which co-assigns changelog partitions and places standby
replicas) runs inside aiokafka's group protocol, and librdkafka cannot run an assignor
written in Python. So the aiokafka consumer still joins the group, receives the
assignment, calls Faust's rebalance callbacks (awaited, revoked before assigned), commits
Faust's acked offsets, and answers committed, earliest and end offsets; but it fetches
nothing, since every partition it is assigned is paused in it at once. The batch fetcher
is assigned the same partitions before Faust's callbacks run, and serves ``getmany``,
seeks, positions and highwaters. Committed offsets are the same offsets: the commits
carry what Faust acked, whichever client fetched the records.

The seek guard (``seek_guard``) applies unchanged: this consumer derives from it, and its
seeks land here. Faust's fetch loop is replaced by one that delivers a poll in one task
(``drain``), since that loop, not the fetching, was most of Faust's cost per message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from aiokafka import TopicPartition as AioTopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from stream.runtime.driver.batch_fetcher import BatchFetcher
from stream.runtime.driver.drain import PollDrain
from stream.runtime.driver.seek_guard import SeekGuardConsumer

# Records waiting on the event loop's side, in polls: enough to keep the agents fed while
# librdkafka fetches the next ones, few enough to bound memory.
BUFFERED_POLLS = 8
DEFAULT_POLL_MAX = 1000


class ConfluentFetchThread(faust_aiokafka.AIOKafkaConsumerThread):
    """aiokafka for the group, the batch fetcher for the records."""

    fetcher: BatchFetcher | None = None

    async def on_start(self) -> None:
        await super().on_start()
        conf = self.app.conf
        # Unset means "no limit" to aiokafka; a poll here is bounded all the same.
        poll_max = conf.broker_max_poll_records or DEFAULT_POLL_MAX
        config = {
            "bootstrap.servers": ",".join(
                faust_aiokafka.server_list(
                    self.transport.url,
                    self.transport.default_port,  # type: ignore[attr-defined]
                )
            ),
            "group.id": conf.id,
            "client.id": f"{conf.broker_client_id}-fetch",
            "queued.max.messages.kbytes": 16384,
            **getattr(self.consumer, "librdkafka_config", {}),
        }
        self.fetcher = BatchFetcher(
            config,
            self.consumer.loop,
            batch_max=poll_max,
            buffer_limit=BUFFERED_POLLS * poll_max,
            reset=conf.consumer_auto_offset_reset,
        )
        self.fetcher.start()

    async def on_thread_stop(self) -> None:
        if self.fetcher is not None:
            self.fetcher.stop()
        await super().on_thread_stop()

    def _fetch(self) -> BatchFetcher:
        if self.fetcher is None:
            raise RuntimeError("the consumer thread has not started")
        return self.fetcher

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        """(aiokafka's loop) Keep aiokafka from fetching what it was assigned."""
        consumer = self._ensure_consumer()
        consumer.pause(*[AioTopicPartition(tp.topic, tp.partition) for tp in assigned])
        await super().on_partitions_assigned(assigned, generation_id)

    async def getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:  # noqa: ASYNC109 - Faust's signature
        consumer = self.consumer
        if not consumer.flow_active:
            return {}
        if active_partitions is None:
            return await self._fetch().getmany(None, timeout)
        # A partition out of the active set only because its stream's buffer is full
        # (Faust's flow control) goes on being fetched and handed out: Faust's own getmany
        # lets records of such partitions through ("already in memory"), and the
        # conductor's put then waits for the stream. Leaving them in the fetcher's buffer
        # instead would fill it and stop the fetching of the active ones.
        fetching = (active_partitions | consumer._buffered_partitions) - consumer._paused_partitions
        return await self._fetch().getmany(fetching, timeout, fetching)

    def seek(self, partition: TP, offset: int) -> None:
        self._fetch().seek(partition, offset)

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        read_offset = self.consumer._read_offset
        for tp, offset in partitions.items():  # as aiokafka's driver does
            if offset > 0:
                read_offset[tp] = offset
            else:
                read_offset.pop(tp, None)
        await self._fetch().seek_wait(partitions)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed: Mapping[TP, int] = await super().seek_to_committed()
        await self._fetch().seek_wait(
            {tp: offset for tp, offset in committed.items() if offset is not None}
        )
        return committed

    async def seek_to_beginning(self, *partitions: Any) -> None:
        earliest = await self.earliest_offsets(*partitions)
        await self._fetch().seek_wait(earliest)

    async def position(self, tp: TP) -> int | None:
        return await self._fetch().position(tp)

    def highwater(self, tp: TP) -> int:
        return self._fetch().highwater(tp)  # type: ignore[return-value]

    def verify_event_path(self, now: float, tp: TP) -> None:
        """aiokafka's checks read its own fetcher's state, which is idle here."""


class ConfluentFetchConsumer(PollDrain, SeekGuardConsumer):
    librdkafka_config: ClassVar[dict[str, str]] = {}

    def _new_consumer_thread(self) -> ConfluentFetchThread:
        return ConfluentFetchThread(self, loop=self.loop, beacon=self.beacon)

    def _fetcher(self) -> BatchFetcher:
        return self._thread._fetch()  # type: ignore[attr-defined,no-any-return]

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        # Before Faust's callbacks, which seek and resume the partitions.
        await self._fetcher().assign(assigned)
        await super().on_partitions_assigned(assigned, generation_id)

    def _to_message(self, tp: TP, record: Any) -> ConsumerMessage:
        kind, stamp = record.timestamp()
        key, value = record.key(), record.value()
        return ConsumerMessage(
            record.topic(),
            record.partition(),
            record.offset(),
            stamp / 1000.0 if stamp >= 0 else None,  # type: ignore[arg-type]  # as aiokafka passes it
            kind,
            record.headers() or [],
            key,
            value,
            None,
            len(key) if key is not None else 0,
            len(value) if value is not None else 0,
            tp,
            generation_id=self.app.consumer_generation_id,
        )

    def verify_event_path(self, now: float, tp: TP) -> None:
        """See ``ConfluentFetchThread.verify_event_path``."""


def install(app: Any, librdkafka_config: Mapping[str, str] | None = None) -> None:
    """Make ``app`` consume with :class:`ConfluentFetchConsumer`; ``librdkafka_config``
    adds the security settings of a real cluster."""
    app.transport.Consumer = type(
        "ConfluentFetchConsumer",
        (ConfluentFetchConsumer,),
        {"librdkafka_config": dict(librdkafka_config or {})},
    )
