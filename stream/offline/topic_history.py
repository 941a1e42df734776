"""A Kafka topic's history as an events file, for ``backtest --from-topic``.

The time range is chosen by message timestamps, as Kafka's ``offsets_for_times`` answers:
per partition from the first offset at or after ``since`` to the first offset after
``until`` (or the end as it stood when the export began, so a live topic still ends).
Nothing is committed: the export reads in a consumer group of its own.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

from stream.core.cliutil import CommandError
from stream.runtime.preflight import missing_topics, probe_broker


def export_topic(
    broker: str,
    topic: str,
    out: Path,
    since_ms: int | None = None,
    until_ms: int | None = None,
    client_config: dict[str, str] | None = None,
    timeout: float = 30.0,
    flag: str = "--from-topic",
) -> int:
    """Write the messages' values in range to ``out``, one per line; return how many.
    Errors name the topic after ``flag``, the option that gave it.

    A value holding a raw newline cannot be a valid event; it is written as an empty line,
    so the backtest counts it as rejected instead of splitting it."""
    # A consumer would retry a missing broker for the whole timeout, logging each attempt.
    if missing_topics(probe_broker(broker, client_config), [topic]):
        raise _no_such_topic(topic, broker, flag)
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"fraudstream-backtest-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **(client_config or {}),
        }
    )
    try:
        ranges = _ranges(consumer, topic, since_ms, until_ms, timeout, flag)
        return _copy(consumer, topic, ranges, out, timeout, flag)
    except KafkaException as exc:
        raise CommandError(f"{flag} {topic}: {exc.args[0]}") from None
    finally:
        consumer.close()


def _ranges(
    consumer: Consumer,
    topic: str,
    since_ms: int | None,
    until_ms: int | None,
    timeout: float,
    flag: str,
) -> dict[int, tuple[int, int]]:
    """partition -> [first, end) offsets to read."""
    meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None:
        raise _no_such_topic(topic, "the broker", flag)
    ranges: dict[int, tuple[int, int]] = {}
    for partition in sorted(meta.partitions):
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=timeout
        )
        first = _offset_for(consumer, topic, partition, since_ms, low, high, timeout, flag)
        end = high if until_ms is None else _offset_for(
            consumer, topic, partition, until_ms + 1, low, high, timeout, flag
        )  # fmt: skip
        if first < end:
            ranges[partition] = (first, end)
    return ranges


def _no_such_topic(topic: str, broker: str, flag: str) -> CommandError:
    return CommandError(
        f"{flag} {topic}: no such topic on {broker}; check the name (and the worker's "
        "--topic-prefix) or --broker"
    )


def _offset_for(
    consumer: Consumer,
    topic: str,
    partition: int,
    ts_ms: int | None,
    low: int,
    high: int,
    timeout: float,
    flag: str,
) -> int:
    """The first offset whose timestamp is at or after ``ts_ms`` (``high`` if none)."""
    if ts_ms is None:
        return low
    (found,) = consumer.offsets_for_times([TopicPartition(topic, partition, ts_ms)], timeout)
    if found.error is not None:
        raise CommandError(f"{flag} {topic}: partition {partition}: {found.error}")
    return high if found.offset in (-1, OFFSET_END) else max(low, min(found.offset, high))


def _copy(
    consumer: Consumer,
    topic: str,
    ranges: dict[int, tuple[int, int]],
    out: Path,
    timeout: float,
    flag: str,
) -> int:
    consumer.assign([TopicPartition(topic, p, first) for p, (first, _) in ranges.items()])
    remaining = {p: end for p, (_, end) in ranges.items()}
    count = 0
    # consume() waits for a full batch or its timeout: short waits, so that a small topic
    # (the feedback topic) is read in well under a second, and ``timeout`` without progress.
    quiet_since = time.monotonic()
    with open(out, "wb") as f:
        while remaining:
            batch: list[Any] = consumer.consume(1000, 0.5)
            if not batch:
                if time.monotonic() - quiet_since < timeout:
                    continue
                missing = ", ".join(str(p) for p in sorted(remaining))
                raise CommandError(
                    f"{flag} {topic}: partitions {missing} stopped short of their end"
                )
            quiet_since = time.monotonic()
            for msg in batch:
                if msg.error() is not None:
                    raise KafkaException(msg.error())
                partition, offset = msg.partition(), msg.offset()
                end = remaining.get(partition)
                if end is None or offset >= end:
                    continue
                value = msg.value() or b""
                f.write((b"" if b"\n" in value else value) + b"\n")
                count += 1
                if offset + 1 >= end:
                    del remaining[partition]
    return count
