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

from stream.core.state import EID, TS, Row, row_to_dict
from stream.core.timeutil import DAY_MS

# Per-event codes kept between calls: a user's window is scored again at each decision,
# and an event's codes never change. Cleared wholesale when full (cheap, and rare).
TOKEN_CACHE_ENTRIES = 250_000
EXPLAIN_ROWS = 512  # occlusion variants per model call


class SequenceModel:
    def __init__(
        self,
        bundle_dir: Path,
        backend: str = "auto",
        threads: int | None = None,
        drift_window: int = 5000,
    ) -> None:
        from model.scorer import load_scorer

        # The ONNX and torch scorers also carry spec, T and thresholds beyond the protocol.
        self.scorer: Any = cast(Any, load_scorer(bundle_dir, backend, threads))
        self.path = bundle_dir
        self.version: str = self.scorer.version
        self.backend: str = self.scorer.backend
        self.kinds: frozenset[str] = frozenset(self.scorer.kinds)
        self.thresholds: dict[str, float] = dict(self.scorer.thresholds)
        self.T: int = self.scorer.T
        self._read_churn(bundle_dir)
        # Token store: row i holds one event's packed codes; row 0 stays zero (padding).
        from model.features import PACKED_INTS

        self._index: dict[tuple[str, int], int] = {}
        self._ints = np.zeros((TOKEN_CACHE_ENTRIES, PACKED_INTS), np.int64)
        self._floats = np.zeros((TOKEN_CACHE_ENTRIES, 3), np.float32)
        self._used = 1
        # Called with (batch size, seconds) after every model call: the worker's metrics.
        self.on_batch: Callable[[int, float], None] | None = None
        # Recent decisions against the training data's distributions; None for bundles
        # built before references were recorded.
        self.drift = _drift_window(self.scorer, drift_window)

    def _read_churn(self, bundle_dir: Path) -> None:
        """The churn time scales the bundle was built for (older bundles: the defaults),
        and BG/NBD's fitted parameters where the build gave churn to them."""
        import json

        from model.bundle import MANIFEST
        from stream.detect.btyd import BGNBD
        from stream.detect.churn_habits import HabitModel

        m = json.loads((bundle_dir / MANIFEST).read_text(encoding="utf-8"))
        self.churn_horizon_days: float = float(m.get("churn_horizon_days", 30.0))
        self.churn_interval_ms: int = int(m.get("churn_interval_ms", DAY_MS))
        churn = m.get("kinds", {}).get("churn", {})
        self.churn_btyd: BGNBD | None = None
        self.churn_btyd_threshold: float | None = None
        self.churn_habits: HabitModel | None = None
        if churn.get("source") == "btyd":
            self.churn_btyd = BGNBD.from_json(churn["btyd"])
            self.churn_btyd_threshold = float(churn["threshold"])
        if churn.get("source") == "habits":
            self.churn_habits = HabitModel.from_json(churn["habits"])
            self.churn_btyd = self.churn_habits.btyd  # its value at risk and first feature
            self.churn_btyd_threshold = float(churn["threshold"])

    def encode(self, windows: list[list[Row]], now_ms: int | None = None) -> tuple[Any, Any, Any]:
        """Model inputs for windows of stored rows (oldest first, decision event last).

        With ``now_ms`` each window is scored as of that time instead: its last T - 1 rows
        and then the clock token, which carries the idle time (churn on a timer)."""
        from model.features import clock_row, encode_packed

        T, index = self.T - (now_ms is not None), self._index
        recent = [w[-T:] for w in windows]
        # An event's codes are fixed once stored; (event_id, ts) names it (ids are unique).
        keys = [[(r[EID], r[TS]) for r in w] for w in recent]
        todo = {k: r for w, ks in zip(recent, keys, strict=True)
                for k, r in zip(ks, w, strict=True) if k not in index}  # fmt: skip
        if todo and self._used + len(todo) > len(self._ints):
            # Full: start over, keeping only what this call needs.
            self._index.clear()
            self._used = 1
            todo = {k: r for w, ks in zip(recent, keys, strict=True)
                    for k, r in zip(ks, w, strict=True)}  # fmt: skip
        if todo:
            self._tokenize(todo)
        flat: list[int] = []
        for ks in keys:
            if not ks:
                raise ValueError("cannot score an empty window")
            flat.extend([0] * (T - len(ks)))  # row 0 of the store is padding
            flat.extend([index[k] for k in ks])
        rows = np.array(flat, dtype=np.int64).reshape(len(windows), T)
        ints, floats, valid = self._ints[rows], self._floats[rows], rows > 0
        if now_ms is not None:
            clock_ints, clock_floats = clock_row(now_ms)
            B = len(windows)
            ints = np.concatenate([ints, np.broadcast_to(clock_ints, (B, 1, len(clock_ints)))], 1)
            floats = np.concatenate([floats, np.broadcast_to(clock_floats, (B, 1, 3))], 1)
            valid = np.concatenate([valid, np.ones((B, 1), np.bool_)], 1)
        return encode_packed(ints, floats, valid, self.scorer.spec)

    def _tokenize(self, todo: dict[tuple[str, int], Row]) -> None:
        """Add the events' codes to the store, growing it if one call needs more."""
        from model.features import pack_table, tokenize_events

        need = self._used + len(todo)
        if need > len(self._ints):  # only when one call alone outgrows the store
            ints = np.zeros((need, self._ints.shape[1]), np.int64)
            floats = np.zeros((need, 3), np.float32)
            ints[: self._used], floats[: self._used] = (
                self._ints[: self._used],
                self._floats[: self._used],
            )
            self._ints, self._floats = ints, floats
        table = tokenize_events([row_to_dict(r) for r in todo.values()], self.scorer.spec)
        ints, floats = pack_table(table)
        start = self._used
        self._ints[start : start + len(todo)] = ints
        self._floats[start : start + len(todo)] = floats
        for j, key in enumerate(todo):
            self._index[key] = start + j
        self._used += len(todo)

    def run(self, cat: Any, num: Any, mask: Any) -> dict[str, Any]:
        started = time.perf_counter()
        out = dict(self.scorer.score_batch(cat, num, mask))
        if self.on_batch is not None:
            self.on_batch(len(cat), time.perf_counter() - started)
        return out

    def score(self, windows: list[list[Row]]) -> dict[str, Any]:
        """Probabilities per kind for each window (oldest first, decision event last)."""
        cat, num, mask = self.encode(windows)
        out = self.run(cat, num, mask)
        if self.drift is not None:
            self.drift.observe(cat, num, out)
        return out

    def idle_scores(self, windows: list[list[Row]], now_ms: int, batch: int) -> list[float]:
        """Churn probabilities of users' recent events as of ``now_ms`` (after them all),
        in model calls of at most ``batch`` windows."""
        out: list[float] = []
        for lo in range(0, len(windows), batch):
            probs = self.run(*self.encode(windows[lo : lo + batch], now_ms))["churn"]
            out.extend(float(p) for p in probs)
        if self.drift is not None:
            self.drift.observe_idle(out)
        return out

    def threshold(self, kind: str) -> float | None:
        """The bundle's alert threshold for ``kind``; None for kinds the rules keep."""
        return self.thresholds[kind] if kind in self.kinds else None

    def scores(self, windows: list[list[Row]]) -> dict[str, list[float]]:
        return {kind: [float(v) for v in values] for kind, values in self.score(windows).items()}

    def explain_frauds(
        self, windows: list[list[Row]]
    ) -> list[tuple[list[tuple[int, float]], list[tuple[str, float]]]]:
        """Occlusion: how much the fraud score drops when each earlier event of a window
        is hidden from the model, and when each feature group is neutralised. Returns, per
        window, (window index, drop) and (group, drop), largest drops first.

        Every window's variants go through one encoding and as few model calls as fit
        ``EXPLAIN_ROWS``: a micro-batch under attack raises dozens of alerts, and one call
        per alert cost more than scoring the whole batch."""
        from model.explain import occlusion_variants

        if not windows:
            return []
        cat, num, mask = self.encode(windows)
        spec = self.scorer.spec
        parts = [occlusion_variants(c, n, m, spec) for c, n, m in zip(cat, num, mask, strict=True)]
        stacked = [np.concatenate([v[i] for v, _, _ in parts]) for i in range(3)]
        rows = len(stacked[0])
        scores = np.concatenate(
            [
                self.scorer.score_batch(*(a[lo : lo + EXPLAIN_ROWS] for a in stacked))["fraud"]
                for lo in range(0, rows, EXPLAIN_ROWS)
            ]
        )
        out = []
        start = 0
        for window, (_, positions, groups) in zip(windows, parts, strict=True):
            own = scores[start : start + 1 + len(positions) + len(groups)]
            start += len(own)
            base = float(own[0])
            offset = len(window) - self.T  # window index of model position 0
            hidden, rest = own[1 : 1 + len(positions)], own[1 + len(positions) :]
            events = [(p + offset, base - float(s)) for p, s in zip(positions, hidden, strict=True)]
            features = [(g, base - float(s)) for g, s in zip(groups, rest, strict=True)]
            events.sort(key=lambda e: -e[1])
            features.sort(key=lambda f: -f[1])
            out.append((events, features))
        return out


def _drift_window(scorer: Any, size: int) -> Any:
    from model.drift import DriftWindow

    bundle = getattr(scorer, "bundle", None)
    ref = bundle.manifest.get("drift_reference") if bundle is not None else None
    return DriftWindow(ref, scorer.spec, size) if ref else None
