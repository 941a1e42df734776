"""The benchmark, repeated: every configuration in every run, interleaved.

Each run loads a fresh topic, then measures in turn (the order rotates from run to run, so
that a slow minute of the shared machine falls on each configuration alike):

- ``consumer_loop``: the bare confluent-kafka loop draining the topic;
- ``faust_passthrough``: a Faust agent that only counts, draining the same topic;
- ``worker_rules`` and ``worker_model``: the worker draining a topic of its own of the
  same size, then its event-to-alert latency and lag at each offered rate, and the
  garbage-collection pauses from its first consumed event to the end.

Each consumer driver of ``Plan.drivers`` beyond Faust's own (``aiokafka``) adds its
pass-through agent and workers, named with the driver as a suffix
(``faust_passthrough_confluent``, ``worker_rules_confluent``, ...).

The baselines and the worker run on the worker's cores; this process (the load generator)
and the broker, when the benchmark starts it, on the others (``Pinning``).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.bench.measure import (
    consumer_loop_process,
    gc_figures,
    gc_snapshot,
    latency,
    load_events,
    model_calls,
    passthrough_agent,
    worker_drain,
)
from stream.bench.spread import spread

BASELINES = ("consumer_loop", "faust_passthrough")
DEFAULT_DRIVER = "aiokafka"  # Faust's own; its configurations carry no suffix
DRIVERS = ("aiokafka", "confluent")


def with_driver(name: str, driver: str) -> str:
    return name if driver == DEFAULT_DRIVER else f"{name}_{driver}"


def split_driver(name: str) -> tuple[str, str]:
    """A configuration's name without its driver suffix, and the driver."""
    for driver in DRIVERS:
        if driver != DEFAULT_DRIVER and name.endswith(f"_{driver}"):
            return name[: -len(driver) - 1], driver
    return name, DEFAULT_DRIVER


LATENCY_FIGURES = ("p50_ms", "p99_ms", "p999_ms", "max_ms")
GC_FIGURES = (
    "collections",
    "full_collections",
    "over_10ms",
    "longest_under_ms",
    "cpu_over_10ms",
    "cpu_longest_under_ms",
)


@dataclass(frozen=True)
class Pinning:
    """Cores (``taskset -c`` lists) for the measured processes and for everything else;
    ``None``: not pinned."""

    worker: str | None
    others: str | None
    broker_pinned: bool = False

    def describe(self) -> str:
        if self.worker is None:
            return "not pinned"
        measured = f"worker, pass-through agent and consumer loop on cpu {self.worker}"
        if self.broker_pinned:
            return f"{measured}; load generator and broker on cpu {self.others}"
        return (
            f"{measured}; load generator on cpu {self.others}; the broker not pinned "
            "(given by --broker, not started by the benchmark)"
        )


def default_pinning(cores: int) -> Pinning:
    """The last core for the measured process, the others for the broker and the load."""
    if cores < 2:
        return Pinning(None, None)
    return Pinning(str(cores - 1), f"0-{cores - 2}" if cores > 2 else "0")


def cpu_set(cpus: str) -> set[int]:
    """``taskset -c`` syntax ("0", "0-2", "0,3") as a set of cores."""
    out: set[int] = set()
    for part in cpus.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


@dataclass(frozen=True)
class Plan:
    events: int
    runs: int
    rates: tuple[float, ...]
    seconds: float
    model: Path | None
    backend: str | None
    pinning: Pinning
    drivers: tuple[str, ...] = (DEFAULT_DRIVER,)

    def baselines(self) -> list[str]:
        return ["consumer_loop", *(with_driver("faust_passthrough", d) for d in self.drivers)]

    def workers(self) -> list[str]:
        kinds = ["worker_rules"] + (["worker_model"] if self.model is not None else [])
        return [with_driver(kind, d) for d in self.drivers for kind in kinds]

    def configurations(self) -> list[str]:
        return [*self.baselines(), *self.workers()]


