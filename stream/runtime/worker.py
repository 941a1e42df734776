"""Start one stream worker: check what it needs, create the topics, build the app, run until
stopped. What it cannot start without fails first, as one line (``stream.runtime.preflight``).
"""

from __future__ import annotations

import sys

import faust

from model.bundle import BundleError
from model.shipped import describe
from stream.core.cliutil import CommandError
from stream.core.privacy import PseudonymKeyError
from stream.runtime import gc_pauses
from stream.runtime.app import build_app
from stream.runtime.logs import logging_config
from stream.runtime.metrics import Metrics
from stream.runtime.preflight import (
    bundle_error,
    check_model_bundle,
    check_port_free,
    check_writable_dir,
    probe_broker,
)
from stream.runtime.settings import Settings
from stream.runtime.topics import (
    ALERT_TOPICS,
    BY_SELLER,
    DEAD_LETTERS,
    EVENTS,
    FEEDBACK,
    TABLES,
    changelog_topic,
    ensure_topics,
)


def prepare_topics(settings: Settings) -> int:
    """Create the contract's topics if missing; return the input topic's partition count."""
    contract = (EVENTS, DEAD_LETTERS, BY_SELLER, FEEDBACK, *ALERT_TOPICS.values())
    names = [settings.topic(n) for n in contract]
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


def preflight(settings: Settings) -> None:
    """The cheap checks first; the broker last, as it may take PROBE_TIMEOUT_S to answer."""
    check_writable_dir(settings.data_dir)
    check_port_free(settings.web_host, settings.web_port)
    check_model_bundle(settings.model)
    probe_broker(settings.broker, settings.kafka_client_config())
    # Last: generating a key warns, and a start that fails keeps its one-line reason.
    check_pseudonym_key(settings)


def check_pseudonym_key(settings: Settings) -> None:
    """Read the configured key, or generate the kept one (warning once), before any state."""
    try:
        settings.pseudonymiser()
    except PseudonymKeyError as exc:
        raise CommandError(str(exc)) from None


def run_worker(settings: Settings) -> None:
    level = logging_config(settings.log_level)  # an unknown level fails before anything runs
    preflight(settings)
    # After the checks: a failing start prints its one-line reason only.
    print(f"fraudstream worker: {describe(settings.model)}", file=sys.stderr, flush=True)
    partitions = prepare_topics(settings)
    metrics = Metrics()
    try:
        app = build_app(settings, metrics, partitions)
    except BundleError as exc:  # replaced between the check and the load
        raise bundle_error(exc) from None
    if settings.gc_settle:  # modules, Faust, the model: out of every later collection
        gc_pauses.settle()
    gc_pauses.watch(metrics.gc_pauses, metrics.gc_longest, metrics.gc_pause_cpu)
    # logfile: the stream whose isatty() Faust asks before drawing its tables with escapes.
    worker = faust.Worker(
        app, loglevel=settings.log_level, quiet=True, logfile=sys.stderr, logging_config=level
    )
    worker.execute_from_commandline()
