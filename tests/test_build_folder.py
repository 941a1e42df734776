"""The top-level build/ folder: recipes that parse into build configurations, an engine
profile model/trt.py can read, scripts that format the published tables, and never a
Python package (``build`` is PyPA's name) nor hidden by .gitignore."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from model import cli
from model.config import TINY, BuildConfig, config_from_recipe, config_from_table
from stream.core.cliutil import CommandError

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
RECIPES = sorted((BUILD / "recipes").glob("*.toml"))


def test_there_are_recipes_for_the_bundles_the_docs_cite() -> None:
    assert {p.stem for p in RECIPES} >= {"tiny", "243k", "988k"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_recipe_parses_into_a_build_config(path: Path) -> None:
    cfg = config_from_recipe(path)
    assert isinstance(cfg, BuildConfig)
    recipe = tomllib.loads(path.read_text(encoding="utf-8"))
    assert recipe["name"] == path.stem
    data = recipe["data"]
    assert all(isinstance(data[k], int) and data[k] > 0 for k in ("users", "days"))
    assert isinstance(data["seed"], int)


def test_the_held_out_file_is_no_training_seed() -> None:
    heldout = tomllib.loads((BUILD / "heldout.toml").read_text(encoding="utf-8"))["data"]
    seeds = {tomllib.loads(p.read_text(encoding="utf-8"))["data"]["seed"] for p in RECIPES}
    assert heldout["seed"] not in seeds


def test_build_is_never_a_python_package() -> None:
    assert BUILD.is_dir()
    assert not list(BUILD.rglob("__init__.py"))
    assert not (BUILD / "__main__.py").exists()
    spec = importlib.util.find_spec("build")
    if spec is not None and spec.origin is not None:  # PyPA's tool, where installed
        assert not Path(spec.origin).resolve().is_relative_to(BUILD)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_gitignore_does_not_hide_the_recipes() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    kept = [*RECIPES, BUILD / "constraints.txt", BUILD / "tensorrt" / "profile.toml"]
    for path in kept:
        ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, check=False)
        assert ignored.returncode == 1, f"{path} is ignored"


def test_constraints_pin_the_model_libraries() -> None:
    pins = {
        line.split("==")[0]
        for line in (BUILD / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert pins >= {"torch", "transformers", "onnx", "onnxruntime", "numpy", "lightgbm"}
    assert pins >= {"safetensors", "faust-streaming"}


def test_engine_profile_is_read_without_tensorrt() -> None:
    from model.features import MAX_T
    from model.trt import PROFILE_PATHS, load_profile

    profile = load_profile(BUILD / "tensorrt" / "profile.toml")
    assert profile.batch[0] <= profile.batch[1] <= profile.batch[2]
    assert profile.seq_len[2] <= MAX_T and profile.fits(profile.batch[2], profile.seq_len[2])
    assert not profile.fits(profile.batch[2] + 1, 1)
    assert PROFILE_PATHS[-1] == BUILD / "tensorrt" / "profile.toml"
    assert "tensorrt" not in sys.modules


def test_recipe_tables_are_checked() -> None:
    assert config_from_table({"base": "tiny", "student_epochs": 2}) == BuildConfig(
        **{**TINY.to_json(), "student_epochs": 2.0}
    )
    assert config_from_table({"teacher": [32, 1, 2, 64]}).teacher == (32, 1, 2, 64)
    for bad in ({"base": "huge"}, {"epochs": 3}, {"rules_gate": 1}, {"T": 3.5}):
        with pytest.raises(ValueError):
            config_from_table(bad)


def _build_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fraudstream")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["build", "--events", "e", "--labels", "l", "--out", "o", *argv])


def test_build_takes_a_recipe(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "r"\n[build]\nbase = "tiny"\nseed = 5\nthreads = 1\n')
    cfg = cli._build_config(_build_args("--recipe", str(recipe)))
    assert (cfg.T, cfg.seed, cfg.threads) == (TINY.T, 5, 1)
    assert cli._build_config(_build_args("--recipe", str(recipe), "--seed", "2")).seed == 2
    assert cli._build_config(_build_args("--tiny")) == TINY
    with pytest.raises(CommandError, match="one of them"):
        cli._build_config(_build_args("--tiny", "--recipe", str(recipe)))
    recipe.write_text("[build]\nbogus = 1\n")
    with pytest.raises(CommandError, match="bogus"):
        cli._build_config(_build_args("--recipe", str(recipe)))


def _script(name: str) -> ModuleType:
    sys.path.insert(0, str(BUILD))  # the scripts import each other, as when run
    try:
        spec = importlib.util.spec_from_file_location(f"build_script_{name}", BUILD / name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BUILD))


def _evaluated(**fraud: Any) -> dict[str, Any]:
    ranked = {"pr_auc": 0.851, "n": 10, "positives": 2}
    delay = {"median_seconds": 133.4, "median_events": 6.5}
    return {
        "fraud": {"precision": 1.0, "recall": 0.375, "cases": 16, "per_decision": ranked,
                  "delay": delay, "alerts_per_1000_users_per_day": 0.4, **fraud},
        "brushing": {"precision": 0.4444, "recall": 0.8, "cases": 5, "per_order": ranked,
                     "per_seller": {**ranked, "pr_auc": 0.6}, "delay": delay,
                     "alerts_per_1000_users_per_day": 0.91},
        "churn": {"precision": 0.08, "recall": 0.7652, "cases": 115, "per_user": ranked,
                  "delay": {"median_seconds": 3.7 * 86_400}, "alerts_per_1000_users_per_day": 35.2},
    }  # fmt: skip


def test_results_rows_read_as_docs_results() -> None:
    table = _script("results_table.py")
    rules, bundle = _evaluated(), _evaluated(precision=0.94)
    runs = [("rules", rules), ("243k bundle + rules", bundle)]
    fraud = "| 6 of 16 users | 0.85 | 0.40 | 133 s, 6.5 events |"
    assert list(table.detection_rows(runs, "fraud")) == [
        "| fraud (per decision event) | rules | 1.00 " + fraud,
        "| | 243k bundle + rules | 0.94 " + fraud,
    ]
    assert list(table.detection_rows([("rules", rules)], "brushing")) == [
        "| brushing (per order / per seller) | rules | 0.44 | 4 of 5 sellers | 0.85 / 0.60 "
        "| 0.91 |  |"
    ]
    assert list(table.detection_rows([("rules", rules)], "churn")) == [
        "| churn (per user) | rules | 0.08 | 88 of 115 | 0.85 | 35 | 3.7 days |"
    ]
