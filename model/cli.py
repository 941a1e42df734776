"""Command-line entry points of the model package: ``build`` and ``bench model``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from stream.core.cliutil import CommandError, add_option
from stream.core.extras import require

if TYPE_CHECKING:
    from model.config import BuildConfig


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _register_build(subparsers)
    bench = subparsers.add_parser("bench", help="benchmarks")
    register_bench(bench.add_subparsers(dest="bench_command", required=True))


def _register_build(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "build",
        help="train, distill, calibrate and export a model bundle",
        description="Train the teacher, distill the student, calibrate, export ONNX and "
        "write a verified model bundle; prints the bundle's metrics as JSON.",
    )
    add_option(p, "--events", type=Path, required=True, help="events JSON Lines file")
    add_option(p, "--labels", type=Path, required=True, help="labels JSON Lines file")
    add_option(p, "--out", type=Path, required=True, help="bundle directory to write")
    add_option(p, "--tiny", action="store_true", help="tiny configuration (tests, smoke runs)")
    add_option(
        p,
        "--recipe",
        type=Path,
        default=None,
        help="instead of --tiny: the settings of a recipe file's [build] table "
        "(build/recipes/*.toml)",
    )
    add_option(
        p, "--seed", type=int, default=None, help="random seed (default: the recipe's, or 0)"
    )
    add_option(
        p,
        "--churn-horizon-days",
        type=float,
        default=None,
        help="churn horizon in days (default: the recipe's, or 30)",
    )
    add_option(
        p,
        "--churn-interval-hours",
        type=float,
        default=None,
        help="churn clock interval in hours (default: the recipe's, or 24)",
    )
    add_option(p, "--threads", type=int, default=None, help="CPU threads for training")
    add_option(
        p,
        "--no-rules-gate",
        action="store_true",
        help="give the model every kind it trained, even where the streaming rules rank "
        "the validation days better",
    )
    add_option(p, "--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_build)


def register_bench(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``model`` under an existing ``bench`` command's subparsers."""
    p = subparsers.add_parser(
        "model",
        help="scorer throughput and latency per backend, as JSON",
        description="Sequences/s and batch latency p50/p99 of each scorer backend.",
    )
    add_option(p, "--model", type=Path, required=True, help="model bundle directory")
    add_option(
        p,
        "--backends",
        default=None,
        help="comma-separated: torch,onnx,onnx-int8,tensorrt (default: all available)",
    )
    add_option(p, "--batches", default="1,32,256", help="comma-separated batch sizes")
    add_option(p, "--seq-lens", default="32,64", help="comma-separated sequence lengths")
    add_option(p, "--threads", type=int, default=2, help="CPU threads per backend")
    add_option(p, "--seconds", type=float, default=1.0, help="minimum seconds per cell")
    p.set_defaults(func=_bench_model)


def _ints(text: str, flag: str, hi: int) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CommandError(f"{flag} takes comma-separated integers, got {text!r}") from None
    if not values or not all(1 <= v <= hi for v in values):
        raise CommandError(f"{flag} values must be in 1..{hi}, got {text!r}")
    return values


def _build(args: argparse.Namespace) -> int:
    require("fraudstream build", "torch", "transformers", "safetensors", "onnx", "lightgbm", "tqdm")
    from model.build import run_build

    for flag, path in (("--events", args.events), ("--labels", args.labels)):
        if not Path(path).is_file():
            raise CommandError(f"{flag} {path}: no such file")
    cfg = _build_config(args)
    try:
        bundle, metrics = run_build(
            args.events,
            args.labels,
            args.out,
            cfg,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(
        json.dumps(
            {"version": bundle.version, "out": str(bundle.path), "metrics": metrics}, indent=2
        )
    )
    return 0


def _build_config(args: argparse.Namespace) -> BuildConfig:
    """The preset or recipe the flags name, with the flags' own settings on top."""
    from model.config import TINY, BuildConfig, config_from_recipe

    if args.recipe is not None:
        if args.tiny:
            raise CommandError("--tiny and --recipe: give one of them")
        try:
            cfg = config_from_recipe(Path(args.recipe))
        except ValueError as exc:
            raise CommandError(f"--recipe {exc}") from None
    else:
        cfg = TINY if args.tiny else BuildConfig()
    if args.seed is not None:
        cfg = replace(cfg, seed=args.seed)
    if args.churn_horizon_days is not None:
        cfg = replace(cfg, churn_horizon_days=args.churn_horizon_days)
    if args.churn_interval_hours is not None:
        cfg = replace(cfg, churn_interval_hours=args.churn_interval_hours)
    if args.threads is not None:
        cfg = replace(cfg, threads=args.threads)
    if args.no_rules_gate:
        cfg = replace(cfg, rules_gate=False)
    return cfg


def _bench_model(args: argparse.Namespace) -> int:
    from model.bench import available_backends, bench_model
    from model.bundle import BundleError
    from model.features import MAX_T
    from model.scorer import BACKENDS

    backends = args.backends.split(",") if args.backends else available_backends()
    unknown = [b for b in backends if b not in BACKENDS or b == "auto"]
    if unknown:
        raise CommandError(f"--backends: unknown backend(s) {', '.join(unknown)}")
    batches = _ints(args.batches, "--batches", 65_536)
    seq_lens = _ints(args.seq_lens, "--seq-lens", MAX_T)
    try:
        report = bench_model(args.model, backends, batches, seq_lens, args.threads, args.seconds)
    except BundleError as exc:
        raise CommandError(str(exc)) from None
    print(json.dumps(report, indent=2))
    return 0
