"""Stream benchmark against the real broker, with baselines measured in the same run.

1. Throughput: N events are loaded into a fresh topic, then drained by (a) a plain
   confluent-kafka consumer loop that decodes JSON, (b) a pass-through Faust agent, and
   (c) the fraudstream worker; each reports events/s from its first to its last message.
2. Latency: with the worker running, events flow in at a fixed rate with card-testing
   bursts; event-to-alert latency is the alert's append time minus its triggering event's
   append time (both Kafka timestamps taken on this machine's clock).

With ``--model DIR`` the worker runs twice, with the rules alone and with the bundle
scoring decision events in micro-batches; both against the same baselines.

Run: ``python -m stream.bench [--broker B] [--events N] [--rate R] [--seconds S]
[--model DIR [--backend B]]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer
from prometheus_client.parser import text_string_to_metric_families

from stream.local import broker as local_broker
from stream.local.traffic import LiveTraffic
from stream.local.workerproc import WorkerProcess
from stream.runtime.topics import ensure_topics

PARTITIONS = 8
# The latency run's producer batches for up to 5 ms, as production producers do: one
# request per event would load the broker (on the same 2 cores) more than the worker.
# Send times are taken before batching, so the figures include that wait.
LATENCY_LINGER_MS = 5.0


def _producer(bootstrap: str, linger_ms: float = 20) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "linger.ms": linger_ms,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 500000,
        }
    )


def load_events(bootstrap: str, topic: str, n: int) -> int:
    """Produce ``n`` events of the live traffic mix; return the payload bytes."""
    ensure_topics(bootstrap, [topic], PARTITIONS)
    producer = _producer(bootstrap)
    size = 0
    for i, event in enumerate(LiveTraffic(users=5000, seed=11)):
        if i >= n:
            break
        value = orjson.dumps(event)
        size += len(value)
        while True:
            try:
                producer.produce(topic, key=event["user_id"].encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)
    return size


def _reader(bootstrap: str, topic: str) -> Consumer:
    """A consumer of ``topic`` from its start, in a group of its own."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    return consumer


def consumer_loop(bootstrap: str, topic: str, n: int) -> dict[str, float]:
    consumer = _reader(bootstrap, topic)
    seen, first = 0, 0.0
    while seen < n:
        for msg in consumer.consume(1000, 1.0):
            if msg.error() is None:
                if seen == 0:
                    first = time.perf_counter()
                orjson.loads(msg.value() or b"null")
                seen += 1
    elapsed = time.perf_counter() - first
    consumer.close()
    return {"events": seen, "seconds": elapsed, "events_per_s": seen / elapsed}


def passthrough_agent(bootstrap: str, topic: str, n: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "stream.runtime.passthrough", bootstrap, topic, str(n)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True)
    # The JSON line is last; Faust may put terminal control codes before it.
    result: dict[str, float] = orjson.loads(done.stdout[done.stdout.rindex("{") :].strip())
    result["events_per_s"] = result["events"] / result["seconds"]
    return result


def worker_drain(
    bootstrap: str,
    work: Path,
    n: int,
    model: Path | None = None,
    backend: str | None = None,
    **options: Any,
) -> tuple[WorkerProcess, dict[str, float]]:
    worker = WorkerProcess(bootstrap, work, partitions=PARTITIONS, log_level="warn",
                           model=model, backend=backend, **options)  # fmt: skip
    worker.start()
    load_events(bootstrap, worker.topic("events"), n)
    first, count = 0.0, 0.0
    gc_before: GcBuckets = {}
    while count < n:
        count = worker.metric("fraudstream_events_consumed_total")
        if count and not first:
            first = time.perf_counter()
            gc_before = gc_buckets(worker)  # partitions assigned, events flowing
        time.sleep(0.05)
    elapsed = time.perf_counter() - first
    # Let the seller side and the changelog catch up before anything else is timed.
    settle(worker)
    drained = {"events": count, "seconds": elapsed, "events_per_s": count / elapsed}
    pauses = gc_during(gc_before, gc_buckets(worker))
    return worker, drained | {f"gc_{k}": v for k, v in pauses.items()}


