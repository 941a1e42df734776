"""A model bundle behind the stream's detectors.

The model packages (ONNX Runtime, and torch for some backends) are imported only when a
bundle is given, so a rules-only worker or backtest never loads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from stream.state import Row, row_to_dict


class SequenceModel:
    def __init__(self, bundle_dir: Path, backend: str = "auto") -> None:
        from model.scorer import load_scorer

        # The ONNX and torch scorers also carry spec, T and thresholds beyond the protocol.
        self.scorer: Any = cast(Any, load_scorer(bundle_dir, backend))
        self.version: str = self.scorer.version
        self.backend: str = self.scorer.backend
        self.kinds: frozenset[str] = frozenset(self.scorer.kinds)
        self.thresholds: dict[str, float] = dict(self.scorer.thresholds)

    def score(self, windows: list[list[Row]]) -> dict[str, Any]:
        """Probabilities per kind for each window (oldest first, decision event last)."""
        from model.features import encode_batch

        T = self.scorer.T
        sequences = [[row_to_dict(r) for r in window[-T:]] for window in windows]
        cat, num, mask = encode_batch(sequences, self.scorer.spec, T)
        return dict(self.scorer.score_batch(cat, num, mask))

    def fraud(self, window: list[Row]) -> float:
        return float(self.score([window])["fraud"][0])
