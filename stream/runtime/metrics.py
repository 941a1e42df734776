"""Prometheus metrics of docs/contract.md, section 6, built on an injectable registry."""

from __future__ import annotations

import gc
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)

# `_created` series double the exposition without helping dashboards or alert rules.
disable_created_metrics()  # type: ignore[no-untyped-call]

# From half a millisecond to ten seconds: alert budgets live at the low end.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ALERT_KINDS = ("fraud", "brushing", "churn")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
GC_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "fraudstream_events_consumed", "Input messages consumed", registry=r
        )
        self.rejected = Counter(
            "fraudstream_events_rejected",
            "Input messages sent to the dead-letter topic",
            ["reason"],
            registry=r,
        )
        self.processed = Counter(
            "fraudstream_events_processed",
            "Valid events by outcome (added, duplicate)",
            ["outcome"],
            registry=r,
        )
        self.seller_records = Counter(
            "fraudstream_seller_records",
            "Purchases and reviews handled on the seller side",
            registry=r,
        )
        self.alerts = Counter("fraudstream_alerts_emitted", "Alerts emitted", ["kind"], registry=r)
        for kind in ALERT_KINDS:  # series exist at 0 from the start, so rates and rules see them
            self.alerts.labels(kind)
        self.feedback = Counter(
            "fraudstream_feedback",
            "Analyst verdicts kept from the feedback topic",
            ["kind", "verdict"],
            registry=r,
        )
        # Drift (model.drift): set every drift_seconds; absent until enough decisions, and
        # for bundles without reference distributions.
        self.feature_psi = Gauge(
            "fraudstream_feature_psi",
            "Population stability index of decision features against the bundle's training "
            "data, per feature group, over the latest decisions",
            ["group"],
            registry=r,
        )
        self.score_psi = Gauge(
            "fraudstream_score_psi",
            "Population stability index of scores against the bundle's validation scores",
            ["kind"],
            registry=r,
        )
        self.event_to_alert = Histogram(
            "fraudstream_event_to_alert_latency_seconds",
            "From the event's append to Kafka to its alert's delivery",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.processing = Histogram(
            "fraudstream_processing_latency_seconds",
            "Time spent handling one input message in the worker",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.micro_batch = Histogram(
            "fraudstream_micro_batch_events",
            "Input messages per micro-batch, per agent",
            ["agent"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "fraudstream_model_batch_size",
            "Sequences per model call",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_latency = Histogram(
            "fraudstream_model_batch_latency_seconds",
            "Model call latency",
            ["backend"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "fraudstream_consumer_lag",
            "Messages behind the end of each input partition",
            ["partition"],
            registry=r,
        )
        self.model_info = Info(
            "fraudstream_model", "The loaded model bundle and backend", registry=r
        )
        self.model_reloads = Counter(
            "fraudstream_model_reloads_total",
            "Model bundles swapped in while running",
            registry=r,
        )
        self.model_reload_failures = Counter(
            "fraudstream_model_reload_failures_total",
            "New bundle versions that failed to load (the old bundle stays)",
            registry=r,
        )
        self.model_fallback = Gauge(
            "fraudstream_model_fallback",
            "1 while a model bundle was configured but the rules score instead",
            registry=r,
        )
        self.gc_pauses = Histogram(
            "fraudstream_gc_pause_seconds",
            "Garbage-collection pauses by generation (the event loop stops meanwhile)",
            ["generation"],
            buckets=GC_BUCKETS,
            registry=r,
        )
        self.gc_pause_cpu = Histogram(
            "fraudstream_gc_pause_cpu_seconds",
            "CPU time of the event loop's thread in each garbage collection, by generation: "
            "the collector's own work, without the time the core was given to other processes",
            ["generation"],
            buckets=GC_BUCKETS,
            registry=r,
        )
        self.gc_longest = Gauge(
            "fraudstream_gc_pause_max_seconds",
            "The longest garbage-collection pause since the worker started",
            registry=r,
        )
        self.gc_compactions = Counter(
            "fraudstream_gc_compactions_total",
            "Full collections of the frozen run-time objects, run when their count passed its "
            "bound (stream.runtime.gc_pauses.RollingFreeze)",
            registry=r,
        )
        self.gc_frozen = Gauge(
            "fraudstream_gc_frozen_objects",
            "Objects in the collector's permanent generation: start-up objects and frozen "
            "survivors; steady under load unless frozen cycles leak",
            registry=r,
        )
        self.gc_frozen.set_function(gc.get_freeze_count)
        self.reorder_waiting = Gauge(
            "fraudstream_seller_reorder_waiting",
            "Seller records held back until the input partitions' event time passes them",
            registry=r,
        )
        self.table_keys = Gauge(
            "fraudstream_table_keys",
            "Keys in this worker's local state tables (RocksDB estimate)",
            ["table"],
            registry=r,
        )
        self.up = Gauge("fraudstream_worker_up", "1 while the worker runs", registry=r)
        self.rebalances = Counter(
            "fraudstream_rebalances", "Partition assignments received", registry=r
        )

    def set_model(self, version: str, backend: str, configured: bool) -> None:
        """Record the scoring model; ``configured``: a bundle was asked for."""
        self.model_info.info({"version": version, "backend": backend})
        self.model_fallback.set(1 if configured and backend == "rules" else 0)


def observe_many(histogram: Histogram, amount: float, times: int) -> None:
    """``histogram.observe(amount)`` ``times`` times, in one step: every event of a
    micro-batch is handled in the batch's time, and a loop of observations per event cost
    about 1% of the worker's time. Uses the client's own bucket fields, as ``observe``."""
    if times <= 0:
        return
    histogram._raise_if_not_observable()  # type: ignore[no-untyped-call]
    histogram._sum.inc(amount * times)
    for i, bound in enumerate(histogram._upper_bounds):
        if amount <= bound:
            histogram._buckets[i].inc(times)
            break


def estimate_keys(table: Any) -> int:
    """Keys in a Faust RocksDB table's partition databases held by this worker.

    RocksDB's ``estimate-num-keys`` is O(1) per database, where counting would scan the
    state; it may overcount recently overwritten keys until compaction."""
    dbs = getattr(table.data, "_dbs", None) or {}
    total = 0
    for db in list(dbs.values()):
        try:
            total += int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
        except Exception:  # a partition database closing during a rebalance
            continue
    return total
