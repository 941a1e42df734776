"""``fraudstream alerts feedback``: one analyst verdict onto the ``feedback`` topic.

The record is validated here as the worker will validate it, so a mistake is reported at
once, naming the field, instead of ending up on the dead-letter topic."""

from __future__ import annotations

import argparse
import getpass
from typing import Any

import orjson

from stream.core.cliutil import CommandError, add_option
from stream.core.feedback import VERDICTS, parse_feedback
from stream.core.schema import Rejected
from stream.core.timeutil import now_ms

TOPIC = "feedback"


def send_feedback(args: argparse.Namespace) -> int:
    from confluent_kafka import Producer

    at = int(args.at) if args.at is not None and args.at.isdigit() else args.at
    record: dict[str, Any] = {
        "kind": args.kind,
        "verdict": args.verdict,
        "analyst": args.analyst or getpass.getuser(),
        "at": at if at is not None else now_ms(),
    }
    for name in ("alert_id", "event_id", "user_id", "seller_id", "feedback_id", "note"):
        if getattr(args, name) is not None:
            record[name] = getattr(args, name)
    try:
        fb = parse_feedback(orjson.dumps(record))
    except Rejected as exc:
        named = exc.message.startswith("field '")
        flag = "--" + exc.message.split("'")[1].replace("_", "-") + ": " if named else ""
        raise CommandError(f"{flag}{exc.message}") from None
    value = orjson.dumps({**fb.wire(), "feedback_id": fb.id})
    producer = Producer({"bootstrap.servers": args.broker, "message.timeout.ms": 15000})
    errors: list[str] = []
    producer.produce(
        args.topic_prefix + TOPIC,
        value,
        key=fb.subject_key(),
        on_delivery=lambda err, _msg: errors.append(str(err)) if err else None,
    )
    if producer.flush(20) or errors:
        raise CommandError(f"feedback not delivered to {args.broker}: {errors or 'timed out'}")
    print(value.decode())
    return 0


def register(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = actions.add_parser("feedback", help="write an analyst verdict to the feedback topic")
    add_option(p, "--broker", default="127.0.0.1:9092", help="Kafka bootstrap HOST:PORT")
    add_option(p, "--topic-prefix", default="", help="prefix for topic names")
    p.add_argument("--kind", required=True, choices=["fraud", "brushing", "churn"])
    p.add_argument("--verdict", required=True, choices=list(VERDICTS))
    p.add_argument("--alert-id", help="the alert judged")
    p.add_argument("--event-id", help="the event judged (labels for retraining need it)")
    p.add_argument("--user-id")
    p.add_argument("--seller-id")
    p.add_argument("--analyst", help="who judged (default: the login name)")
    p.add_argument("--at", help="when (RFC 3339 or epoch ms; default: now)")
    p.add_argument("--feedback-id", help="the case tool's id (default: derived from the content)")
    p.add_argument("--note", help="free text, up to 1,024 characters")
    p.set_defaults(func=send_feedback)
