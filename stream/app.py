"""The Faust application: topics, RocksDB tables, agents and web views.

Processing is at-least-once: Faust commits offsets only after the producer has flushed
(alerts, dead letters, changelogs). A redelivered event finds its id already in the
user's window and changes nothing, and alert ids are deterministic, so consumers can
de-duplicate by ``alert_id`` in the rare case the worker dies between an alert's delivery
and the state write that records it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
import orjson
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from stream.alerts import RULES_MODEL_VERSION, Detection, to_alert
from stream.dlq import dead_letter
from stream.errors import Action, as_rejection, decide
from stream.metrics import Metrics
from stream.processor import process_seller_record, process_user_event
from stream.schema import Rejected, parse_event
from stream.settings import Settings
from stream.state import SellerState, UserState, row_to_dict
from stream.topics import ALERT_TOPICS, BY_SELLER, DEAD_LETTERS, EVENTS

log = logging.getLogger("fraudstream")


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
        consumer_auto_offset_reset="earliest",
        table_cleanup_interval=60.0,
    )
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    events = app.topic(settings.topic(EVENTS), partitions=partitions, **raw)
    by_seller = app.topic(settings.topic(BY_SELLER), partitions=partitions, **raw)
    dlq = app.topic(settings.topic(DEAD_LETTERS), **raw)
    alert_topics = {k: app.topic(settings.topic(t), **raw) for k, t in ALERT_TOPICS.items()}
    # bytes in and out: state values are encoded by stream.state, keys are ids.
    users = app.Table("users", partitions=partitions, key_type=bytes, value_type=bytes)
    sellers = app.Table("sellers", partitions=partitions, key_type=bytes, value_type=bytes)
    cfg = settings.detector_config()
    model_version = RULES_MODEL_VERSION
    metrics.model_info.info({"version": model_version, "backend": "rules"})

    async def reject(ev: Any, rejection: Rejected) -> None:
        msg = ev.message
        record = dead_letter(rejection, msg.topic, msg.partition, msg.offset, ev.key, ev.value)
        await dlq.send(key=ev.key, value=record)
        metrics.rejected.labels(rejection.reason).inc()

    async def emit(ev: Any, detections: list[Detection]) -> None:
        for det in detections:
            alert = to_alert(det, model_version)
            fut = await alert_topics[det.kind].send(
                key=det.subject_id.encode(), value=orjson.dumps(alert)
            )
            await fut  # delivered before the state that records it is written
            metrics.alerts.labels(det.kind).inc()
            metrics.event_to_alert.labels(det.kind).observe(
                max(0.0, time.time() - ev.message.timestamp)
            )

    async def handle_event(ev: Any) -> None:
        event = parse_event(ev.value)
        if ev.key != event.user_id.encode():
            raise Rejected("bad_key", f"key: message key {ev.key!r} must equal user_id")
        result = process_user_event(users.get(ev.key), event, cfg)
        if result.outcome == "late":
            raise Rejected("late", "field 'ts': event is older than the allowed lateness")
        metrics.processed.labels(result.outcome).inc()
        await emit(ev, result.detections)
        if result.seller_record is not None:
            seller_id, row = result.seller_record
            await by_seller.send(key=seller_id.encode(), value=orjson.dumps(row))
        if result.state is not None:
            users[ev.key] = result.state

    async def handle_seller(ev: Any) -> None:
        seller_id = ev.key.decode()
        result = process_seller_record(sellers.get(ev.key), seller_id, orjson.loads(ev.value), cfg)
        await emit(ev, result.detections)
        if result.state is not None:
            sellers[ev.key] = result.state

    @app.agent(events, name="fraudstream.events")
    async def user_agent(stream: Any) -> None:
        async for ev in stream.events():
            started = time.perf_counter()
            metrics.consumed.inc()
            try:
                await handle_event(ev)
            except Exception as exc:
                if decide(exc) is Action.CRASH:
                    raise
                await reject(ev, as_rejection(exc))
            metrics.processing.observe(time.perf_counter() - started)

    @app.agent(by_seller, name="fraudstream.sellers")
    async def seller_agent(stream: Any) -> None:
        async for ev in stream.events():
            await handle_seller(ev)

    _add_views(app, metrics, users, sellers)
    _add_monitoring(app, metrics, settings.topic(EVENTS), users, sellers)
    return app


def _add_views(app: faust.App, metrics: Metrics, users: Any, sellers: Any) -> None:
    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        headers = {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
        return web.bytes(generate_latest(metrics.registry), headers=headers)

    @app.page("/users/{user_id}")
    async def user_view(web: Any, request: Any, user_id: str) -> Any:
        raw = users.get(user_id.encode())
        if raw is None:
            return web.json({"error": "unknown user"}, status=404)
        state = UserState.decode(raw)
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
        raw = sellers.get(seller_id.encode())
        if raw is None:
            return web.json({"error": "unknown seller"}, status=404)
        state = SellerState.decode(raw)
        return web.json({"seller_id": seller_id, "max_ts": state.max_ts, "orders": state.orders})


def _add_monitoring(
    app: faust.App, metrics: Metrics, events_topic: str, users: Any, sellers: Any
) -> None:
    metrics.up.set(1)

    @app.timer(5.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        consumer = app.consumer
        for tp in consumer.assignment():
            if tp.topic != events_topic:
                continue
            position = await consumer.position(tp)
            if position is not None:
                metrics.lag.labels(str(tp.partition)).set(max(0, consumer.highwater(tp) - position))
        metrics.table_keys.labels("users").set(_local_keys(users))
        metrics.table_keys.labels("sellers").set(_local_keys(sellers))

    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        metrics.rebalances.inc()

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]


def _local_keys(table: Any) -> int:
    try:
        return len(table.data._key_index)
    except AttributeError:
        return 0
