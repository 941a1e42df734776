"""The bare consumer loop in a process of its own, so that it can be pinned like the worker.

``python -m stream.bench.loop BROKER TOPIC N`` drains N events and prints
``{"events": N, "seconds": S}``.
"""

from __future__ import annotations

import sys

import orjson

from stream.bench.measure import consumer_loop


def main(argv: list[str]) -> int:
    broker, topic, n = argv
    result = consumer_loop(broker, topic, int(n))
    sys.stdout.write(orjson.dumps({k: result[k] for k in ("events", "seconds")}).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
