"""The Faust application: topics, RocksDB tables, agents, timers and web views.

Processing is at-least-once: Faust commits offsets only after every output of the handled
events is delivered and their states are written (``stream.runtime.sinks``). A redelivered
event finds its id already in the user's window and changes nothing, and alert ids are
deterministic, so consumers can de-duplicate by ``alert_id`` in the rare case the worker
dies between an alert's delivery and the state write that records it.

What the agents do with a micro-batch is ``stream.detect.pipeline``'s, the same code the
backtest runs (``stream.runtime.agents``).
"""

from __future__ import annotations

from typing import Any

import faust

from stream.core.state import SellerState, UserState
from stream.runtime import gc_pauses
from stream.runtime.agents import EXIT_CRASH, SellerSide, UserSide, exit_on_crash
from stream.runtime.driver import confluent_consumer, seek_guard, versions
from stream.runtime.driver.bulk_take import take_batches
from stream.runtime.driver.commit_hook import before_commit
from stream.runtime.driver.direct_feed import add_feed, take_direct
from stream.runtime.driver.tables import CoalescedTable
from stream.runtime.feedback_keeper import FeedbackKeeper
from stream.runtime.metrics import Metrics
from stream.runtime.model_slot import ModelSlot
from stream.runtime.security import faust_app_kwargs
from stream.runtime.settings import Settings
from stream.runtime.sinks import Sinks
from stream.runtime.topics import BY_SELLER, DEAD_LETTERS, EVENTS, FEEDBACK
from stream.runtime.views import add_monitoring, add_views

__all__ = ["EXIT_CRASH", "build_app"]


def build_app(settings: Settings, metrics: Metrics, partitions: int) -> faust.App:
    """Create the app; ``partitions`` is the input topic's actual partition count."""
    versions.check()
    app = _faust_app(settings, partitions)
    if settings.consumer_driver == "confluent":
        confluent_consumer.install(app, settings.kafka_client_config())
    else:
        seek_guard.install(app)
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    events = app.topic(settings.topic(EVENTS), partitions=partitions, **raw)
    by_seller = app.topic(settings.topic(BY_SELLER), partitions=partitions, **raw)
    # bytes in and out: state values are encoded by stream.core.state, keys are ids.
    users_table = app.Table("users", partitions=partitions, key_type=bytes, value_type=bytes)
    sellers_table = app.Table("sellers", partitions=partitions, key_type=bytes, value_type=bytes)
    users = CoalescedTable(users_table, UserState.decode, settings.state_cache_size)
    sellers = CoalescedTable(sellers_table, SellerState.decode, settings.state_cache_size)
    slot = ModelSlot(settings, metrics)
    sinks = Sinks(settings, metrics, partitions)
    user_side = UserSide(settings, metrics, slot, sinks, users)
    seller_side = SellerSide(
        settings, metrics, slot, sinks, sellers, partitions, lambda m: app.consumer.ack(m)
    )
    batch_max, batch_wait = settings.batch_max, settings.batch_wait_ms / 1000.0
    feedback = app.topic(settings.topic(FEEDBACK), **raw)
    keeper = FeedbackKeeper(settings.data_dir, metrics, sinks.out, settings.topic(DEAD_LETTERS))

    # With librdkafka fetching, both agents' messages skip Faust's conductor and streams
    # (direct_feed).
    direct = settings.consumer_driver == "confluent"
    maxsize = app.conf.stream_buffer_maxsize
    feed = add_feed(app, events.get_topic_name(), maxsize) if direct else None
    seller_feed = add_feed(app, by_seller.get_topic_name(), maxsize) if direct else None

    # The survivors' freeze, once the first micro-batch has started it; compacted at
    # every rebalance (on_assigned).
    rolling: list[gc_pauses.RollingFreeze] = []

    @app.agent(events, name="fraudstream.events")
    async def user_agent(stream: Any) -> None:
        first = settings.gc_settle
        batches = (
            take_batches(stream, batch_max, batch_wait)
            if feed is None
            else take_direct(stream, feed, batch_max, batch_wait)
        )
        async for batch in batches:
            user_side.handle(batch)
            if first:
                gc_pauses.freeze_started()
                if settings.gc_freeze_survivors:
                    rolling[:] = [gc_pauses.freeze_survivors(metrics.gc_compactions.inc)]
                first = False
            elif rolling:
                rolling[0].compact_if_due()

    @app.agent(by_seller, name="fraudstream.sellers")
    async def seller_agent(stream: Any) -> None:
        batches = (
            take_batches(stream, batch_max, batch_wait)
            if seller_feed is None
            else take_direct(stream, seller_feed, batch_max, batch_wait)
        )
        async for batch in batches:
            seller_side.handle(batch)

    @app.agent(feedback, name="fraudstream.feedback")
    async def feedback_agent(stream: Any) -> None:
        async for event in stream.events():  # a few verdicts a minute: one at a time
            with exit_on_crash():
                msg = event.message
                keeper.handle(event.key, event.value, msg.topic, msg.partition, msg.offset)

    @app.timer(0.05)  # type: ignore[untyped-decorator]
    async def finish_waiting() -> None:
        """Watermarks not yet announced, seller records whose wait is over, and batches
        whose alerts were delivered, while no new batch comes in."""
        with exit_on_crash():
            sinks.announce_watermarks()
            seller_side.release_due()
            if len(sinks.behind):
                sinks.behind.complete_ready()

    async def flush_before_commit() -> None:
        with exit_on_crash():
            keeper.flush()
            await sinks.flush([users, sellers])

    before_commit(app, flush_before_commit)

    if settings.model is not None and settings.model_reload_seconds > 0:
        # Between micro-batches (one event loop): no batch sees two models.
        app.timer(settings.model_reload_seconds)(slot.reload_if_changed)
    if settings.model is not None:
        app.timer(settings.drift_seconds)(slot.export_drift)

    async def on_revoked(sender: Any, revoked: Any, *args: Any, **kwargs: Any) -> None:
        users.forget()
        sellers.forget()
        seller_topic, events_topic = by_seller.get_topic_name(), events.get_topic_name()
        seller_side.forget({tp.partition for tp in revoked if tp.topic == seller_topic})
        user_side.forget({tp.partition for tp in revoked if tp.topic == events_topic})

    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        users.forget()
        sellers.forget()
        for hook in rolling:
            hook.request_compaction()

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]
    add_views(app, metrics, users, sellers, sinks.recent)
    add_monitoring(app, metrics, settings.topic(EVENTS), users_table, sellers_table)
    return app


def _faust_app(settings: Settings, partitions: int) -> faust.App:
    return faust.App(
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
