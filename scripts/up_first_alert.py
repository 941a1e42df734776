#!/usr/bin/env python3
"""Seconds from ``fraudstream up`` to its broker, its worker and its first alert of each kind,
on a fresh data directory.

    python scripts/up_first_alert.py [--runs 3] [--seconds 120] [-- UP_FLAGS...]

Starts ``fraudstream up`` (broker, worker, traffic) with free ports, reads the alert topics
from the broker it starts, and prints one JSON line per run and the medians. The clock
starts when the command is launched, so broker start-up and model loading count.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer

from stream.local.broker import free_port, port_free
from stream.runtime.topics import ALERT_TOPICS


def one_run(seconds: float, extra: list[str]) -> dict[str, float | None]:
    port, web = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="fraudstream-up-") as data:
        cmd = [sys.executable, "-m", "stream.cli", "up", "--port", str(port),
               "--web-port", str(web), "--data-dir", data, *extra]  # fmt: skip
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        first: dict[str, float | None] = dict.fromkeys(["broker", "worker", *ALERT_TOPICS])
        consumer: Consumer | None = None
        try:
            while time.monotonic() - started < seconds and None in first.values():
                if first["worker"] is None and not port_free("127.0.0.1", web):
                    first["worker"] = round(time.monotonic() - started, 1)  # serving /metrics
                if consumer is None:
                    if port_free("127.0.0.1", port):
                        time.sleep(0.2)
                        continue
                    first["broker"] = round(time.monotonic() - started, 1)
                    consumer = _consumer(port)
                msg = consumer.poll(0.2)
                value = None if msg is None or msg.error() else msg.value()
                if value is None:
                    continue
                kind = json.loads(value)["kind"]
                if first.get(kind) is None:
                    first[kind] = round(time.monotonic() - started, 1)
        finally:
            if consumer is not None:
                consumer.close()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
            stop = ["broker", "stop", "--data-dir", str(Path(data) / "kafka")]
            subprocess.run([sys.executable, "-m", "stream.cli", *stop], capture_output=True)
        return first


def _consumer(port: int) -> Consumer:
    """A consumer of the alert topics from their start (they appear once the worker runs)."""
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "group.id": "first-alert",
                         "auto.offset.reset": "earliest",
                         "topic.metadata.refresh.interval.ms": 1000})  # fmt: skip
    consumer.subscribe(list(ALERT_TOPICS.values()))
    return consumer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("up_flags", nargs="*", help="after --: flags for fraudstream up")
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        runs.append(one_run(args.seconds, args.up_flags))
        print(json.dumps(runs[-1]), flush=True)
    medians: dict[str, float | None] = {}
    for kind in runs[0]:
        seen = [t for r in runs if (t := r[kind]) is not None]
        medians[kind] = statistics.median(seen) if seen else None
    print(json.dumps({"median_seconds": medians, "runs": len(runs)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
