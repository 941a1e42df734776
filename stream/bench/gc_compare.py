"""Garbage-collection pauses of the worker in two configurations, alternating runs
(``python -m stream.bench --gc-compare RUNS``): GC settling on and off, or, with
``--gc-baseline DIR``, this code against the worker of another checkout (run from ``DIR``,
e.g. an earlier commit's ``git archive``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from stream.bench.measure import worker_drain
from stream.bench.spread import spread_each


def gc_compare(
    bootstrap: str,
    events: int,
    runs: int,
    cpus: str | None,
    model: Path | None,
    baseline: Path | None = None,
) -> dict[str, Any]:
    """The worker draining ``events`` in two configurations, alternating, ``runs`` times
    each: drain rate and garbage-collection pauses, medians and ranges. Without
    ``baseline``: GC settling (``FRAUDSTREAM_GC_SETTLE``, the default) on and off."""
    # name -> (environment, working directory: where ``python -m stream.cli`` imports from)
    variants: dict[str, tuple[dict[str, str], Path | None]] = (
        {
            "settled": ({"FRAUDSTREAM_GC_SETTLE": "true"}, None),
            "default_gc": ({"FRAUDSTREAM_GC_SETTLE": "false"}, None),
        }
        if baseline is None
        else {
            "this_checkout": ({}, None),
            "earlier_checkout": ({"PYTHONPATH": str(baseline.resolve())}, baseline.resolve()),
        }
    )
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="fraudstream-bench-gc-") as tmp:
        for i in range(runs):
            for name, (env, cwd) in variants.items():
                work = Path(tmp) / f"{name}-{i}"
                worker, drained = worker_drain(
                    bootstrap, work, events, model, env=env, cpus=cpus, cwd=cwd
                )
                try:
                    rows[name].append({k: v for k, v in drained.items() if k != "events"})
                finally:
                    worker.stop()
    return {"runs": runs, "earlier_checkout_path": None if baseline is None else str(baseline)} | {
        name: spread_each(values) for name, values in rows.items()
    }
