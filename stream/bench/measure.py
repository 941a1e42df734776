"""The stream benchmark's measurements against the real broker, one at a time.

- Drain rate: N events are loaded into a fresh topic, then drained by a plain
  confluent-kafka consumer loop that decodes JSON (``stream.bench.loop``), by a pass-through
  Faust agent (``stream.runtime.passthrough``) or by the fraudstream worker; each reports
  events/s from its first to its last message. Each runs in a process of its own, so that
  it can be pinned to a core (``taskset -c``).
- Latency: with the worker running, events flow in at a fixed rate with card-testing
  bursts; event-to-alert latency is the alert's append time minus its triggering event's
  send time (both on this machine's clock), and the lag (sent minus consumed) is sampled
  half-way and at the end of the sending.
- Garbage-collection pauses: the worker's ``fraudstream_gc_pause_seconds`` buckets before
  and after a stretch of work.

``stream.bench.suite`` repeats them; ``python -m stream.bench`` runs it.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer
from prometheus_client.parser import text_string_to_metric_families

from stream.local.traffic import LiveTraffic
from stream.local.workerproc import WorkerProcess
from stream.runtime.topics import ensure_topics

PARTITIONS = 8
# The latency run's producer batches for up to 5 ms, as production producers do: one
# request per event would load the broker (on the same 2 cores) more than the worker.
# Send times are taken before batching, so the figures include that wait.
LATENCY_LINGER_MS = 5.0
# The drain's traffic: LiveTraffic of this many shoppers from this seed.
TRAFFIC_USERS, TRAFFIC_SEED = 5000, 11


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
    for i, event in enumerate(LiveTraffic(users=TRAFFIC_USERS, seed=TRAFFIC_SEED)):
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
    """Drain ``n`` events of ``topic`` with confluent-kafka's batch ``consume``, decoding
    each value: what Kafka and a JSON parser allow in one Python process."""
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


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    return cmd if cpus is None else ["taskset", "-c", cpus, *cmd]


def _json_tail(stdout: str) -> dict[str, float]:
    # The JSON line is last; Faust may put terminal control codes before it.
    result: dict[str, float] = orjson.loads(stdout[stdout.rindex("{") :].strip())
    result["events_per_s"] = result["events"] / result["seconds"]
    return result


def consumer_loop_process(
    bootstrap: str, topic: str, n: int, cpus: str | None = None
) -> dict[str, float]:
    """``consumer_loop`` in a process of its own, pinned to ``cpus`` as the worker is."""
    cmd = pinned([sys.executable, "-m", "stream.bench.loop", bootstrap, topic, str(n)], cpus)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True)
    return _json_tail(done.stdout)


def passthrough_agent(
    bootstrap: str, topic: str, n: int, cpus: str | None = None, driver: str = "aiokafka"
) -> dict[str, float]:
    cmd = [sys.executable, "-m", "stream.runtime.passthrough", bootstrap, topic, str(n), driver]
    done = subprocess.run(
        pinned(cmd, cpus), capture_output=True, text=True, timeout=900, check=True
    )
    return _json_tail(done.stdout)


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
    before: GcSnapshot = ({}, {})
    while count < n:
        count = worker.metric("fraudstream_events_consumed_total")
        if count and not first:
            first = time.perf_counter()
            before = gc_snapshot(worker)  # partitions assigned, events flowing
        time.sleep(0.05)
    elapsed = time.perf_counter() - first
    # Let the seller side and the changelog catch up before anything else is timed.
    settle(worker)
    drained = {"events": count, "seconds": elapsed, "events_per_s": count / elapsed}
    pauses = gc_figures(before, gc_snapshot(worker))
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


def latency(
    bootstrap: str, worker: WorkerProcess, rate: float, seconds: float, seed: int = 12
) -> dict[str, Any]:
    """Produce at ``rate`` for ``seconds``; the traffic carries card-testing and takeover
    patterns, whose alerts are timed against their triggering events. The lag (events sent
    minus events the worker consumed) is sampled half-way and when the last is sent: it
    grew if it rose by more than half a second of traffic in the second half."""
    producer = _producer(bootstrap, linger_ms=LATENCY_LINGER_MS)
    sent_at: dict[str, float] = {}
    consumed_before = worker.metric("fraudstream_events_consumed_total")
    total = int(rate * seconds)
    lag_mid = 0.0
    start = time.perf_counter()
    for i, event in enumerate(LiveTraffic(users=5000, seed=seed)):
        if i >= total:
            break
        sent_at[event["event_id"]] = time.time()
        producer.produce(
            worker.topic("events"), key=event["user_id"].encode(), value=orjson.dumps(event)
        )
        producer.poll(0)
        if i + 1 == total // 2:
            lag_mid = i + 1 - (worker.metric("fraudstream_events_consumed_total") - consumed_before)
        delay = start + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    lag_end = total - (worker.metric("fraudstream_events_consumed_total") - consumed_before)
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
        "lag_mid": lag_mid,
        "lag_end": lag_end,
        "lag_grew": lag_grew(lag_mid, lag_end, rate),
        **model_calls(worker),
    }


def emit(result: dict[str, Any], out: Path | None) -> None:
    """Print a benchmark's JSON object, and write it to ``out`` when given."""
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    print(text)


def lag_grew(lag_mid: float, lag_end: float, rate: float) -> bool:
    """More than half a second of traffic added to the lag in the second half of a run:
    the worker is falling behind. (Less is the noise of micro-batches and of sampling.)"""
    return lag_end - lag_mid > 0.5 * rate


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
GC_WALL, GC_CPU = "fraudstream_gc_pause_seconds", "fraudstream_gc_pause_cpu_seconds"


def gc_buckets(worker: WorkerProcess, histogram: str = GC_WALL) -> GcBuckets:
    """The worker's GC pause buckets (wall clock, or with ``GC_CPU`` the CPU time; empty
    where the worker has no such histogram) as they stand."""
    out: GcBuckets = {}
    for family in text_string_to_metric_families(str(worker.get("/metrics")[1])):
        for sample in family.samples:
            if sample.name == f"{histogram}_bucket":
                out[sample.labels["generation"], float(sample.labels["le"])] = sample.value
    return out


GcSnapshot = tuple[GcBuckets, GcBuckets]  # wall clock, CPU time


def gc_snapshot(worker: WorkerProcess) -> GcSnapshot:
    return gc_buckets(worker), gc_buckets(worker, GC_CPU)


def gc_figures(before: GcSnapshot, after: GcSnapshot) -> dict[str, float]:
    """``gc_during`` of the wall-clock pauses, and how many collections took over 10 ms of
    CPU and the longest in CPU time (``cpu_``; absent where the worker does not time them)."""
    figures = gc_during(before[0], after[0])
    if after[1]:
        cpu = gc_during(before[1], after[1])
        figures |= {
            "cpu_over_10ms": cpu["over_10ms"],
            "cpu_longest_under_ms": cpu["longest_under_ms"],
        }
    return figures


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
    """p50, p99, p99.9 and the maximum, in ms. With fewer than 1,000 values p99.9 is the
    maximum, and with fewer than 100 so is p99."""
    if not values:
        return {"p50_ms": None, "p99_ms": None, "p999_ms": None, "max_ms": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99), "p999_ms": pick(0.999), "max_ms": pick(1.0)}
