"""``fraudstream alerts tail``: follow alert topics and print one alert per line: as JSON,
or (``--pretty``, the default on a terminal) as a readable, coloured summary line.

It checks first that a broker answers and that the alert topics exist, so that a typo in
--broker or --topic-prefix is one line on stderr instead of a client retrying forever."""

from __future__ import annotations

import sys
import uuid

import orjson
from confluent_kafka import Consumer, KafkaError

from stream.core.cliutil import CommandError
from stream.local.pretty import pretty_line
from stream.runtime.preflight import missing_topics, probe_broker
from stream.runtime.settings import Settings
from stream.runtime.topics import ALERT_TOPICS


def tail_alerts(
    broker: str,
    kind: str | None,
    from_beginning: bool,
    prefix: str = "",
    max_messages: int | None = None,
    pretty: bool | None = None,
) -> int:
    """Print alerts until interrupted or ``max_messages``; ``pretty`` None means readable
    lines on a terminal and JSON elsewhere (pipes and files get what tools parse)."""
    pretty = sys.stdout.isatty() if pretty is None else pretty
    colour = pretty and sys.stdout.isatty()
    topics = [prefix + t for k, t in ALERT_TOPICS.items() if kind is None or k == kind]
    # Security (SASL, TLS) from the FRAUDSTREAM_* environment, as the worker reads it.
    security = Settings().kafka_client_config()
    _require_topics(broker, topics, prefix, security)
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"fraudstream-tail-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": False,
            **security,
        }
    )
    consumer.subscribe(topics)
    seen = 0
    try:
        while max_messages is None or seen < max_messages:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    print(f"fraudstream: kafka: {err}", file=sys.stderr)
                continue
            value = msg.value() or b""
            sys.stdout.write(render_alert(value, pretty, colour) + "\n")
            sys.stdout.flush()
            seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return seen


def render_alert(value: bytes, pretty: bool, colour: bool) -> str:
    text = value.decode("utf-8", "replace")
    if not pretty:
        return text
    try:
        alert = orjson.loads(value)
    except orjson.JSONDecodeError:
        return text  # not ours to judge: shown as it came
    return pretty_line(alert, colour) if isinstance(alert, dict) else text


def _require_topics(broker: str, topics: list[str], prefix: str, security: dict[str, str]) -> None:
    """A missing alert topic would be reported on every poll, forever."""
    missing = missing_topics(probe_broker(broker, security), topics)
    if missing:
        worker = f"fraudstream worker --broker {broker}" + (
            f" --topic-prefix {prefix}" if prefix else ""
        )
        what = "topic {} does not" if len(missing) == 1 else "topics {} do not"
        raise CommandError(
            f"alert {what.format(', '.join(missing))} exist on {broker}: a worker creates them "
            f"when it starts (`{worker}`); check --topic-prefix if the worker uses one"
        )
