#!/usr/bin/env python3
"""The pass-through Faust agent with each consumer driver, on the same topic, in turn.

    python build/passthrough_drivers.py BROKER [--events N] [--pairs P]

Loads N events (the benchmark's traffic) into a fresh 8-partition topic, then drains it P
times with ``python -m stream.runtime.passthrough BROKER TOPIC N DRIVER`` for each driver,
alternating, and prints one JSON line per drain: the driver and its events/s. Unpinned: a
quick comparison, not the benchmark (``python -m stream.bench --drivers ...``).
"""

from __future__ import annotations

import argparse
import sys
import uuid

import orjson

from stream.bench.measure import load_events, passthrough_agent
from stream.bench.suite import DRIVERS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python build/passthrough_drivers.py")
    parser.add_argument("broker", help="bootstrap HOST:PORT")
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args(argv)
    topic = f"passthrough-{uuid.uuid4().hex[:8]}.events"
    load_events(args.broker, topic, args.events)
    for _ in range(args.pairs):
        for driver in DRIVERS:
            result = passthrough_agent(args.broker, topic, args.events, driver=driver)
            line = {"driver": driver, "events_per_s": round(result["events_per_s"])}
            print(orjson.dumps(line).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
