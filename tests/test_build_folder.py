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


def _s(median: float, low: float, high: float) -> dict[str, float]:
    return {"median": median, "min": low, "max": high}


def _bench_result() -> dict[str, Any]:
    """A fixed ``python -m stream.bench`` output: two runs, rules only, one rate."""
    gc_figures = {
        "collections": _s(1, 1, 2),
        "full_collections": _s(0, 0, 0),
        "over_10ms": _s(0, 0, 1),
        "longest_under_ms": _s(5, 2, 25),
        "cpu_over_10ms": _s(0, 0, 0),
        "cpu_longest_under_ms": _s(2, 2, 2),
    }
    return {
        "command": "python -m stream.bench --runs 2 --rules-only --rates 3000",
        "date": "2026-12-02 15:00 UTC", "minutes": 4.2,
        "machine": {"nproc": 2, "load_avg_before": [1.5, 2.25, 3.0],
                    "load_avg_after": [2.0, 2.0, 2.0],
                    "pinning": "worker, pass-through agent and consumer loop on cpu 1"},
        "events": 50000, "partitions": 8, "runs": 2, "rates": [3000.0], "seconds": 20.0,
        "model": None,
        "drain_events_per_s": {"consumer_loop": _s(500123.4, 400000, 600000),
                               "faust_passthrough": _s(12000, 11000, 13000),
                               "worker_rules": _s(6000.4, 6000.4, 6000.4)},
        "ratios": {"worker_rules_vs_faust_passthrough": _s(0.5, 0.46, 0.545),
                   "worker_rules_vs_consumer_loop": _s(0.012, 0.01, 0.015)},
        "latency": {"worker_rules": {"3000": {
            "p50_ms": _s(26.04, 20.5, 31), "p99_ms": _s(201, 150, 2040),
            "p999_ms": _s(1500, 1500, 1500), "max_ms": _s(1500, 1500, 1500),
            "alerts": _s(40, 38, 42), "offered_events_per_s": _s(2990, 2980, 3000),
            "lag_grew_runs": 1, "lag_end": _s(10, 0, 5000)}}},
        "gc": {"worker_rules": {"drain": gc_figures, "latency_runs": gc_figures}},
    }  # fmt: skip


def test_bench_tables_render_medians_and_ranges() -> None:
    table = _script("bench_table.py")
    block = table.render(_bench_result(), "python build/bench_table.py --json b.json")
    lines = block.splitlines()
    assert lines[0] == table.BEGIN and lines[-1] == table.END
    assert "`python -m stream.bench --runs 2 --rules-only --rates 3000`" in lines[1]
    assert "2026-12-02 15:00 UTC" in lines[1]
    assert "2 cores" in block and "1.5 / 2.2 / 3.0 before the run" in block
    assert "| bare confluent-kafka consumer loop | 500,123 [400,000–600,000] |  |  |" in lines
    assert "| worker, rules | 6,000 | 0.50x [0.46–0.55] | 0.012x [0.010–0.015] |" in lines
    assert (
        "| worker, rules | 3,000 | 40 [38–42] | 26 ms [20 ms–31 ms] | 201 ms [150 ms–2.0 s] "
        "| 1.5 s | 1 of 2 |"
    ) in lines
    assert (
        "| worker, rules | drain | 1 [1–2] | 0 | 0 [0–1] | ≤ 5 ms [≤ 2 ms–≤ 25 ms] | 0 | ≤ 2 ms |"
    ) in lines


def test_bench_tables_replace_only_the_marked_block() -> None:
    table = _script("bench_table.py")
    doc = f"# B\n\nbefore\n\n{table.BEGIN}\nold table\n{table.END}\n\nafter\n"
    new = table.replace_block(doc, f"{table.BEGIN}\nnew\n{table.END}")
    assert new == f"# B\n\nbefore\n\n{table.BEGIN}\nnew\n{table.END}\n\nafter\n"
    with pytest.raises(SystemExit, match="exactly one"):
        table.replace_block("no markers", "x")
