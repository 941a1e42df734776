"""``fraudstream up``: the embedded local stack on one machine.

Starts (or reuses) the local broker, one worker, and live traffic; prints where alerts and
metrics are, a readable line per fraud and brushing alert and a periodic churn summary;
Ctrl-C stops what it started. The worker scores with the bundle that ships with the
package, another one (``--model DIR``), or none (``--rules-only``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

import orjson
from confluent_kafka import Consumer, Producer

from model.shipped import choose_bundle, describe
from stream.core.cliutil import CommandError
from stream.core.timeutil import DAY_MS
from stream.local import broker
from stream.local.pretty import ChurnTally, pretty_line
from stream.local.traffic import simulated_traffic
from stream.local.workerproc import WorkerProcess
from stream.runtime.topics import ALERT_TOPICS, EVENTS


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_up(args: argparse.Namespace) -> int:
    # Ctrl-C and `kill` both stop everything; explicit because a shell may start this
    # process with SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    data = Path(args.data_dir)
    cfg = broker.BrokerConfig(data_dir=data / "kafka", port=args.port)
    if not broker.port_free("127.0.0.1", args.web_port):
        raise CommandError(f"web port {args.web_port} is in use; pass --web-port")
    bundle = choose_bundle(args.model, args.rules_only)
    started_broker = _ensure_broker(cfg)
    # Simulated event time runs ahead of the wall clock: judge events against their
    # partition's event time only (stream.core.event_time), or a restarted worker would
    # refuse the traffic that is already days ahead; simulated nights leave a partition
    # quiet for hours of event time, so the bound is a day.
    os.environ.setdefault("FRAUDSTREAM_WALL_CLOCK_SKEW", "false")
    os.environ.setdefault("FRAUDSTREAM_MAX_SKEW_MS", str(DAY_MS))
    worker = WorkerProcess(cfg.bootstrap, data / "worker", prefix="", partitions=None,
                           web_port=args.web_port, log_level="warn", model=bundle)  # fmt: skip
    stop = threading.Event()
    try:
        print(f"starting worker (log in {worker.log_path}) ...", flush=True)
        worker.start(timeout=120.0)
        print(f"broker     {cfg.bootstrap} (data in {cfg.data_dir})")
        print(f"model      {describe(bundle)}")
        print(f"metrics    http://127.0.0.1:{args.web_port}/metrics")
        print(f"views      http://127.0.0.1:{args.web_port}/ (users, sellers and their alerts)")
        print(
            f"alerts     fraudstream alerts tail --broker {cfg.bootstrap}   (topics "
            f"{', '.join(ALERT_TOPICS.values())})"
        )
        print("dashboard  deploy/grafana (see README: Metrics and dashboards)")
        print(
            f"traffic    simulated marketplace, about {args.rate:g} events/s into '{EVENTS}' "
            "(event time runs ahead of the clock); Ctrl-C stops all",
            flush=True,
        )
        threading.Thread(
            target=_produce, args=(cfg.bootstrap, args.rate, stop), daemon=True
        ).start()
        _print_alerts(cfg.bootstrap, worker, stop, args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        worker.stop()
        if started_broker:
            broker.stop(cfg.data_dir)
        print("stopped", flush=True)
    return 0


def _ensure_broker(cfg: broker.BrokerConfig) -> bool:
    if broker.read_pid(cfg.data_dir) is not None:
        return False  # ours from an earlier run; leave it running afterwards too
    if not broker.port_free(cfg.host, cfg.port):
        raise CommandError(f"port {cfg.port} is in use by something else; pass --port")
    print(f"starting Kafka broker on {cfg.bootstrap} ...", flush=True)
    broker.start(cfg)
    return True


def _produce(bootstrap: str, rate: float, stop: threading.Event) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5}
    )
    interval = 1.0 / max(rate, 0.1)
    next_at = time.monotonic()
    # Seeded by the clock: every run is new traffic, with event ids of its own.
    for event in simulated_traffic(seed=int(time.time())):
        if stop.is_set():
            break
        producer.produce(EVENTS, key=event["user_id"].encode(), value=orjson.dumps(event))
        producer.poll(0)
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    producer.flush(5)


CHURN_SUMMARY_EVERY_S = 30.0  # churn comes in waves at each tick: summed, not listed


def _print_alerts(
    bootstrap: str, worker: WorkerProcess, stop: threading.Event, duration: float | None
) -> None:
    """Fraud and brushing alerts one readable line each; churn alerts as one summary line
    every ``CHURN_SUMMARY_EVERY_S`` (a churn tick flags many users at once)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"fraudstream-up-{os.getpid()}",
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(list(ALERT_TOPICS.values()))
    deadline = None if duration is None else time.monotonic() + duration
    colour = sys.stdout.isatty()
    churn = ChurnTally()
    try:
        while deadline is None or time.monotonic() < deadline:
            if not worker.running():
                raise CommandError(f"the worker exited; see {worker.log_path}")
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                alert = orjson.loads(msg.value() or b"{}")
                if alert.get("kind") == "churn":
                    churn.add(alert)
                else:
                    print(pretty_line(alert, colour), flush=True)
            if churn.due(CHURN_SUMMARY_EVERY_S):
                print(churn.line(colour), flush=True)
    finally:
        if churn.due(0.0):  # what came since the last summary, before saying "stopped"
            print(churn.line(colour), flush=True)
        consumer.close()