def settle(worker: WorkerProcess, quiet_s: float = 3.0) -> None:
    """Wait until neither side of the worker has moved for ``quiet_s``."""
    last, since = -1.0, time.monotonic()
    while time.monotonic() - since < quiet_s:
        now = worker.metric("fraudstream_events_consumed_total")
        now += worker.metric("fraudstream_seller_records_total")
        if now != last:
            last, since = now, time.monotonic()
        time.sleep(0.5)


def latency(bootstrap: str, worker: WorkerProcess, rate: float, seconds: float) -> dict[str, Any]:
    """Produce at ``rate`` for ``seconds``; the traffic carries card-testing and takeover
    patterns, whose alerts are timed against their triggering events."""
    producer = _producer(bootstrap, linger_ms=LATENCY_LINGER_MS)
    sent_at: dict[str, float] = {}
    consumed_before = worker.metric("fraudstream_events_consumed_total")
    total = int(rate * seconds)
    start = time.perf_counter()
    for i, event in enumerate(LiveTraffic(users=5000, seed=12)):
        if i >= total:
            break
        sent_at[event["event_id"]] = time.time()
        producer.produce(
            worker.topic("events"), key=event["user_id"].encode(), value=orjson.dumps(event)
        )
        producer.poll(0)
        delay = start + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    producer.flush(30)
    achieved = total / (time.perf_counter() - start)
    worker.wait_metric("fraudstream_events_consumed_total", consumed_before + total, 300)
    lat = [
        msg.timestamp()[1] / 1000.0 - sent_at[alert["event_id"]]
        for msg in _read_all(bootstrap, worker.topic("alerts.fraud"))
        if (alert := orjson.loads(msg.value() or b"{}")).get("event_id") in sent_at
    ]
    return {
        "offered_events_per_s": round(achieved, 1),
        "alerts": len(lat),
        **_percentiles(lat),
        **model_calls(worker),
    }


def model_calls(worker: WorkerProcess) -> dict[str, float]:
    """Mean decisions per model call and mean call time, from the worker's own metrics."""
    calls = worker.metric("fraudstream_model_batch_size_count")
    if not calls:
        return {}
    return {
        "model_calls": calls,
        "mean_model_batch": round(worker.metric("fraudstream_model_batch_size_sum") / calls, 1),
        "mean_model_call_ms": round(
            1000 * worker.metric("fraudstream_model_batch_latency_seconds_sum") / calls, 3
        ),
    }


GcBuckets = dict[tuple[str, float], float]  # (generation, upper bound s) -> cumulative count


def gc_buckets(worker: WorkerProcess) -> GcBuckets:
    """The worker's ``fraudstream_gc_pause_seconds`` buckets as they stand."""
    out: GcBuckets = {}
    for family in text_string_to_metric_families(str(worker.get("/metrics")[1])):
        for sample in family.samples:
            if sample.name == "fraudstream_gc_pause_seconds_bucket":
                out[sample.labels["generation"], float(sample.labels["le"])] = sample.value
    return out


def gc_during(before: GcBuckets, after: GcBuckets) -> dict[str, float]:
    """Collections between two snapshots: how many, how many full, how many over 10 ms, and
    the bucket bound the longest stayed under (inf: over the last bucket). Explicit
    collections at start-up and rebalances (Faust's RocksDB store makes them) stay out."""
    diff = {k: v - before.get(k, 0.0) for k, v in after.items()}
    total = sum(v for (_, le), v in diff.items() if le == math.inf)
    full = sum(v for (gen, le), v in diff.items() if le == math.inf and gen == "2")
    under_10ms = sum(v for (_, le), v in diff.items() if le == 0.01)
    bounds = sorted({le for _, le in diff})
    longest = next(
        (le for le in bounds if sum(v for (_, b), v in diff.items() if b == le) >= total),
        math.inf,
    )
    return {
        "collections": total,
        "full_collections": full,
        "over_10ms": total - under_10ms,
        "longest_under_ms": 1000 * longest if total else 0.0,
    }


