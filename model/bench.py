"""``fraudstream bench model``: throughput and batch latency of each scorer backend.

Each (backend, batch, T) cell times ``score_batch`` (graph plus calibration, as the
worker calls it) on valid random windows after a warm-up, for at least ``min_seconds``.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from model.bundle import load_bundle
from model.features import FeatureSpec
from model.scorer import Scorer, load_scorer
from stream.core.extras import missing


def random_batch(
    spec: FeatureSpec, batch: int, T: int, seed: int = 0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    rng = np.random.default_rng(seed)
    cat = np.stack([rng.integers(1, c, (batch, T)) for c in spec.cardinalities], -1)
    num = rng.normal(size=(batch, T, spec.n_num)).astype(np.float32)
    mask = np.ones((batch, T), dtype=np.bool_)
    mask[: batch // 2, : T // 2] = False  # half the rows with short histories
    cat[~mask] = 0
    return cat.astype(np.int64), num, mask


def time_cell(
    scorer: Scorer,
    spec: FeatureSpec,
    batch: int,
    T: int,
    min_seconds: float,
    max_iters: int = 10_000,
) -> dict[str, Any]:
    cat, num, mask = random_batch(spec, batch, T)
    for _ in range(3):
        scorer.score_batch(cat, num, mask)
    lat: list[float] = []
    start = time.perf_counter()
    while len(lat) < max_iters and (time.perf_counter() - start < min_seconds or len(lat) < 5):
        t0 = time.perf_counter()
        scorer.score_batch(cat, num, mask)
        lat.append(time.perf_counter() - t0)
    arr = np.asarray(lat)
    return {
        "batch": batch,
        "T": T,
        "iters": len(lat),
        "seq_per_s": batch * len(lat) / float(arr.sum()),
        "p50_ms": float(np.percentile(arr, 50) * 1000),
        "p99_ms": float(np.percentile(arr, 99) * 1000),
    }


def available_backends() -> list[str]:
    backends = ["onnx", "onnx-int8"]
    if not missing("torch", "safetensors"):
        backends.insert(0, "torch")
    try:
        import tensorrt  # noqa: F401
        import torch

        if torch.cuda.is_available():
            backends.append("tensorrt")
    except ImportError:
        pass
    return backends


def bench_model(
    bundle_dir: Path,
    backends: list[str],
    batches: list[int],
    seq_lens: list[int],
    threads: int,
    min_seconds: float,
) -> dict[str, Any]:
    bundle = load_bundle(bundle_dir)
    spec = FeatureSpec.from_json(bundle.manifest["feature_spec"])
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for backend in backends:
        try:
            scorer = load_scorer(bundle_dir, backend, threads=threads)
        except (ImportError, RuntimeError) as exc:
            skipped[backend] = f"{type(exc).__name__}: {exc}"
            continue
        for T in seq_lens:
            for batch in batches:
                cell = time_cell(scorer, spec, batch, T, min_seconds)
                results.append({"backend": scorer.backend, **cell})
    return {
        "model_version": bundle.version,
        "bundle_T": bundle.manifest["T"],
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "min_seconds": min_seconds,
        "results": results,
        "skipped": skipped,
    }
