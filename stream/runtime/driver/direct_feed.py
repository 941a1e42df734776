"""A topic's messages handed from the fetch loop straight to its agent, a batch at a time.

With the ``confluent`` driver, Faust's per-message path was most of what remained of its
cost per event: for each message the conductor awaits the flow control and the producer
buffer, decodes key and value into an ``Event`` (``App.create_event``), puts it on the
stream's queue, and the sensors record it in and out (docs/benchmarks.md, "Where the time
goes"). The user and seller agents need none of that: keys and values stay bytes, and
they handle messages in micro-batches. So their topics' messages skip the conductor: the
fetch loop (``drain``) appends each one to the agent's ``DirectFeed``, and the agent takes
what has queued up there (``take_direct``), as ``bulk_take`` takes a stream's queue.

What Faust's path guarantees is kept:

- Flow control: nothing is queued while a rebalance suspends the flow, and the feed is
  cleared when flow resumes (``FlowControlEvent.manage_queue``), as Faust's stream queues
  are; messages of an older consumer generation are dropped when taken. Neither was
  tracked or acknowledged, so the seek after the rebalance fetches them again.
- Offsets: a message is tracked as unacknowledged when its batch is taken, and
  acknowledged (``Consumer.ack``) when its taker says so, after its effects are stored;
  commits stop below any message not yet acknowledged, and a rebalance waits for them.
- Back-pressure: the fetch loop waits while the feed holds ``maxsize`` messages, and while
  Faust's producer buffer is over its limit, as the conductor does.

Faust's sensors do not see these messages (its ``Monitor``, which the worker does not
serve); the worker's own metrics count them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

FEEDS_ATTR = "_fraudstream_direct_feeds"


class DirectFeed:
    """Messages of one topic waiting for its agent."""

    def __init__(self, topic: str, maxsize: int) -> None:
        self.topic, self.maxsize = topic, maxsize
        self._queue: deque[Any] = deque()
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._space.set()

    def __len__(self) -> int:
        return len(self._queue)

    def offer(self, message: Any) -> bool:
        """Queue ``message``; False when the feed is now full (wait for ``space``)."""
        queue = self._queue
        queue.append(message)
        self._ready.set()
        if len(queue) >= self.maxsize:
            self._space.clear()
            return False
        return True

    async def space(self) -> None:
        await self._space.wait()

    async def ready(self) -> None:
        await self._ready.wait()

    def take(self, max_: int) -> list[Any]:
        queue = self._queue
        n = min(max_, len(queue))
        popleft = queue.popleft
        taken = [popleft() for _ in range(n)]
        if not queue:
            self._ready.clear()
        if len(queue) < self.maxsize:
            self._space.set()
        return taken

    def clear(self) -> None:
        """Called by Faust's flow control when flow resumes after a rebalance."""
        self._queue.clear()
        self._ready.clear()
        self._space.set()


def add_feed(app: Any, topic: str, maxsize: int) -> DirectFeed:
    """Route ``topic``'s messages to a new feed; before the app starts, so that no message
    of the topic ever takes Faust's path."""
    feeds: dict[str, DirectFeed] = app.__dict__.setdefault(FEEDS_ATTR, {})
    feed = feeds[topic] = DirectFeed(topic, maxsize)
    return feed


def feeds_of(app: Any) -> dict[str, DirectFeed]:
    return app.__dict__.get(FEEDS_ATTR) or {}


class DirectBatch:
    """Up to ``max_`` messages taken together; ``ack`` them once they are fully handled."""

    __slots__ = ("_consumer", "messages")

    def __init__(self, consumer: Any, messages: list[Any]) -> None:
        self._consumer, self.messages = consumer, messages

    def __len__(self) -> int:
        return len(self.messages)

    def ack(self) -> None:
        ack = self._consumer.ack
        for message in self.messages:
            ack(message)


async def take_direct(
    stream: Any, feed: DirectFeed, max_: int, linger_s: float = 0.0
) -> AsyncIterator[DirectBatch]:
    """Batches of up to ``max_`` of the feed's messages; the taker acknowledges each one.

    ``stream`` is the agent's own stream, which stays started so that the topic stays
    subscribed; nothing arrives on it. With ``linger_s`` a batch that is not full waits
    that long once for more messages."""
    app = stream.app
    consumer = app.consumer
    flow = app.flow_control
    flow.manage_queue(feed)
    acking = feed.topic in app.topics.acking_topics
    add_unacked = consumer._unacked_messages.add
    started_here = await stream.maybe_start()
    stream._finalized = True
    try:
        while not stream.should_stop:
            if not len(feed):
                await feed.ready()
            if linger_s > 0 and len(feed) < max_:
                await asyncio.sleep(linger_s)
            taken = feed.take(max_)
            if not flow.is_active():
                continue  # cleared when flow resumes; the seek fetches them again
            generation = app.consumer_generation_id
            batch = [m for m in taken if m.generation_id == generation]
            if acking:
                for message in batch:
                    message.tracked = True
                    add_unacked(message)
            if batch:
                yield DirectBatch(consumer, batch)
            # Let the fetch loop run between batches, as it must to fill the feed.
            await asyncio.sleep(0)
    finally:
        stream._channel_stop_iteration(stream.channel)
        if started_here:
            await stream.stop()
            stream.service_reset()
