"""Start one stream worker: create the topics, build the app, run until stopped."""

from __future__ import annotations

import faust

from stream.app import build_app
from stream.metrics import Metrics
from stream.settings import Settings
from stream.topics import ALERT_TOPICS, BY_SELLER, DEAD_LETTERS, EVENTS, ensure_topics


def prepare_topics(settings: Settings) -> int:
    """Create the contract's topics if missing; return the input topic's partition count."""
    names = [settings.topic(n) for n in (EVENTS, DEAD_LETTERS, BY_SELLER, *ALERT_TOPICS.values())]
    counts = ensure_topics(settings.broker, names, settings.partitions)
    events, by_seller = counts[settings.topic(EVENTS)], counts[settings.topic(BY_SELLER)]
    if events != by_seller:
        raise RuntimeError(
            f"topic {settings.topic(BY_SELLER)} has {by_seller} partitions but "
            f"{settings.topic(EVENTS)} has {events}; they must match"
        )
    return events


def run_worker(settings: Settings) -> None:
    partitions = prepare_topics(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(settings, Metrics(), partitions)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
