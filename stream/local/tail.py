"""``fraudstream alerts tail``: follow alert topics and print one JSON alert per line."""

from __future__ import annotations

import sys
import uuid

from confluent_kafka import Consumer, KafkaError

from stream.runtime.settings import Settings
from stream.runtime.topics import ALERT_TOPICS


def tail_alerts(
    broker: str,
    kind: str | None,
    from_beginning: bool,
    prefix: str = "",
    max_messages: int | None = None,
) -> int:
    topics = [prefix + t for k, t in ALERT_TOPICS.items() if kind is None or k == kind]
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"fraudstream-tail-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": False,
            # Security (SASL, TLS) from the FRAUDSTREAM_* environment, as the worker reads it.
            **Settings().kafka_client_config(),
        }
    )
    consumer.subscribe(topics)
    seen = 0
    try:
        while max_messages is None or seen < max_messages:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    print(f"fraudstream: kafka: {err}", file=sys.stderr)
                continue
            value = msg.value() or b""
            sys.stdout.write(value.decode("utf-8", "replace") + "\n")
            sys.stdout.flush()
            seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return seen
