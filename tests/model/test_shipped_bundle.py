"""The model bundle that ships with the package: intact, built by a recipe in build/, and
still the model its recorded test-day figures describe."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from model.bundle import load_bundle
from model.shipped import SHIPPED_DIR, choose_bundle, describe
from model.verify import reproduce_test_metrics
from stream.core.cliutil import CommandError
from stream.simulate import SimConfig, generate_files

RECIPES = Path(__file__).resolve().parents[2] / "build" / "recipes"
# ONNX Runtime against the build's torch scores of the same windows: float noise only.
PR_AUC_TOLERANCE = 0.01


def shipped_recipe() -> dict[str, object]:
    name = load_bundle(SHIPPED_DIR).manifest["recipe"]
    path = RECIPES / f"{name}.toml"
    assert path.is_file(), f"the shipped bundle names recipe {name!r}, which build/ lacks"
    return tomllib.loads(path.read_text(encoding="utf-8"))


def test_the_shipped_bundle_verifies_and_carries_only_what_scoring_needs() -> None:
    bundle = load_bundle(SHIPPED_DIR)  # every file's sha256 and the version id
    files = set(bundle.manifest["files"])
    student = bundle.manifest["student"]
    assert files == {student["onnx"], student["onnx_int8"], student["weights"]}
    assert bundle.manifest["teacher"]["weights"] is None
    size = sum((SHIPPED_DIR / f).stat().st_size for f in files)
    assert size < 20_000_000, f"the shipped bundle grew to {size / 1e6:.1f} MB"
    shipped_recipe()


@pytest.mark.slow
def test_the_shipped_bundle_reproduces_its_recorded_test_metrics(tmp_path: Path) -> None:
    data = shipped_recipe()["data"]
    assert isinstance(data, dict)
    events, labels = tmp_path / "e.jsonl", tmp_path / "l.jsonl"
    summary = generate_files(
        events, labels, SimConfig(users=data["users"], days=data["days"], seed=data["seed"])
    )
    assert summary.events == data["events"], (
        "the simulator no longer gives the recipe's data: rebuild the shipped bundle "
        "(python build/rebuild_bundle.py build/recipes/<recipe>.toml --ship)"
    )
    figures = reproduce_test_metrics(SHIPPED_DIR, events, labels)
    assert figures, "the shipped bundle scores no kind"
    for kind, fig in figures.items():
        assert abs(fig["measured"] - fig["recorded"]) <= PR_AUC_TOLERANCE, (kind, fig)


def test_commands_choose_the_shipped_bundle_unless_told_otherwise(tmp_path: Path) -> None:
    assert choose_bundle(None, rules_only=False) == SHIPPED_DIR
    assert choose_bundle(str(tmp_path), rules_only=False) == tmp_path
    assert choose_bundle(None, rules_only=True) is None
    with pytest.raises(CommandError, match="--rules-only"):
        choose_bundle(str(tmp_path), rules_only=True)
    assert "shipped default, recipe" in describe(SHIPPED_DIR)
    assert describe(None).startswith("no model")
