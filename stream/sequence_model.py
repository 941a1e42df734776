"""A model bundle behind the stream's detectors.

The model packages (ONNX Runtime, and torch for some backends) are imported only when a
bundle is given, so a rules-only worker or backtest never loads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

from stream.state import Row, row_to_dict

# Per-event codes kept between calls: a user's window is scored again at each decision,
# and an event's codes never change. Cleared wholesale when full (cheap, and rare).
TOKEN_CACHE_ENTRIES = 250_000


class SequenceModel:
    def __init__(self, bundle_dir: Path, backend: str = "auto", threads: int | None = None) -> None:
        from model.scorer import load_scorer

        # The ONNX and torch scorers also carry spec, T and thresholds beyond the protocol.
        self.scorer: Any = cast(Any, load_scorer(bundle_dir, backend, threads))
        self.path = bundle_dir
        self.version: str = self.scorer.version
        self.backend: str = self.scorer.backend
        self.kinds: frozenset[str] = frozenset(self.scorer.kinds)
        self.thresholds: dict[str, float] = dict(self.scorer.thresholds)
        self.T: int = self.scorer.T
        self._tokens: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        # Called with (batch size, seconds) after every model call: the worker's metrics.
        self.on_batch: Callable[[int, float], None] | None = None

    def encode(self, windows: list[list[Row]]) -> tuple[Any, Any, Any]:
        """Model inputs for windows of stored rows (oldest first, decision event last)."""
        from model.features import PACKED_INTS, encode_packed, pack_table, tokenize_events

        T, cache = self.T, self._tokens
        recent = [w[-T:] for w in windows]
        keys = [[tuple(r) for r in w] for w in recent]  # rows hold str, int, float, None
        todo = {
            k: r
            for w, ks in zip(recent, keys, strict=True)
            for k, r in zip(ks, w, strict=True)
            if k not in cache
        }
        if todo:
            if len(cache) + len(todo) > TOKEN_CACHE_ENTRIES:
                cache.clear()
            table = tokenize_events([row_to_dict(r) for r in todo.values()], self.scorer.spec)
            packed_ints, packed_floats = pack_table(table)
            for j, k in enumerate(todo):
                cache[k] = (packed_ints[j].tolist(), packed_floats[j].tolist())
        pad_i, pad_f = [0] * PACKED_INTS, [0.0, 0.0, 0.0]
        ints: list[list[int]] = []
        floats: list[list[float]] = []
        valid = np.zeros((len(windows), T), dtype=np.bool_)
        for b, ks in enumerate(keys):
            n = len(ks)
            if n == 0:
                raise ValueError("cannot score an empty window")
            valid[b, T - n :] = True
            ints.extend([pad_i] * (T - n))
            floats.extend([pad_f] * (T - n))
            for k in ks:
                i, f = cache[k]
                ints.append(i)
                floats.append(f)
        B = len(windows)
        return encode_packed(
            np.array(ints, dtype=np.int64).reshape(B, T, PACKED_INTS),
            np.array(floats, dtype=np.float32).reshape(B, T, 3),
            valid,
            self.scorer.spec,
        )

    def run(self, cat: Any, num: Any, mask: Any) -> dict[str, Any]:
        started = time.perf_counter()
        out = dict(self.scorer.score_batch(cat, num, mask))
        if self.on_batch is not None:
            self.on_batch(len(cat), time.perf_counter() - started)
        return out

    def score(self, windows: list[list[Row]]) -> dict[str, Any]:
        """Probabilities per kind for each window (oldest first, decision event last)."""
        return self.run(*self.encode(windows))

    def fraud(self, window: list[Row]) -> float:
        return self.fraud_scores([window])[0]

    def fraud_scores(self, windows: list[list[Row]]) -> list[float]:
        return self.scores(windows)["fraud"]

    def scores(self, windows: list[list[Row]]) -> dict[str, list[float]]:
        return {kind: [float(v) for v in values] for kind, values in self.score(windows).items()}

    def explain_fraud(
        self, window: list[Row]
    ) -> tuple[list[tuple[int, float]], list[tuple[str, float]]]:
        """Occlusion: how much the fraud score drops when each earlier event of ``window``
        is hidden from the model, and when each feature group is neutralised. Returns
        (window index, drop) and (group, drop), largest drops first."""
        from model.explain import occlusion_variants

        cat, num, mask = self.encode([window])
        variants, positions, groups = occlusion_variants(cat[0], num[0], mask[0], self.scorer.spec)
        scores = self.scorer.score_batch(*variants)["fraud"]
        base = float(scores[0])
        offset = len(window) - self.T  # window index of model position 0
        events = [
            (p + offset, base - float(s)) for p, s in zip(positions, scores[1:], strict=False)
        ]
        rest = scores[1 + len(positions) :]
        features = [(g, base - float(s)) for g, s in zip(groups, rest, strict=True)]
        events.sort(key=lambda e: -e[1])
        features.sort(key=lambda f: -f[1])
        return events, features
