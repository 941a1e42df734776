"""Garbage-collection pauses of the worker with and without GC settling, alternating runs
(``python -m stream.bench --gc-compare RUNS``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from stream.bench.measure import worker_drain
from stream.bench.spread import spread_each


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
    return {name: spread_each(values) for name, values in rows.items()} | {"runs": runs}
