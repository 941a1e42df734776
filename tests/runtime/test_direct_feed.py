"""The direct feed: a topic's messages from the fetch loop to its agent, past Faust's
conductor, with Faust's flow control, offsets and back-pressure kept (no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from faust.types import TP

from stream.runtime.agents import ack_origins
from stream.runtime.driver.direct_feed import DirectFeed, add_feed, take_direct
from stream.runtime.driver.drain import PollDrain
from tests.runtime.test_drain import FaustLike

EVENTS, OTHER = "events", "other"
A, B = TP(EVENTS, 0), TP(OTHER, 0)


class Message:
    def __init__(self, tp: TP, offset: int, generation_id: int = 1) -> None:
        self.tp, self.topic, self.partition, self.offset = tp, tp.topic, tp.partition, offset
        self.generation_id = generation_id
        self.tracked = False
        self.key, self.value = b"k", b"v"


class Flow:
    def __init__(self) -> None:
        self.active = True
        self.managed: list[Any] = []

    def is_active(self) -> bool:
        return self.active

    async def acquire(self) -> None:
        raise AssertionError("not called while the flow is active")

    def manage_queue(self, queue: Any) -> None:
        self.managed.append(queue)


class Buffer:
    size, max_messages = 0, 100
    ebbs = 0

    async def wait_until_ebb(self) -> None:
        self.ebbs += 1


class Producer:
    def __init__(self) -> None:
        self.buffer = Buffer()


class Topics:
    acking_topics = frozenset({EVENTS})

    def acks_enabled_for(self, topic: str) -> bool:
        return True


class App:
    client_only = False
    consumer_generation_id = 1

    def __init__(self) -> None:
        self.topics = Topics()
        self.flow_control = Flow()
        self.producer = Producer()
        self.consumer: Any = None


class Consumer(PollDrain, FaustLike):
    def __init__(self) -> None:
        super().__init__()
        self.app = App()  # type: ignore[assignment]
        self.app.consumer = self
        self._unacked_messages: set[Message] = set()
        self.acked: list[int] = []

    def ack(self, message: Message) -> bool:
        self.acked.append(message.offset)
        self._unacked_messages.discard(message)
        return True


class Stream:
    def __init__(self, app: App) -> None:
        self.app, self.channel = app, object()
        self.should_stop = False
        self._finalized = False

    async def maybe_start(self) -> bool:
        return False

    def _channel_stop_iteration(self, channel: Any) -> None:
        pass


async def _poll(items: list[tuple[TP, Message]]) -> AsyncGenerator[tuple[TP, Message], None]:
    for item in items:
        yield item


def test_a_feed_queues_in_order_and_says_when_it_is_full() -> None:
    feed = DirectFeed(EVENTS, maxsize=3)
    assert feed.offer(1) and feed.offer(2)
    assert not feed.offer(3)  # full now: the fetch loop waits for space
    assert not feed._space.is_set()
    assert feed.take(2) == [1, 2] and feed._space.is_set() and len(feed) == 1
    feed.clear()
    assert len(feed) == 0 and not feed._ready.is_set()


def test_the_feed_topic_skips_the_conductor_and_other_topics_do_not() -> None:
    async def run() -> None:
        consumer = Consumer()
        feed = add_feed(consumer.app, EVENTS, maxsize=100)
        items = [(A, Message(A, 0)), (B, Message(B, 0)), (A, Message(A, 1))]
        await consumer._deliver(items[0], _poll(items[1:]))
        assert consumer.delivered == [(B, 0)]  # through the conductor's callback
        assert [m.offset for m in feed.take(10)] == [0, 1]
        assert consumer._read_offset[A] == 1 and consumer._read_offset[B] == 0

    asyncio.run(run())


def test_a_full_feed_holds_the_fetch_loop_until_the_agent_takes() -> None:
    async def run() -> None:
        consumer = Consumer()
        feed = add_feed(consumer.app, EVENTS, maxsize=2)
        items = [(A, Message(A, o)) for o in range(4)]
        delivering = asyncio.create_task(consumer._deliver(items[0], _poll(items[1:])))
        await asyncio.sleep(0.01)
        assert not delivering.done() and len(feed) == 2
        assert [m.offset for m in feed.take(10)] == [0, 1]
        await asyncio.sleep(0.01)
        assert not delivering.done()  # full again with the last two
        assert [m.offset for m in feed.take(10)] == [2, 3]
        await asyncio.wait_for(delivering, 1.0)

    asyncio.run(run())


def test_taken_batches_are_tracked_acked_and_stale_generations_dropped() -> None:
    async def run() -> None:
        consumer = Consumer()
        app = consumer.app
        feed = add_feed(app, EVENTS, maxsize=100)
        stream = Stream(app)
        for offset, generation in ((0, 0), (1, 1), (2, 1)):
            feed.offer(Message(A, offset, generation))
        batches = take_direct(stream, feed, max_=10)
        batch = await anext(batches)
        assert app.flow_control.managed == [feed]  # cleared when flow resumes
        assert [m.offset for m in batch.messages] == [1, 2]  # generation 0 is stale
        assert all(m.tracked for m in batch.messages)
        assert len(consumer._unacked_messages) == 2
        batch.ack()
        assert consumer.acked == [1, 2] and not consumer._unacked_messages
        await batches.aclose()

    asyncio.run(run())


def test_messages_taken_while_the_flow_is_suspended_are_left_untracked() -> None:
    async def run() -> None:
        consumer = Consumer()
        app = consumer.app
        feed = add_feed(app, EVENTS, maxsize=100)
        stream = Stream(app)
        suspended = Message(A, 0)
        feed.offer(suspended)
        app.flow_control.active = False
        batches = take_direct(stream, feed, max_=10)
        nxt = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.01)
        assert not nxt.done() and len(feed) == 0  # dropped, not handed out
        assert not suspended.tracked and not consumer._unacked_messages
        app.flow_control.active = True
        feed.offer(Message(A, 0))  # fetched again after the rebalance's seek
        batch = await asyncio.wait_for(nxt, 1.0)
        assert [m.offset for m in batch.messages] == [0]
        await batches.aclose()

    asyncio.run(run())


def test_a_full_producer_buffer_is_waited_for_once_per_stretch_of_messages() -> None:
    async def run() -> None:
        consumer = Consumer()
        buffer = consumer.app.producer.buffer
        buffer.size = 500  # over max_messages: Faust's own sends are behind
        feed = add_feed(consumer.app, EVENTS, maxsize=1000)
        items = [(A, Message(A, o)) for o in range(250)]
        await consumer._deliver(items[0], _poll(items[1:]))
        assert len(feed) == 250
        assert buffer.ebbs == 3  # at the start and after each yield, every 100 messages

    asyncio.run(run())


def test_handled_records_are_acked_by_the_consumer_when_they_came_directly() -> None:
    acked: list[Message] = []
    messages = [Message(A, 0), Message(A, 1)]
    ack_origins(messages, acked.append)
    assert acked == messages
