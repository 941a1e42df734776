"""Start one stream worker: create the topics, build the app, run until stopped."""

from __future__ import annotations

import faust

from stream.runtime.app import build_app
from stream.runtime.metrics import Metrics
from stream.runtime.settings import Settings
from stream.runtime.topics import (
    ALERT_TOPICS,
    BY_SELLER,
    DEAD_LETTERS,
    EVENTS,
    TABLES,
    changelog_topic,
    ensure_topics,
)


def prepare_topics(settings: Settings) -> int:
    """Create the contract's topics if missing; return the input topic's partition count."""
    names = [settings.topic(n) for n in (EVENTS, DEAD_LETTERS, BY_SELLER, *ALERT_TOPICS.values())]
    security = settings.kafka_client_config()
    counts = ensure_topics(settings.broker, names, settings.partitions, client_config=security)
    events = counts[settings.topic(EVENTS)]
    # Tables are co-partitioned with their source topics: the changelogs and the seller
    # topic must have exactly as many partitions as the input. Creating the changelogs here
    # avoids a start-up race in which an agent sees a changelog with no partitions yet.
    changelogs = [changelog_topic(settings.app_id, t) for t in TABLES]
    counts |= ensure_topics(
        settings.broker,
        changelogs,
        events,
        compacted=frozenset(changelogs),
        client_config=security,
    )
    for name in (settings.topic(BY_SELLER), *changelogs):
        if counts[name] != events:
            raise RuntimeError(
                f"topic {name} has {counts[name]} partitions but {settings.topic(EVENTS)} "
                f"has {events}; they must match"
            )
    return events


def run_worker(settings: Settings) -> None:
    partitions = prepare_topics(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(settings, Metrics(), partitions)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
