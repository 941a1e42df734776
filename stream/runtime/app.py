"""The Faust application: topics, RocksDB tables, agents and web views.

Processing is at-least-once: Faust commits offsets only after the producer has flushed
(alerts, dead letters, changelogs). A redelivered event finds its id already in the
user's window and changes nothing, and alert ids are deterministic, so consumers can
de-duplicate by ``alert_id`` in the rare case the worker dies between an alert's delivery
and the state write that records it.

With a model bundle (``stream.runtime.model_slot``) the user agent defers each micro-batch's
decision events, scores them in one model call and decides them in order
(``stream.detect.model_fraud``); purchases then reach the seller side with their brushing score
(``stream.detect.model_brushing``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust
import orjson
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from stream.core.alerts import Detection, to_alert
from stream.core.dlq import dead_letter
from stream.core.errors import Action, as_rejection, decide
from stream.core.schema import Rejected, parse_event
from stream.core.state import SellerState, UserState, row_to_dict
from stream.detect.churn import ChurnClock
from stream.detect.model_churn import churn_verdicts
from stream.detect.model_fraud import PendingFraud, decide_all, scored_seller_records
from stream.detect.processor import apply_seller_record, apply_user_event
from stream.runtime.driver import seek_guard
from stream.runtime.driver.bulk_take import Batch, take_batches
from stream.runtime.driver.tables import CoalescedTable
from stream.runtime.metrics import Metrics, estimate_keys
from stream.runtime.model_slot import ModelSlot
from stream.runtime.output import KafkaOutput
from stream.runtime.security import faust_app_kwargs
from stream.runtime.settings import Settings
from stream.runtime.topics import ALERT_TOPICS, BY_SELLER, DEAD_LETTERS, EVENTS
from stream.runtime.write_behind import WriteBehind

log = logging.getLogger("fraudstream")
EXIT_CRASH = 70  # EX_SOFTWARE: a supervisor should restart the worker


def build_app(settings: Settings, metrics: Metrics, partitions: int) -> faust.App:
    """Create the app; ``partitions`` is the input topic's actual partition count."""
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.broker}",
        store="rocksdb://",
        datadir=str(settings.data_dir),
        web_port=settings.web_port,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        topic_partitions=partitions,
        processing_guarantee="at_least_once",
        broker_commit_interval=settings.commit_interval_seconds,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_max_poll_records=settings.max_poll_records,
        consumer_auto_offset_reset="earliest",
        table_cleanup_interval=60.0,
        producer_linger=settings.producer_linger_ms / 1000.0,
        **faust_app_kwargs(settings),
    )
    seek_guard.install(app)
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    events = app.topic(settings.topic(EVENTS), partitions=partitions, **raw)
    by_seller = app.topic(settings.topic(BY_SELLER), partitions=partitions, **raw)
    # bytes in and out: state values are encoded by stream.core.state, keys are ids.
    users = app.Table("users", partitions=partitions, key_type=bytes, value_type=bytes)
    sellers = app.Table("sellers", partitions=partitions, key_type=bytes, value_type=bytes)
    cfg = settings.detector_config()
    slot = ModelSlot(settings, metrics)

    out = KafkaOutput(settings.broker, settings.kafka_client_config())
    # Alerts have a producer of their own: waiting for an alert's delivery then means
    # waiting for that alert, not for every changelog and seller record in flight.
    alerts_out = KafkaOutput(settings.broker, settings.kafka_client_config())
    dlq_topic, seller_topic = settings.topic(DEAD_LETTERS), settings.topic(BY_SELLER)
    alert_topics = {k: settings.topic(t) for k, t in ALERT_TOPICS.items()}
    batch_max, batch_wait = settings.batch_max, settings.batch_wait_ms / 1000.0

    def reject(ev: Any, exc: BaseException) -> None:
        rejection = as_rejection(exc)
        msg = ev.message
        record = dead_letter(rejection, msg.topic, msg.partition, msg.offset, ev.key, ev.value)
        out.send(dlq_topic, ev.key, record)
        metrics.rejected.labels(rejection.reason).inc()

    def handle_event(
        ev: Any,
        table: CoalescedTable[UserState],
        fired: list[tuple[Any, Detection]],
        pending: list[tuple[Any, PendingFraud]],
    ) -> None:
        event = parse_event(ev.value)
        if ev.key != event.user_id.encode():
            key = ev.key.decode("utf-8", "replace") if ev.key is not None else None
            raise Rejected(
                "bad_key", f"key: message key {key!r} must equal user_id {event.user_id!r}"
            )
        for tick in churn_clock.crossed(ev.message.partition, event.ts):
            evaluate_churn(ev, tick, table, fired)
        defer = slot.fraud is not None
        result = apply_user_event(table.get(ev, ev.key), event, cfg, defer)
        if result.outcome == "late":
            raise Rejected("late", "field 'ts': event is older than the allowed lateness")
        processed[result.outcome].inc()
        fired.extend((ev, det) for det in result.detections)
        if result.pending is not None:
            pending.append((ev, result.pending))
        if result.seller_record is not None:
            seller_id, row = result.seller_record
            out.send(seller_topic, seller_id.encode(), orjson.dumps(row))
        if result.outcome == "added":
            table.mark(ev, ev.key)

    processed = {o: metrics.processed.labels(o) for o in ("added", "duplicate")}
    churn_cfg = settings.churn_config()
    churn_clock = ChurnClock(churn_cfg.interval_ms)

    def evaluate_churn(
        ev: Any, tick: int, table: CoalescedTable[UserState], fired: list[tuple[Any, Detection]]
    ) -> None:
        """The partition's event-time clock passed ``tick``: score every user it holds, as
        the backtest does at the same tick. ``ev`` (same partition) carries the writes."""
        part = ev.message.partition
        users = [(key.decode(), table.get(ev, key)) for key in table.keys_in(part)]
        model, model_batch = slot.model, settings.model_batch_max
        for verdict in churn_verdicts(users, tick, churn_cfg, model, model_batch):
            if verdict.detection is not None:
                fired.append((ev, verdict.detection))
                table.mark(ev, verdict.user_id.encode())

    def handle_seller(
        ev: Any,
        table: CoalescedTable[SellerState],
        fired: list[tuple[Any, Detection]],
        pending: list[tuple[Any, PendingFraud]],
    ) -> None:
        row = orjson.loads(ev.value)
        state = table.get(ev, ev.key)
        result = apply_seller_record(state, ev.key.decode(), row, cfg, slot.brushing_threshold)
        fired.extend((ev, det) for det in result.detections)
        if result.outcome == "added":
            table.mark(ev, ev.key)

    cache_size = settings.state_cache_size
    user_table = CoalescedTable(users, UserState.decode, cache_size)
    seller_table = CoalescedTable(sellers, SellerState.decode, cache_size)

    behind = WriteBehind(alerts_out)

    def finish(
        table: CoalescedTable[Any], fired: list[tuple[Any, Detection]], batch: Batch
    ) -> None:
        """Send the batch's alerts; once they are delivered, write the states it changed and
        acknowledge its events (``stream.runtime.write_behind``). A crash in between repeats an
        alert (same id), never loses one."""
        version = slot.version
        alerts = [
            (alert_topics[d.kind], d.subject_id.encode(), orjson.dumps(to_alert(d, version)))
            for _, d in fired
        ]
        writes = table.collect()

        def done() -> None:
            table.apply(writes, out)
            batch.ack()
            if fired:
                now = time.time()
                for ev, det in fired:
                    metrics.alerts.labels(det.kind).inc()
                    latency = max(0.0, now - ev.message.timestamp)
                    metrics.event_to_alert.labels(det.kind).observe(latency)

        behind.submit(alerts, done)

    faust_flush = app.producer.flush

    async def flush_before_commit() -> None:
        with exit_on_crash():
            await behind.drain()
        await out.flush()
        user_table.persist_offsets(out)
        seller_table.persist_offsets(out)
        await faust_flush()

    # Faust flushes its producer right before every offset commit; ours joins in.
    app.producer.flush = flush_before_commit  # type: ignore[method-assign]

    def decide_pending(pending: list[tuple[Any, PendingFraud]]) -> list[tuple[Any, Detection]]:
        """One model call for a micro-batch's decision events, decided in event order."""
        fraud_model = slot.fraud
        if not pending or fraud_model is None:
            return []
        scores, found = decide_all(
            [p for _, p in pending],
            fraud_model,
            fraud_model.thresholds["fraud"],
            cfg.fraud_cooldown_ms,
            cfg.rules,
            settings.model_batch_max,
        )
        for seller_id, row in scored_seller_records([p for _, p in pending], scores):
            out.send(seller_topic, seller_id.encode(), orjson.dumps(row))
        return [(ev, det) for (ev, _), dets in zip(pending, found, strict=True) for det in dets]

    def run_batch(batch: Batch, handle: Any, table: CoalescedTable[Any]) -> None:
        """Handle each message (bad ones to the dead-letter topic), then finish the batch."""
        fired: list[tuple[Any, Detection]] = []
        pending: list[tuple[Any, PendingFraud]] = []
        with exit_on_crash():
            for ev in batch.events:
                try:
                    handle(ev, table, fired, pending)
                except Exception as exc:
                    if decide(exc) is Action.CRASH:
                        raise
                    reject(ev, exc)
            fired.extend(decide_pending(pending))
            finish(table, fired, batch)

    @app.agent(events, name="fraudstream.events")
    async def user_agent(stream: Any) -> None:
        async for batch in take_batches(stream, batch_max, batch_wait):
            started = time.perf_counter()
            run_batch(batch, handle_event, user_table)
            size = len(batch.events)
            metrics.consumed.inc(size)
            metrics.micro_batch.labels("events").observe(size)
            elapsed = time.perf_counter() - started
            for _ in range(size):
                metrics.processing.observe(elapsed)

    @app.agent(by_seller, name="fraudstream.sellers")
    async def seller_agent(stream: Any) -> None:
        async for batch in take_batches(stream, batch_max, batch_wait):
            run_batch(batch, handle_seller, seller_table)
            metrics.seller_records.inc(len(batch.events))
            metrics.micro_batch.labels("sellers").observe(len(batch.events))

    @app.timer(0.05)  # type: ignore[untyped-decorator]
    async def finish_delivered() -> None:
        """Batches whose alerts were delivered while no new batch came in."""
        if len(behind):
            with exit_on_crash():
                behind.complete_ready()

    if settings.model is not None and settings.model_reload_seconds > 0:
        # Between micro-batches (one event loop): no batch sees two models.
        app.timer(settings.model_reload_seconds)(slot.reload_if_changed)

    async def forget_cached_states(sender: Any, *args: Any, **kwargs: Any) -> None:
        user_table.forget()
        seller_table.forget()

    app.on_partitions_revoked.connect(forget_cached_states)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(forget_cached_states)  # type: ignore[arg-type]
    _add_views(app, metrics, user_table, seller_table)
    _add_monitoring(app, metrics, settings.topic(EVENTS), users, sellers)
    return app


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


