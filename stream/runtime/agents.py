"""The two agents' work: a Faust micro-batch through the detection pipeline to the sinks.

Both sides drive ``stream.detect.pipeline``, the same code the backtest runs; what is
left here is Faust's: turning taken events into records, acknowledging them once their
effects are stored, and the worker's metrics.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from stream.core.state import SellerState, UserState
from stream.detect.model_churn import churn_for
from stream.detect.pipeline import Record, UserPipeline
from stream.detect.seller_pipeline import SellerPipeline
from stream.runtime.driver.bulk_take import Batch, Taken, ack_taken
from stream.runtime.driver.direct_feed import DirectBatch
from stream.runtime.driver.tables import CoalescedTable
from stream.runtime.metrics import Metrics, observe_many
from stream.runtime.model_slot import ModelSlot
from stream.runtime.settings import Settings
from stream.runtime.sinks import Sinks

log = logging.getLogger("fraudstream")
EXIT_CRASH = 70  # EX_SOFTWARE: a supervisor should restart the worker


@contextmanager
def exit_on_crash() -> Iterator[None]:
    """Kafka trouble mid-batch ends the process. Faust would restart just the agent, which
    skips the batch it had taken and keeps its half-applied state; a fresh process resumes
    from the last committed offsets and loses nothing."""
    try:
        yield
    except Exception:
        log.critical("unrecoverable error; exiting to resume from committed offsets", exc_info=True)
        logging.shutdown()
        os._exit(EXIT_CRASH)


def records(taken: list[Taken]) -> list[Record]:
    return [
        Record(t.event.key, t.event.value, t.event.message.partition, t.event.message.offset, t)
        for t in taken
    ]


def batch_records(batch: Batch | DirectBatch) -> list[Record]:
    """A batch's records; a direct batch's origin is the message itself."""
    if isinstance(batch, DirectBatch):
        return [Record(m.key, m.value, m.partition, m.offset, m) for m in batch.messages]
    return records(batch.taken())


def ack_origins(origins: list[Any], ack_message: Callable[[Any], Any]) -> None:
    """Acknowledge records handled, perhaps batches after they were taken (the seller side
    holds records back to reorder them): events taken from a stream, or messages of a
    direct feed."""
    ack_taken([o for o in origins if isinstance(o, Taken)])
    for origin in origins:
        if not isinstance(origin, Taken):
            ack_message(origin)


class UserSide:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        slot: ModelSlot,
        sinks: Sinks,
        table: CoalescedTable[UserState],
    ) -> None:
        self.metrics, self.slot, self.sinks, self.table = metrics, slot, sinks, table
        self.pipeline = UserPipeline(
            settings.detector_config(),
            churn_for(slot.model, settings.churn_config()),
            settings.model_batch_max,
            guard=settings.event_time_guard(),
            pseudonyms=settings.pseudonymiser(),
        )
        self._processed = {o: metrics.processed.labels(o) for o in ("added", "duplicate")}

    def handle(self, batch: Batch | DirectBatch) -> None:
        started = time.perf_counter()
        with exit_on_crash():
            fx = self.pipeline.run(batch_records(batch), self.table, self.slot.model)
            self.sinks.dead_letters(fx)
            self.sinks.seller_records(fx)
            self.sinks.finish(fx, self.table, batch.ack)
        self._processed["added"].inc(fx.added)
        self._processed["duplicate"].inc(fx.duplicates)
        size = len(batch)
        self.metrics.consumed.inc(size)
        self.metrics.micro_batch.labels("events").observe(size)
        observe_many(self.metrics.processing, time.perf_counter() - started, size)

    def forget(self, partitions: set[int]) -> None:
        """Input partitions gone in a rebalance: their event-time watermarks go too."""
        if self.pipeline.guard is not None:
            self.pipeline.guard.forget(partitions)


class SellerSide:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        slot: ModelSlot,
        sinks: Sinks,
        table: CoalescedTable[SellerState],
        partitions: int,
        ack_message: Callable[[Any], Any],
    ) -> None:
        self.metrics, self.slot, self.sinks, self.table = metrics, slot, sinks, table
        self.ack_message = ack_message  # a record from a direct feed: the consumer's ack
        self.pipeline = SellerPipeline(
            settings.detector_config(), partitions, settings.reorder_wait_ms
        )

    def handle(self, batch: Batch | DirectBatch) -> None:
        self.metrics.micro_batch.labels("sellers").observe(len(batch))
        self._run(batch_records(batch))

    def release_due(self) -> None:
        """Records whose wait for the watermark is over, when no new batch comes in."""
        if self.pipeline.waiting():
            self._run([])

    def forget(self, partitions: set[int]) -> None:
        """Partitions gone in a rebalance: what still waits there is not ours to decide (it
        was never acknowledged, so the new owner reads it again)."""
        self.pipeline.forget(partitions)
        self.metrics.reorder_waiting.set(self.pipeline.waiting())

    def _run(self, batch: list[Record]) -> None:
        with exit_on_crash():
            now_ms = int(time.monotonic() * 1000)
            fx = self.pipeline.run(batch, self.table, self.slot.model, now_ms)
            self.sinks.dead_letters(fx)
            handled = [r.origin for r in fx.handled]
            self.sinks.finish(fx, self.table, lambda: ack_origins(handled, self.ack_message))
        self.metrics.seller_records.inc(fx.added + fx.duplicates)
        self.metrics.reorder_waiting.set(self.pipeline.waiting())
