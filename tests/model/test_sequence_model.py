"""The stream's model inputs equal the training encoder's, through the token store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import model.sequence_model as sequence_model
from model.features import encode_batch
from model.sequence_model import SequenceModel
from stream.core.schema import parse_event
from stream.core.state import Row, StateLimits, UserState, row_to_dict

pytestmark = pytest.mark.slow


def decision_windows(events: Path, count: int) -> list[list[Row]]:
    users: dict[str, UserState] = {}
    windows: list[list[Row]] = []
    with open(events, "rb") as f:
        for line in f:
            event = parse_event(line)
            state = users.setdefault(event.user_id, UserState())
            state.add(event, StateLimits())
            if event.type in ("login", "payment", "purchase", "checkout"):
                windows.append(state.upto(event.ts))
                if len(windows) >= count:
                    break
    return windows


@pytest.mark.parametrize("store_rows", [100_000, 50])
def test_encode_matches_the_training_encoder(
    tiny_bundle: tuple[Path, Path], store_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a store big enough, and with one so small that it refills on most calls."""
    events, bundle = tiny_bundle
    monkeypatch.setattr(sequence_model, "TOKEN_CACHE_ENTRIES", store_rows)
    model = SequenceModel(bundle, "onnx")
    windows = decision_windows(events, 600)
    spec, T = model.scorer.spec, model.T
    for start in range(0, len(windows), 37):  # overlapping users across calls
        chunk = windows[start : start + 37]
        expected = encode_batch([[row_to_dict(r) for r in w[-T:]] for w in chunk], spec, T)
        got = model.encode(chunk)
        for e, g in zip(expected, got, strict=True):
            assert np.array_equal(np.asarray(e), np.asarray(g))
    assert model.scores(windows[:5])["fraud"] == pytest.approx(
        [model.scores([w])["fraud"][0] for w in windows[:5]], abs=1e-6
    )


def test_explanations_of_many_windows_are_each_windows_own(
    tiny_bundle: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Explained together (their occlusion variants split across model calls), windows of
    different lengths get what each gets alone: the same drops at the same window indices."""
    events, bundle = tiny_bundle
    monkeypatch.setattr(sequence_model, "EXPLAIN_ROWS", 50)
    model = SequenceModel(bundle, "onnx")
    windows = decision_windows(events, 400)[::25]
    assert len({len(w) for w in windows}) > 3
    together = model.explain_frauds(windows)
    assert len(together) == len(windows)
    for window, (events_, features) in zip(windows, together, strict=True):
        [(alone_events, alone_features)] = model.explain_frauds([window])
        # Compared by index and group: near-equal drops may sort either way.
        assert dict(events_) == pytest.approx(dict(alone_events), abs=1e-5)
        assert dict(features) == pytest.approx(dict(alone_features), abs=1e-5)
        assert set(dict(events_)) == set(range(max(0, len(window) - model.T), len(window) - 1))
