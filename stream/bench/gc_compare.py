"""Garbage-collection pauses of the worker in two configurations, alternating runs
(``python -m stream.bench --gc-compare RUNS``): GC settling on and off, or, with
``--gc-baseline DIR``, this code against the worker of another checkout (run from ``DIR``,
e.g. an earlier commit's ``git archive``), or, with ``--gc-steady RATE,SECONDS``, the
survivors frozen (``FRAUDSTREAM_GC_FREEZE_SURVIVORS``) and not, over a stretch
of steady traffic after the drain: full collections come every few seconds under steady
load, and a drain of a backlog is too short to show them."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from stream.bench.measure import gc_figures, gc_snapshot, latency, worker_drain
from stream.bench.spread import spread_each


def gc_compare(
    bootstrap: str,
    events: int,
    runs: int,
    cpus: str | None,
    model: Path | None,
    baseline: Path | None = None,
    steady: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The worker draining ``events`` in two configurations, alternating, ``runs`` times
    each: drain rate and garbage-collection pauses, medians and ranges. Without
    ``baseline``: GC settling (``FRAUDSTREAM_GC_SETTLE``, the default) on and off."""
    # name -> (environment, working directory: where ``python -m stream.cli`` imports from)
    variants: dict[str, tuple[dict[str, str], Path | None]]
    if baseline is not None:
        variants = {
            "this_checkout": ({}, None),
            "earlier_checkout": ({"PYTHONPATH": str(baseline.resolve())}, baseline.resolve()),
        }
    elif steady is not None:
        variants = {
            "survivors_frozen": ({"FRAUDSTREAM_GC_FREEZE_SURVIVORS": "true"}, None),
            "survivors_collected": ({"FRAUDSTREAM_GC_FREEZE_SURVIVORS": "false"}, None),
        }
    else:
        variants = {
            "settled": ({"FRAUDSTREAM_GC_SETTLE": "true"}, None),
            "default_gc": ({"FRAUDSTREAM_GC_SETTLE": "false"}, None),
        }
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="fraudstream-bench-gc-") as tmp:
        for i in range(runs):
            for name, (env, cwd) in variants.items():
                work = Path(tmp) / f"{name}-{i}"
                worker, drained = worker_drain(
                    bootstrap, work, events, model, env=env, cpus=cpus, cwd=cwd
                )
                try:
                    row = {k: v for k, v in drained.items() if k != "events"}
                    if steady is not None:
                        row |= _steady(bootstrap, worker, *steady)
                    rows[name].append(row)
                finally:
                    worker.stop()
    return {
        "runs": runs,
        "steady": steady,
        "earlier_checkout_path": None if baseline is None else str(baseline),
    } | {name: spread_each(values) for name, values in rows.items()}


def _steady(bootstrap: str, worker: Any, rate: float, seconds: float) -> dict[str, float]:
    """Pauses, alert latency and the frozen objects over ``seconds`` at ``rate``."""
    before = gc_snapshot(worker)
    lat = latency(bootstrap, worker, rate, seconds)
    pauses = gc_figures(before, gc_snapshot(worker))
    return {f"steady_gc_{k}": v for k, v in pauses.items()} | {
        "steady_p50_ms": lat["p50_ms"] or 0.0,
        "steady_p99_ms": lat["p99_ms"] or 0.0,
        "steady_lag_end": lat["lag_end"],
        "frozen_objects_end": worker.metric("fraudstream_gc_frozen_objects"),
        "compactions": worker.metric("fraudstream_gc_compactions_total"),
    }
