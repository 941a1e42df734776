"""Errors as policy: the one place that decides dead-letter, retry or crash.

- Bad input (``Rejected``) goes to the dead-letter topic and the worker moves on.
- An unexpected error while handling one valid event also goes to the dead-letter topic,
  with the traceback's last line, so that one poisonous event cannot stall a partition;
  it is logged loudly and counted, never dropped silently.
- Failures to talk to Kafka propagate: the agent crashes, Faust restarts it, and
  at-least-once delivery replays from the last committed offset.
"""

from __future__ import annotations

import logging
from enum import Enum

from stream.core.schema import Rejected

log = logging.getLogger("fraudstream")


class Action(Enum):
    DEAD_LETTER = "dead_letter"
    CRASH = "crash"


KAFKA_ERROR_MODULES = ("aiokafka", "kafka", "confluent_kafka", "faust.exceptions")


def decide(exc: BaseException) -> Action:
    if isinstance(exc, Rejected):
        return Action.DEAD_LETTER
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return Action.CRASH
    module = type(exc).__module__ or ""
    if module.startswith(KAFKA_ERROR_MODULES):
        return Action.CRASH
    if isinstance(exc, Exception):
        log.exception("processing failed; the message goes to the dead-letter topic")
        return Action.DEAD_LETTER
    return Action.CRASH  # KeyboardInterrupt, CancelledError, SystemExit


def as_rejection(exc: BaseException) -> Rejected:
    if isinstance(exc, Rejected):
        return exc
    return Rejected("processing_error", f"processing: {type(exc).__name__}: {exc}")