def _add_views(
    app: faust.App,
    metrics: Metrics,
    users: CoalescedTable[UserState],
    sellers: CoalescedTable[SellerState],
) -> None:
    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        headers = {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
        return web.bytes(generate_latest(metrics.registry), headers=headers)

    @app.page("/users/{user_id}")
    async def user_view(web: Any, request: Any, user_id: str) -> Any:
        state = users.peek(user_id.encode())
        if state is None:
            return web.json({"error": "unknown user"}, status=404)
        return web.json(
            {
                "user_id": user_id,
                "first_ts": state.first_ts,
                "max_ts": state.max_ts,
                "total": state.total,
                "events": [row_to_dict(r) for r in state.events],
            }
        )

    @app.page("/sellers/{seller_id}")
    async def seller_view(web: Any, request: Any, seller_id: str) -> Any:
        state = sellers.peek(seller_id.encode())
        if state is None:
            return web.json({"error": "unknown seller"}, status=404)
        return web.json({"seller_id": seller_id, "max_ts": state.max_ts, "orders": state.orders})


def _add_monitoring(
    app: faust.App, metrics: Metrics, events_topic: str, users: Any, sellers: Any
) -> None:
    metrics.up.set(1)

    @app.timer(5.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        consumer = app.consumer
        lag: dict[int, int] = {}
        for tp in consumer.assignment():
            if tp.topic != events_topic:
                continue
            position = await consumer.position(tp)
            if position is not None:
                lag[tp.partition] = max(0, consumer.highwater(tp) - position)
        # Partitions moved to another worker after a rebalance must not report stale lag.
        metrics.lag.clear()
        for partition, behind in lag.items():
            metrics.lag.labels(str(partition)).set(behind)
        metrics.table_keys.labels("users").set(estimate_keys(users))
        metrics.table_keys.labels("sellers").set(estimate_keys(sellers))

    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        metrics.rebalances.inc()

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]
