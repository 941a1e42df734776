"""Helpers for tests against the real broker: produce, consume, run a worker process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Producer

from stream.local.workerproc import WorkerProcess

__all__ = ["WorkerProcess", "consume", "produce", "produce_events"]


def produce(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
    # murmur2 is the Java client's partitioner, which Faust's producer uses too.
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    count = 0
    for key, value in messages:
        producer.produce(topic, key=key, value=value)
        count += 1
    assert producer.flush(30) == 0
    return count


def produce_events(bootstrap: str, topic: str, events: Iterable[dict[str, Any]]) -> int:
    return produce(bootstrap, topic, ((e["user_id"].encode(), orjson.dumps(e)) for e in events))


def consume(
    bootstrap: str,
    topic: str,
    expect: int,
    timeout: float = 60.0,
    unique: Callable[[Any], Any] | None = None,
) -> list[Any]:
    """Read ``topic`` from the start until ``expect`` messages (with ``unique``: messages
    that differ by it, so repeats do not count) or the timeout, then linger briefly so that
    extra (duplicate) messages would be caught too."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    seen: set[Any] = set()
    deadline = time.monotonic() + timeout
    linger_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if linger_until is not None and time.monotonic() > linger_until:
                break
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                assert msg.error().code() in (
                    KafkaError._PARTITION_EOF,
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                ), msg.error()
                continue
            out.append(msg)
            if unique is not None:
                seen.add(unique(msg))
            count = len(seen) if unique is not None else len(out)
            if count >= expect and linger_until is None:
                linger_until = time.monotonic() + 3.0
    finally:
        consumer.close()
    return out
