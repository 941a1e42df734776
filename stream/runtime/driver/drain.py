"""Faust's fetch loop, with a poll's messages delivered in one task instead of four per message.

Faust's ``Consumer._drain_messages`` hands each fetched message to the conductor under
``wait_first(callback(message), suspend_flow.wait())``: a task for the delivery, one for the
flow's suspension and one each for the consumer's stop and crash events, an
``asyncio.wait`` over them and three cancellations, so that a rebalance can abandon a
delivery stuck on a full queue. On this machine that was a quarter of the event loop's time
in a pass-through agent (docs/benchmarks.md, "Fetching with librdkafka").

Here the first message of a poll is awaited as Faust awaits it (waiting while the flow is
suspended), then the whole poll is delivered by one task raced against the same events.
When the flow is suspended mid-poll, that task is cancelled, in whichever message's
delivery it stands: what Faust does to that message's delivery, after which Faust's
``getmany`` would hand out nothing more of the poll either (it stops at the first message
it sees with the flow inactive). Everything else is Faust's loop as it is: the read
offsets, the gaps of acknowledged topics, ``commit_every``, a yield every 100 messages.

Topics with a direct feed (``direct_feed``) skip the conductor: their messages go straight
to their agent's feed.

Delivering that fast fills a stream's buffer within a poll or two, and Faust then takes
every partition of the stream out of the active set until the buffer drains
(``on_buffer_full``, ``on_buffer_drop``). With no active partition, Faust's
``_wait_next_records`` sleeps a full second; the agent empties its buffer in a fraction of
that and waits. Here that wait ends as soon as a partition is active again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from faust.transport.consumer import CONSUMER_FETCHING
from faust.types import TP, Message

from stream.runtime.driver.direct_feed import feeds_of

YIELD_EVERY = 100  # messages between two yields to the event loop, as Faust's loop


class PollDrain:
    """A mixin for a Faust ``Consumer``: ``_drain_messages`` and ``_wait_next_records`` as
    described above."""

    _partition_back: asyncio.Event | None = None

    def on_buffer_drop(self, tp: TP) -> None:
        super().on_buffer_drop(tp)  # type: ignore[misc]
        if self._partition_back is not None:
            self._partition_back.set()

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109
        consumer: Any = self
        if not consumer.flow_active:
            await consumer.wait(consumer.can_resume_flow)
        try:
            consumer.not_waiting_next_records.set()  # as Faust's, which sets it here too
            client_only = consumer.app.client_only
            active = None if client_only else consumer._get_active_partitions()
            records: Any = {}
            if active is None or active:
                records = await consumer._getmany(active_partitions=active, timeout=timeout)
            else:  # every partition paused, or out until its stream's buffer drains
                if self._partition_back is None:
                    self._partition_back = asyncio.Event()
                self._partition_back.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._partition_back.wait(), 1.0)
            return records, active
        finally:
            consumer.not_waiting_next_records.set()

    async def _drain_messages(self, fetcher: Any) -> None:
        consumer: Any = self
        should_stop = consumer._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (should_stop() or fetcher_should_stop()):
                consumer.diag.set_flag(CONSUMER_FETCHING)
                polled: AsyncGenerator[tuple[TP, Message], None] = consumer.getmany(timeout=1.0)
                await consumer.sleep(0)  # as Faust: getmany may never yield
                if consumer.should_stop:
                    continue
                try:
                    first = await anext(polled, None)
                    if first is not None:
                        await consumer.wait_first(
                            self._deliver(first, polled), consumer.suspend_flow.wait()
                        )
                finally:
                    consumer.diag.unset_flag(CONSUMER_FETCHING)
                    await _close(polled)
        except consumer.consumer_stopped_errors:
            if consumer.transport.app.should_stop:
                consumer.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if consumer.transport.app.should_stop:
                consumer.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            consumer.log.exception("Drain messages raised: %r", exc)
            raise

    async def _deliver(
        self, first: tuple[TP, Message], rest: AsyncIterator[tuple[TP, Message]]
    ) -> None:
        consumer: Any = self
        callback: Callable[[Message], Awaitable[None]] = consumer.callback
        app = consumer.app
        feeds = feeds_of(app)
        if feeds:
            flow, producer_buffer = app.flow_control, app.producer.buffer
        read_offset = consumer._read_offset
        acks_enabled_for = consumer.app.topics.acks_enabled_for
        commit_every = consumer._commit_every
        since_yield = 0
        ebb_checked = False
        item: tuple[TP, Message] | None = first
        while item is not None:
            tp, message = item
            since_yield += 1
            if since_yield > YIELD_EVERY:
                await asyncio.sleep(0)
                since_yield = 0
                ebb_checked = False
            offset = message.offset
            r_offset = read_offset.get(tp)
            if r_offset is None or offset >= r_offset:
                gap = offset - (r_offset or 0)
                if gap > 1 and r_offset and acks_enabled_for(message.topic):
                    await consumer._add_gap(tp, r_offset + 1, offset)
                if commit_every is not None and consumer._n_acked >= commit_every:
                    consumer._n_acked = 0
                    await consumer.commit()
                feed = feeds.get(message.topic) if feeds else None
                if feed is None:
                    await callback(message)
                else:  # what the conductor awaits first, then straight to the agent
                    if not flow.is_active():
                        await flow.acquire()
                    # Faust's producer buffer holds only what Faust itself sends (the
                    # worker's output goes through librdkafka), and reading its size is
                    # costly: looked at once per YIELD_EVERY messages, not per message.
                    if not ebb_checked:
                        ebb_checked = True
                        if producer_buffer.size > producer_buffer.max_messages:
                            await producer_buffer.wait_until_ebb()
                    if not feed.offer(message):
                        await feed.space()
                read_offset[tp] = offset
            item = await anext(rest, None)


async def _close(polled: AsyncGenerator[Any, None]) -> None:
    """Finish the poll's iterator; a delivery cancelled for a suspended flow may still be
    unwinding from it, and then it closes by itself."""
    with contextlib.suppress(RuntimeError):  # "asynchronous generator is already running"
        await polled.aclose()
