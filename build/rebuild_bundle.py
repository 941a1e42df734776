#!/usr/bin/env python3
"""Rebuild a model bundle from a recipe: simulate its training data with the recipe's
seed, users and days, then run ``fraudstream build --recipe`` on it.

    python build/rebuild_bundle.py build/recipes/243k.toml [--out build/out/243k] [--ship]

``--ship`` then makes it the bundle that ships with the package (model/bundles/default);
``--tiny`` builds the recipe's data with the tiny preset, a smoke run that CI makes.

Writes OUT/data/events.jsonl, OUT/data/labels.jsonl and the bundle OUT/bundle, and prints
the bundle's version and test-day PR-AUCs. The bundles docs/results.md cites were built
with the libraries of build/constraints.txt (``pip install -e . -c build/constraints.txt``);
other versions train slightly different weights.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

BUILD_DIR = Path(__file__).resolve().parent
SIM_KEYS = ("seed", "users", "days")


def read_recipe(path: Path) -> dict[str, Any]:
    """A recipe's tables; its ``[data]`` must give the simulator's seed, users and days."""
    with path.open("rb") as f:
        recipe = tomllib.load(f)
    data = recipe.get("data", {})
    missing = [k for k in SIM_KEYS if not isinstance(data.get(k), int)]
    if missing:
        raise SystemExit(f"{path}: [data] needs integer {', '.join(missing)}")
    recipe.setdefault("name", path.stem)
    return recipe


def fraudstream(*args: str) -> str:
    """Run the project's CLI with this interpreter; its stdout (JSON for these commands)."""
    cmd = [sys.executable, "-m", "stream.cli", *args]
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def generate(data: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Simulate ``data``'s market into ``out``; warn when it no longer gives the event count
    the recipe recorded (the simulator changed, so the bundle will differ)."""
    out.mkdir(parents=True, exist_ok=True)
    events, labels = out / "events.jsonl", out / "labels.jsonl"
    flags = [f"--{k}={data[k]}" for k in SIM_KEYS]
    if "profile" in data:  # the simulator's rare-buyer profile, say
        flags.append(f"--profile={data['profile']}")
    summary = json.loads(
        fraudstream("generate", "--out", str(events), "--labels-out", str(labels), *flags)
    )
    expected = data.get("events")
    if expected is not None and summary["events"] != expected:
        print(
            f"warning: the simulator gave {summary['events']} events, the recipe records "
            f"{expected}: the data, and so the bundle, differ",
            file=sys.stderr,
        )
    return events, labels


def build(recipe_path: Path, events: Path, labels: Path, out: Path) -> dict[str, Any]:
    """``fraudstream build --recipe``; its report (version, path, metrics)."""
    paths = ["--recipe", recipe_path, "--events", events, "--labels", labels, "--out", out]
    report: dict[str, Any] = json.loads(fraudstream("build", *map(str, paths), "--no-progress"))
    return report


def summarise(report: dict[str, Any]) -> str:
    lines = [f"bundle {report['version']} at {report['out']}"]
    for kind, res in sorted(report["metrics"].get("test", {}).items()):
        aucs = {who: res[who]["pr_auc"] for who in ("teacher", "student", "lightgbm")}
        lines.append(
            f"  {kind}: test-day PR-AUC "
            + ", ".join(f"{who} {auc:.3f}" for who, auc in aucs.items() if auc is not None)
        )
    return "\n".join(lines)


def tiny_recipe(recipe_path: Path, recipe: dict[str, Any], out: Path) -> Path:
    """The recipe with its ``[build]`` on the tiny preset: proves the recipe still runs,
    in a minute or two, without claiming its bundle."""
    table = {**recipe.get("build", {}), "base": "tiny"}
    lines = [f"# {recipe_path.name} at tiny scale", f'name = "{recipe["name"]}-tiny"', "[build]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    path = out / "recipe-tiny.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ship(bundle_dir: Path, recipe_name: str) -> Path:
    """Copy what scoring needs (the student's graphs and weights, the manifest) into the
    package's shipped bundle, recording the recipe; the teacher's weights stay behind."""
    sys.path.insert(0, str(BUILD_DIR.parent))
    from model.bundle import load_bundle, write_bundle
    from model.shipped import SHIPPED_DIR

    bundle = load_bundle(bundle_dir)
    manifest = {k: v for k, v in bundle.manifest.items() if k not in ("files", "version")}
    student = manifest["student"]
    names = [student["onnx"], student["onnx_int8"], student["weights"]]
    manifest["recipe"] = recipe_name
    manifest["built_as"] = bundle.version  # the full bundle's version, teacher included
    manifest["teacher"] = {**manifest["teacher"], "weights": None}
    shipped = write_bundle(SHIPPED_DIR, {n: bundle.path / n for n in names}, manifest)
    size = sum(f.stat().st_size for f in SHIPPED_DIR.iterdir())
    print(f"shipped bundle {shipped.version} at {SHIPPED_DIR} ({size / 1e6:.1f} MB)")
    return SHIPPED_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", type=Path, help="a recipe file, e.g. build/recipes/243k.toml")
    parser.add_argument("--out", type=Path, default=None, help="default build/out/<name>")
    parser.add_argument(
        "--tiny", action="store_true", help="the recipe's data, the tiny build preset"
    )
    parser.add_argument(
        "--ship", action="store_true", help="then make it the package's shipped bundle"
    )
    args = parser.parse_args(argv)
    if args.tiny and args.ship:
        parser.error("--tiny builds are smoke runs: they are not shipped")
    recipe = read_recipe(args.recipe)
    out = args.out or BUILD_DIR / "out" / recipe["name"]
    events, labels = generate(recipe["data"], out / "data")
    recipe_path = tiny_recipe(args.recipe, recipe, out) if args.tiny else args.recipe
    print(summarise(build(recipe_path, events, labels, out / "bundle")))
    if args.ship:
        ship(out / "bundle", recipe["name"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
