"""The learning scenario, small: a fraud pattern the champion has not seen, verdicts on
half of its cases, a retrain that promotes a challenger, and the pattern caught after."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.bundle import bundle_version
from stream.simulate.learning_scenario import run

# Two tiny builds and four backtests: minutes on two shared cores.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_a_retrain_on_verdicts_learns_the_new_pattern(tmp_path: Path) -> None:
    report = run(tmp_path, users=600, days=12, pattern_day=7, seed=11, recipe="tiny")
    before, retrain, after = report["champion_before"], report["retrain"], report["after"]
    assert before["new_pattern_cases"] > 0
    assert before["new_pattern_recall"] <= 0.1  # the champion has never seen it
    assert report["setup"]["verdicts"] > 0
    # Promoted on its own holdout measurements, into the champion's place.
    assert retrain["promoted"], retrain["why"]
    assert bundle_version(tmp_path / "bundle") == retrain["challenger_version"]
    assert (tmp_path / f".bundle.previous-{retrain['champion_version']}").is_dir()
    assert after["new_pattern_recall"] > before["new_pattern_recall"]
    # The old patterns are ranked about as well as before.
    assert after["old_pattern_pr_auc"] >= before["old_pattern_pr_auc"] - 0.1, report
    # The pattern moved the inputs the champion knew; the challenger's reference has it.
    assert before["feature_psi"]["catalogue"] > after["feature_psi"]["catalogue"], report