def run_suite(bootstrap: str, plan: Plan, progress: Callable[[str], None]) -> list[dict[str, Any]]:
    """All runs; one raw row per run."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fraudstream-bench-") as tmp:
        for i in range(plan.runs):
            configs = plan.configurations()
            order = configs[i % len(configs) :] + configs[: i % len(configs)]
            row: dict[str, Any] = {"run": i + 1, "load_avg_before": list(os.getloadavg())}
            base = f"bench-{uuid.uuid4().hex[:8]}.events"
            row["mean_event_bytes"] = round(
                load_events(bootstrap, base, plan.events) / plan.events, 1
            )
            for name in order:
                progress(f"run {i + 1}/{plan.runs}: {name}")
                row[name] = _measure(bootstrap, plan, name, base, Path(tmp) / f"{name}-{i}")
            rows.append(row)
    return rows


def _measure(bootstrap: str, plan: Plan, name: str, base: str, work: Path) -> dict[str, Any]:
    cpus = plan.pinning.worker
    kind, driver = split_driver(name)
    if kind == "consumer_loop":
        return _rounded(consumer_loop_process(bootstrap, base, plan.events, cpus))
    if kind == "faust_passthrough":
        return _rounded(passthrough_agent(bootstrap, base, plan.events, cpus, driver))
    model = plan.model if kind == "worker_model" else None
    env = {"FRAUDSTREAM_CONSUMER_DRIVER": driver}
    worker, drained = worker_drain(
        bootstrap, work, plan.events, model, plan.backend, cpus=cpus, env=env
    )
    try:
        before = gc_snapshot(worker)
        rates = {
            str(int(rate)): latency(bootstrap, worker, rate, plan.seconds, seed=12 + k)
            for k, rate in enumerate(plan.rates)
        }
        gc_drain = {f: drained.pop(f"gc_{f}") for f in GC_FIGURES if f"gc_{f}" in drained}
        return {
            **_rounded(drained),
            **model_calls(worker),
            "latency": rates,
            "gc": gc_drain,
            "gc_latency_runs": gc_figures(before, gc_snapshot(worker)),
        }
    finally:
        worker.stop()


def _rounded(result: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in result.items()}


def summarise(plan: Plan, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and ranges over the runs; ratios are taken within each run, then summarised."""
    configs = plan.configurations()
    workers = plan.workers()
    drain = {c: spread(r[c]["events_per_s"] for r in rows) for c in configs}
    ratios = {
        f"{w}_vs_{b}": spread(r[w]["events_per_s"] / r[b]["events_per_s"] for r in rows)
        for w in workers
        for b in plan.baselines()
    }
    latencies = {w: _latency_summary(plan, rows, w) for w in workers}
    gc = {
        w: {
            stretch: {
                f: spread(r[w][key][f] for r in rows) for f in GC_FIGURES if f in rows[0][w][key]
            }
            for stretch, key in (("drain", "gc"), ("latency_runs", "gc_latency_runs"))
        }
        for w in workers
    }
    return {"drain_events_per_s": drain, "ratios": ratios, "latency": latencies, "gc": gc}


def _latency_summary(plan: Plan, rows: list[dict[str, Any]], worker: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rate in (str(int(r)) for r in plan.rates):
        runs = [row[worker]["latency"][rate] for row in rows]
        figures = {
            f: spread(run[f] for run in runs if run[f] is not None)
            for f in LATENCY_FIGURES
            if any(run[f] is not None for run in runs)
        }
        out[rate] = {
            **figures,
            "alerts": spread(run["alerts"] for run in runs),
            "offered_events_per_s": spread(run["offered_events_per_s"] for run in runs),
            "lag_grew_runs": sum(bool(run["lag_grew"]) for run in runs),
            "lag_end": spread(run["lag_end"] for run in runs),
        }
    return out


def legacy_keys(plan: Plan, summary: dict[str, Any]) -> dict[str, Any]:
    """The keys of the benchmark's single-run output, now holding medians."""
    out: dict[str, Any] = {}
    drain = summary["drain_events_per_s"]
    for name in plan.configurations():
        out[name] = {"events_per_s": drain[name]["median"]}
    passthrough = with_driver("faust_passthrough", plan.drivers[0])  # Faust's own when run
    for w in plan.workers():
        out[f"{w}_vs_passthrough"] = summary["ratios"][f"{w}_vs_{passthrough}"]["median"]
        out[f"{w}_vs_consumer_loop"] = summary["ratios"][f"{w}_vs_consumer_loop"]["median"]
        first = summary["latency"][w][str(int(plan.rates[0]))]
        out[f"{w}_latency"] = {f: first[f]["median"] for f in LATENCY_FIGURES if f in first}
    return out
