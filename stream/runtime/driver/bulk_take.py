"""Micro-batches taken from a Faust stream in bulk: the events already queued, at once.

Faust's own ``Stream.take_events`` moves every event through the stream iterator, which
yields to the event loop once per event (``await sleep(0)``) and runs a buffering
processor per event; on a 2-core machine that alone capped the worker well below a
pass-through agent. ``take_batches`` waits for one event, then takes everything the
conductor has already queued for this stream (up to ``max_``) without yielding, so batches
form by themselves under load and a lone event is handled at once when traffic is light.

It does per event what Faust's stream iterator does (``faust/streams.py``): skip events
of an older consumer generation or while flow control is suspended (a rebalance is in
progress), track the message as unacked and call the sensors. The events of a batch are
acknowledged when its taker says so (``Batch.ack``), which may be after the next batch is
taken (``stream.runtime.write_behind``): offsets are committed only for events whose effects are
stored, and a rebalance waits for every batch not yet acknowledged. One difference: Faust
acks the events it skips, and an ack lets the next commit pass the event although nothing
handled it; here a skipped event is left unacked, so commits stop below it until the copy
fetched after the rebalance's seek has been handled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any


class Taken:
    """One event taken from a stream, with what acknowledging it needs; an event may be
    acknowledged after its batch (the seller side holds events back to reorder them)."""

    __slots__ = ("event", "state", "stream")

    def __init__(self, stream: Any, event: Any, state: Any) -> None:
        self.stream, self.event, self.state = stream, event, state

    @property
    def message(self) -> Any:
        return self.event.message


class Batch:
    """Up to ``max_`` events taken together; ``ack`` them once they are fully handled."""

    __slots__ = ("_states", "_stream", "events")

    def __init__(self, stream: Any, events: list[Any], states: list[Any]) -> None:
        self._stream, self.events, self._states = stream, events, states

    def __len__(self) -> int:
        return len(self.events)

    def ack(self) -> None:
        _ack(self._stream, self.events, self._states)

    def taken(self) -> list[Taken]:
        stream = self._stream
        return [Taken(stream, e, s) for e, s in zip(self.events, self._states, strict=True)]


def ack_taken(taken: list[Taken]) -> None:
    """Acknowledge events taken from one or more batches of the same stream."""
    if taken:
        _ack(taken[0].stream, [t.event for t in taken], [t.state for t in taken])


async def take_batches(stream: Any, max_: int, linger_s: float = 0.0) -> AsyncIterator[Batch]:
    """Yield batches of up to ``max_`` events each; the taker acknowledges each one.

    With ``linger_s`` a batch that is not full waits that long once for more events."""
    app, channel = stream.app, stream.channel
    queue = channel.queue
    wait_for_one = channel.__anext__
    consumer = app.consumer
    acking_topics = app.topics.acking_topics
    add_unacked = consumer._unacked_messages.add
    started_here = await stream.maybe_start()
    stream._finalized = True
    taken: list[Any] = []
    try:
        while not stream.should_stop:
            if queue._errors:
                raise queue._errors.popleft()
            if queue.empty():
                try:
                    taken.append(await wait_for_one())
                except StopAsyncIteration:  # the channel was closed: the agent stops
                    return
            _take_queued(queue, taken, max_)
            if linger_s > 0 and len(taken) < max_:
                await asyncio.sleep(linger_s)
                _take_queued(queue, taken, max_)
            batch, states = _admit(stream, taken, acking_topics, add_unacked)
            taken = []
            if batch:
                stream.events_total += len(batch)
                yield Batch(stream, batch, states)
            # Let the consumer and the conductor run between batches, as they must to
            # fill the queue, even when it never runs dry.
            await asyncio.sleep(0)
    finally:
        stream._channel_stop_iteration(channel)
        if started_here:
            await stream.stop()
            stream.service_reset()


def _take_queued(queue: Any, taken: list[Any], max_: int) -> None:
    get_nowait = queue.get_nowait
    while len(taken) < max_ and not queue.empty():
        taken.append(get_nowait())


def _admit(
    stream: Any, taken: list[Any], acking_topics: Any, add_unacked: Any
) -> tuple[list[Any], list[Any]]:
    """The taken events to handle, with their sensor states; events of a stale generation
    or taken while flow control is suspended by a rebalance are dropped unacked (the seek
    after the rebalance fetches them again)."""
    app = stream.app
    on_message_in = stream._on_message_in
    on_stream_event_in = stream._on_stream_event_in
    batch: list[Any] = []
    states: list[Any] = []
    if not app.flow_control.is_active():
        return batch, states
    generation = app.consumer_generation_id
    for event in taken:
        message = event.message
        if message.generation_id != generation:
            continue
        if message.topic in acking_topics and not message.tracked:
            message.tracked = True
            add_unacked(message)
            on_message_in(message.tp, message.offset, message)
        states.append(on_stream_event_in(message.tp, message.offset, stream, event))
        batch.append(event)
    return batch, states


def _ack(stream: Any, events: list[Any], states: list[Any]) -> None:
    """Faust's ``Stream.ack`` without a coroutine per event."""
    on_stream_event_out = stream._on_stream_event_out
    on_message_out = stream._on_message_out
    for event, state in zip(events, states, strict=True):
        last_stream_to_ack = event.ack()
        message = event.message
        on_stream_event_out(message.tp, message.offset, stream, event, state)
        if last_stream_to_ack:
            on_message_out(message.tp, message.offset, message)
