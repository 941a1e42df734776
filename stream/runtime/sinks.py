"""Where a micro-batch's effects go in the worker: Kafka topics, then the state store.

Dead letters, seller records and watermarks are sent at once; alerts go through the
write-behind (``stream.runtime.write_behind``): once they are delivered, the states the
batch changed are written and its events acknowledged. A crash in between repeats an alert
(same id), never loses one. Everything is flushed before Faust commits offsets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from stream.core.alerts import to_alert
from stream.core.dlq import dead_letter
from stream.detect.pipeline import Effects
from stream.detect.seller_pipeline import encode_seller_record, encode_watermark
from stream.runtime.driver.bulk_take import Taken
from stream.runtime.driver.tables import CoalescedTable
from stream.runtime.metrics import Metrics
from stream.runtime.output import KafkaOutput
from stream.runtime.settings import Settings
from stream.runtime.subject_views import RecentAlerts
from stream.runtime.topics import ALERT_TOPICS, BY_SELLER, DEAD_LETTERS
from stream.runtime.write_behind import WriteBehind

WATERMARK_EVERY_S = 0.1  # seconds between watermark announcements, at most


def source_message(origin: Any) -> Any:
    """The Faust message a record came from: its origin is the message itself (a direct
    feed) or the event taken from a stream."""
    return origin.message if isinstance(origin, Taken) else origin


class Sinks:
    def __init__(self, settings: Settings, metrics: Metrics, partitions: int) -> None:
        self.metrics, self.partitions = metrics, partitions
        self.out = KafkaOutput(settings.broker, settings.kafka_client_config())
        # Alerts have a producer of their own: waiting for an alert's delivery then means
        # waiting for that alert, not for every changelog and seller record in flight.
        self.behind = WriteBehind(KafkaOutput(settings.broker, settings.kafka_client_config()))
        self.dlq_topic, self.seller_topic = settings.topic(DEAD_LETTERS), settings.topic(BY_SELLER)
        self.alert_topics = {k: settings.topic(t) for k, t in ALERT_TOPICS.items()}
        self._marks: dict[int, int] = {}  # input partition -> event time not yet announced
        self._marks_sent = 0.0
        self.recent = RecentAlerts()  # for the web views, once delivered

    def dead_letters(self, fx: Effects) -> None:
        for record, rejection in fx.dead_letters:
            msg = source_message(record.origin)
            value = dead_letter(rejection, msg.topic, msg.partition, msg.offset, record.key,
                                record.value)  # fmt: skip
            self.out.send(self.dlq_topic, record.key, value)
            self.metrics.rejected.labels(rejection.reason).inc()

    def seller_records(self, fx: Effects) -> None:
        """Purchases and reviews to the seller side; how far each input partition's event
        time has got follows them (``announce_watermarks``)."""
        for seller_id, row in fx.seller_records:
            self.out.send(self.seller_topic, seller_id.encode(), encode_seller_record(row))
        self._marks.update(fx.watermarks)
        self.announce_watermarks()

    def announce_watermarks(self) -> None:
        """Tell every seller partition how far the input partitions have got, at most every
        ``WATERMARK_EVERY_S``: one message per input and seller partition pair, so sending
        them per micro-batch would cost more than the purchases they order. Called after
        each batch and by a timer, so the last ones of a burst go out too."""
        now = time.monotonic()
        if not self._marks or now - self._marks_sent < WATERMARK_EVERY_S:
            return
        for source, ts in self._marks.items():
            value = encode_watermark(source, ts)
            for partition in range(self.partitions):
                self.out.send(self.seller_topic, None, value, partition=partition)
        self._marks.clear()
        self._marks_sent = now

    def finish(self, fx: Effects, table: CoalescedTable[Any], ack: Callable[[], None]) -> None:
        """Send the alerts; once delivered, write the changed states and run ``ack``."""
        sent_alerts = [to_alert(d, fx.model_version) for _, d in fx.alerts]
        alerts = [
            (self.alert_topics[d.kind], d.subject_id.encode(), orjson.dumps(alert))
            for (_, d), alert in zip(fx.alerts, sent_alerts, strict=True)
        ]
        writes = table.collect()
        metrics = self.metrics

        def done() -> None:
            table.apply(writes, self.out)
            ack()
            if fx.alerts:
                for alert in sent_alerts:
                    self.recent.add(alert)
                now = time.time()
                for record, det in fx.alerts:
                    metrics.alerts.labels(det.kind).inc()
                    if record.origin is not None:
                        sent = source_message(record.origin).timestamp
                        metrics.event_to_alert.labels(det.kind).observe(max(0.0, now - sent))

        self.behind.submit(alerts, done)

    async def flush(self, tables: list[CoalescedTable[Any]]) -> None:
        """Before a commit: every batch's alerts delivered and states written, every other
        output delivered, and the changelog offsets recorded."""
        await self.behind.drain()
        await self.out.flush()
        for table in tables:
            table.persist_offsets(self.out)
