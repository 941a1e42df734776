"""ONNX Runtime runs with as many threads as the cores the process may use, without spinning."""

from __future__ import annotations

import os

import pytest

from model import scorer
from model.bundle import load_bundle

SHIPPED = "model/bundles/default"


def test_a_process_pinned_to_one_core_scores_on_one_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1}, raising=False)
    session = scorer.OnnxScorer(load_bundle(SHIPPED)).session
    opts = session.get_session_options()
    assert opts.intra_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_two_cores_give_two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert scorer.usable_cores() == 4
    session = scorer.OnnxScorer(load_bundle(SHIPPED)).session
    assert session.get_session_options().intra_op_num_threads == 2
