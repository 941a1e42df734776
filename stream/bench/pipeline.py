"""``python -m stream.bench.pipeline``: the detection pipeline alone, in this process.

The worker's user side without Kafka, Faust, RocksDB or the seller side: the benchmark's
traffic (the drain's mix, ``stream.bench.measure.load_events``) parsed, pseudonymised,
applied to in-memory states and decided, with the rules or with a model, in micro-batches
of ``--batch`` records. What it measures is the detectors' own cost per event; the
stream benchmark's drain rate is that plus the runtime around it. Pin it:

    taskset -c 1 python -m stream.bench.pipeline [--events 60000] [--batch 400] [--runs 5]
        [--model DIR | --rules-only] [--backend onnx] [--out FILE]

Each run starts from empty states and a fresh model (its token store empty), runs the
first fifth of the events untimed, and times the rest. Prints one JSON object: medians
and [min, max] over the runs, and every run's figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from model.shipped import shipped_bundle
from stream.bench.measure import PARTITIONS, TRAFFIC_SEED, TRAFFIC_USERS, emit
from stream.bench.spread import spread_each
from stream.core.event_time import EventTimeGuard
from stream.core.privacy import Pseudonymiser
from stream.core.state import UserState
from stream.core.timeutil import now_ms
from stream.detect.churn import ChurnConfig
from stream.detect.model_churn import churn_for
from stream.detect.pipeline import MemoryStates, Record, UserPipeline
from stream.detect.processor import DetectorConfig
from stream.local.traffic import LiveTraffic

WARM_SHARE = 0.2  # the first fifth fills states and the token store, untimed


def records(n: int) -> list[Record]:
    """The drain's traffic as keyed records, partitioned by key as a producer would."""
    out: list[Record] = []
    for event in LiveTraffic(users=TRAFFIC_USERS, seed=TRAFFIC_SEED):
        if len(out) == n:
            break
        offset = len(out)
        key = event["user_id"].encode()
        out.append(Record(key, orjson.dumps(event), zlib.crc32(key) % PARTITIONS, offset))
    return out


def one_run(
    traffic: Sequence[Record], size: int, bundle: Path | None, backend: str
) -> dict[str, float]:
    """``traffic`` through a fresh pipeline in micro-batches of ``size`` records."""
    from model.sequence_model import SequenceModel

    model = SequenceModel(bundle, backend) if bundle is not None else None
    calls = {"windows": 0.0, "seconds": 0.0}
    if model is not None:

        def on_batch(windows: int, seconds: float) -> None:
            calls["windows"] += windows
            calls["seconds"] += seconds

        model.on_batch = on_batch
    pipeline = UserPipeline(
        DetectorConfig(),
        churn_for(model, ChurnConfig()),
        guard=EventTimeGuard(wall_clock=now_ms),
        pseudonyms=Pseudonymiser(os.urandom(32)),
    )
    states: MemoryStates[UserState] = MemoryStates(UserState)
    warm = int(len(traffic) * WARM_SHARE)
    for lo in range(0, warm, size):
        pipeline.run(traffic[lo : min(lo + size, warm)], states, model)
    calls["windows"] = calls["seconds"] = 0.0
    alerts = dead = 0
    started = time.perf_counter()
    for lo in range(warm, len(traffic), size):
        fx = pipeline.run(traffic[lo : lo + size], states, model)
        alerts += len(fx.alerts)
        dead += len(fx.dead_letters)
    seconds = time.perf_counter() - started
    timed = len(traffic) - warm
    return {
        "events": timed,
        "events_per_s": round(timed / seconds, 1),
        "us_per_event": round(seconds / timed * 1e6, 2),
        "alerts_per_1000_events": round(alerts / timed * 1000, 2),
        "dead_letters": dead,
        "model_windows_per_event": round(calls["windows"] / timed, 3),
        "model_us_per_event": round(calls["seconds"] / timed * 1e6, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stream.bench.pipeline", description=__doc__)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=400, help="records per micro-batch")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", type=Path, help="bundle (default: the shipped bundle)")
    parser.add_argument("--rules-only", action="store_true", help="the rules, no model")
    parser.add_argument("--backend", default="onnx", help="model backend (default onnx)")
    parser.add_argument("--out", type=Path, help="also write the JSON object to this file")
    args = parser.parse_args(argv)
    if args.events < 10 or args.batch < 1 or args.runs < 1:
        raise SystemExit("--events (at least 10), --batch and --runs must be positive")
    bundle = None if args.rules_only else (args.model or shipped_bundle())
    traffic = records(args.events)
    runs = [one_run(traffic, args.batch, bundle, args.backend) for _ in range(args.runs)]
    result: dict[str, Any] = {
        "command": " ".join(["python -m stream.bench.pipeline", *(argv or sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": sorted(os.sched_getaffinity(0)),
        "model": None if bundle is None else str(bundle),
        "backend": None if bundle is None else args.backend,
        "batch": args.batch,
        **spread_each(runs),
        "raw": runs,
    }
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