def gc_compare(
    bootstrap: str, events: int, runs: int, cpus: str | None, model: Path | None
) -> dict[str, Any]:
    """The worker draining ``events`` with start-up objects frozen and raised thresholds
    (``FRAUDSTREAM_GC_SETTLE``, the default) and without, alternating, ``runs`` times each:
    drain rate and garbage-collection pauses, medians and ranges."""
    rows: dict[str, list[dict[str, float]]] = {"settled": [], "default_gc": []}
    with tempfile.TemporaryDirectory(prefix="fraudstream-bench-gc-") as tmp:
        for i in range(runs):
            for name, settle_gc in (("settled", "true"), ("default_gc", "false")):
                env = {"FRAUDSTREAM_GC_SETTLE": settle_gc}
                work = Path(tmp) / f"{name}-{i}"
                worker, drained = worker_drain(bootstrap, work, events, model, env=env, cpus=cpus)
                try:
                    rows[name].append({k: v for k, v in drained.items() if k != "events"})
                finally:
                    worker.stop()
    return {name: _spread(values) for name, values in rows.items()} | {"runs": runs}


def _spread(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Median and range of each figure over runs."""
    return {
        key: {
            "median": round(statistics.median(r[key] for r in rows), 2),
            "min": round(min(r[key] for r in rows), 2),
            "max": round(max(r[key] for r in rows), 2),
        }
        for key in rows[0]
    }


def _read_all(bootstrap: str, topic: str) -> list[Any]:
    consumer = _reader(bootstrap, topic)
    out: list[Any] = []
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < 3.0:
        batch = [m for m in consumer.consume(1000, 0.5) if m.error() is None]
        if batch:
            out += batch
            idle_since = time.monotonic()
    consumer.close()
    return out


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": pick(1.0)}


def run(
    bootstrap: str,
    events: int,
    rate: float,
    seconds: float,
    model: Path | None = None,
    backend: str | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fraudstream-bench-") as tmp:
        base = f"bench-{uuid.uuid4().hex[:8]}.events"
        size = load_events(bootstrap, base, events)
        loop = consumer_loop(bootstrap, base, events)
        passthrough = passthrough_agent(bootstrap, base, events)
        result: dict[str, Any] = {
            "events": events,
            "mean_event_bytes": round(size / events, 1),
            "partitions": PARTITIONS,
            "consumer_loop": _rounded(loop),
            "faust_passthrough": _rounded(passthrough),
        }
        runs: list[tuple[str, Path | None]] = [("worker_rules", None)]
        if model is not None:
            runs.append(("worker_model", model))
        for name, bundle in runs:
            worker, drained = worker_drain(bootstrap, Path(tmp) / name, events, bundle, backend)
            try:
                result[name] = {**_rounded(drained), **model_calls(worker)}
                result[f"{name}_vs_passthrough"] = round(
                    drained["events_per_s"] / passthrough["events_per_s"], 3
                )
                result[f"{name}_vs_consumer_loop"] = round(
                    drained["events_per_s"] / loop["events_per_s"], 3
                )
                result[f"{name}_latency"] = latency(bootstrap, worker, rate, seconds)
            finally:
                worker.stop()
    return result


def _rounded(result: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in result.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stream.bench", description=__doc__)
    parser.add_argument("--broker", help="bootstrap HOST:PORT (default: start a local broker)")
    parser.add_argument("--events", type=int, default=50_000, help="events per throughput run")
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s in the latency run")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    parser.add_argument("--model", type=Path, help="also run the worker with this bundle")
    parser.add_argument("--backend", help="model backend for --model (default auto)")
    parser.add_argument(
        "--gc-compare",
        type=int,
        metavar="RUNS",
        help="instead: drain rate and GC pauses with and without GC settling, RUNS times each",
    )
    parser.add_argument("--cpus", help="with --gc-compare: pin the worker (taskset -c CPUS)")
    args = parser.parse_args(argv)

    def bench(bootstrap: str) -> dict[str, Any]:
        if args.gc_compare:
            return gc_compare(bootstrap, args.events, args.gc_compare, args.cpus, args.model)
        return run(bootstrap, args.events, args.rate, args.seconds, args.model, args.backend)

    if args.broker:
        result = bench(args.broker)
    else:
        with tempfile.TemporaryDirectory(prefix="fraudstream-bench-kafka-") as tmp:
            cfg = local_broker.BrokerConfig(data_dir=Path(tmp), port=local_broker.free_port())
            local_broker.start(cfg)
            try:
                result = bench(cfg.bootstrap)
            finally:
                local_broker.stop(cfg.data_dir)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
