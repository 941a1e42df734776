"""Kafka output for alerts, dead letters and the seller topic, through librdkafka.

Faust's own producer costs about a third of a millisecond of Python per message on this
class of machine; librdkafka batches in C. Everything a batch of input produces is flushed,
and its delivery confirmed, before the batch's state is written and its offsets can be
committed: a crash may then repeat an output (same ids), never lose one.

A broker that is away for a while (a restart) only holds the flushes up: librdkafka keeps
retrying every message until its ``message.timeout.ms`` is over, and the flush waits that
long. Only a message that librdkafka itself gives up on ends the worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, Producer

# How long librdkafka retries a message before reporting it failed (its own default, stated).
DELIVERY_TIMEOUT_MS = 300_000
# A flush outlasts the delivery timeout by this much, so that it ends with the failure
# reports, not before them.
FLUSH_MARGIN_S = 10.0


class DeliveryFailed(ConnectionError):
    """An output message could not be delivered; the agent must crash and replay."""


class KafkaOutput:
    def __init__(self, bootstrap: str, extra: dict[str, Any] | None = None) -> None:
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            # The Java client's partitioner, as Faust uses: keys land where Faust expects.
            "partitioner": "murmur2_random",
            "linger.ms": 1,
            "enable.idempotence": True,
            # State records are JSON of up to a few hundred events: lz4 cuts what the
            # broker stores and serves back on recovery several times over.
            "compression.type": "lz4",
            "message.timeout.ms": DELIVERY_TIMEOUT_MS,
        }
        config.update(extra or {})
        self._producer = Producer(config)
        self._flush_limit_s = int(config["message.timeout.ms"]) / 1000 + FLUSH_MARGIN_S
        self._errors: list[str] = []
        # Highest delivered offset per (topic, partition) since the last ``take_offsets``.
        self._offsets: dict[tuple[str, int], int] = {}

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")
            return
        tp = (msg.topic(), msg.partition())
        if msg.offset() > self._offsets.get(tp, -1):
            self._offsets[tp] = msg.offset()

    def _report(self, then: Callable[[KafkaError | None], None], err: Any, msg: Any) -> None:
        self._on_delivery(err, msg)
        then(err)

    def poll(self) -> None:
        """Serve delivery reports that have arrived, without waiting."""
        self._producer.poll(0)

    def take_offsets(self, topic: str) -> dict[int, int]:
        """Pop the delivered offsets of ``topic``, by partition."""
        taken = {tp: off for tp, off in self._offsets.items() if tp[0] == topic}
        for tp in taken:
            del self._offsets[tp]
        return {partition: off for (_, partition), off in taken.items()}

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int = -1,
        then: Callable[[KafkaError | None], None] | None = None,
    ) -> None:
        """Queue a message; ``then`` gets its delivery error (None when delivered)."""
        callback = self._on_delivery if then is None else partial(self._report, then)
        while True:
            try:
                self._producer.produce(
                    topic, key=key, value=value, partition=partition, on_delivery=callback
                )
                return
            except BufferError:  # local queue full: serve callbacks, then retry
                self._producer.poll(0.01)

    async def flush(self, limit_s: float | None = None) -> None:
        """Wait, without blocking the event loop, until everything sent is delivered. By
        default as long as librdkafka may still deliver: a fixed 30 s once ended the worker
        (exit 70) when the broker restarted in 40 s, with every message still deliverable."""
        if limit_s is None:
            limit_s = self._flush_limit_s
        if len(self._producer):
            loop = asyncio.get_running_loop()
            remaining = await loop.run_in_executor(None, self._producer.flush, limit_s)
            if remaining:
                raise DeliveryFailed(f"{remaining} output messages undelivered after {limit_s}s")
        else:
            self._producer.poll(0)
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed(f"output delivery failed: {errors[0]} (+{len(errors) - 1} more)")

    def close(self) -> None:
        self._producer.flush(10)
