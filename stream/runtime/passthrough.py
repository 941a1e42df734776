"""A pass-through Faust agent: the baseline for what Faust itself costs per event.

``python -m stream.runtime.passthrough BROKER TOPIC N [DRIVER]`` consumes N messages with one
agent that does nothing but count, prints ``{"events": N, "seconds": S}`` and exits. DRIVER
is the consumer driver: ``aiokafka`` (Faust's, the default) or ``confluent`` (records
fetched by librdkafka, ``stream.runtime.driver.confluent_consumer``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid

import faust
import orjson

from stream.runtime.driver import confluent_consumer


def main(broker: str, topic_name: str, expect: int, driver: str = "aiokafka") -> None:
    app = faust.App(
        f"passthrough-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{broker}",
        datadir=tempfile.mkdtemp(prefix="passthrough-"),
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
    )
    if driver == "confluent":
        confluent_consumer.install(app)
    elif driver != "aiokafka":
        raise SystemExit(f"driver: 'aiokafka' or 'confluent', not {driver!r}")
    topic = app.topic(topic_name, key_serializer="raw", value_serializer="raw")
    seen = {"n": 0, "first": 0.0}

    @app.agent(topic)
    async def count(stream):  # type: ignore[no-untyped-def]
        async for _ in stream:
            if seen["n"] == 0:
                seen["first"] = time.perf_counter()
            seen["n"] += 1
            if seen["n"] >= expect:
                elapsed = time.perf_counter() - seen["first"]
                # Faust redirects print() into its log; write to the real stdout.
                os.write(1, orjson.dumps({"events": seen["n"], "seconds": elapsed}) + b"\n")
                os._exit(0)  # the measurement is done; skip Faust's slow shutdown

    worker = faust.Worker(app, loglevel=os.environ.get("PASSTHROUGH_LOG", "error"), quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
