"""Build configurations: the default (about 1M events in under 30 minutes on 2 cores) and
``tiny`` for tests (well under 2 minutes), and recipe files that name one of them and
change some settings (build/recipes/*.toml, the ``[build]`` table)."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream.core.timeutil import HOUR_MS


@dataclass(frozen=True)
class BuildConfig:
    T: int = 32
    teacher: tuple[int, int, int, int] = (128, 4, 4, 512)  # d, layers, heads, ff
    student: tuple[int, int, int, int] = (48, 2, 4, 96)
    # Training windows per epoch: every positive, negatives sampled up to this cap.
    max_train: int = 120_000
    max_pretrain: int = 40_000
    pretrain_epochs: float = 1.0
    teacher_epochs: float = 3.0
    student_epochs: float = 8.0
    teacher_lr: float = 5e-4
    student_lr: float = 2e-3
    batch: int = 256
    distill_alpha: float = 0.3
    distill_temp: float = 2.0
    # Churn time scales of the shop: "churned" is no activity for the horizon, and the
    # stream's churn clock ticks every interval (a daily-visit marketplace and a shop whose
    # customers buy every few months need different ones).
    churn_horizon_days: float = 30.0
    churn_interval_hours: float = 24.0
    val_frac: float = 0.1
    test_frac: float = 0.2
    target_precision: float = 0.9
    # The fraud threshold is chosen for target_precision of alerts, as the stream raises
    # them: one per user per cooldown (the worker's default fraud cooldown).
    fraud_cooldown_ms: int = HOUR_MS
    # ... measured on at least this many validation alerts; fewer measure nothing, and the
    # calibrated probability stands in (see calibrate.raise_for_alerts).
    min_val_alerts: int = 10
    alert_budget: float = 0.005
    lgbm_estimators: int = 300
    # A kind goes to the model only if the streaming rules do not rank the validation days
    # better than the student; otherwise the rules keep it and the manifest says why.
    rules_gate: bool = True
    threads: int = 2
    seed: int = 0
    name: str = "default"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


TINY = BuildConfig(
    T=16,
    teacher=(64, 2, 4, 128),
    student=(16, 1, 2, 32),
    max_train=3_000,
    max_pretrain=2_000,
    pretrain_epochs=1.0,
    teacher_epochs=3.0,
    student_epochs=4.0,
    teacher_lr=2e-3,
    student_lr=5e-3,
    batch=128,
    lgbm_estimators=60,
    name="tiny",
)

PRESETS: dict[str, BuildConfig] = {"default": BuildConfig(), "tiny": TINY}


def config_from_recipe(path: Path) -> BuildConfig:
    """The ``[build]`` table of a recipe file: ``base`` names a preset (default "default"),
    every other key replaces that field of it. Raises ValueError naming the file."""
    try:
        with path.open("rb") as f:
            recipe = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    table = recipe.get("build", {})
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [build] must be a table")
    return config_from_table(table, str(path))


def config_from_table(table: Mapping[str, Any], source: str = "recipe") -> BuildConfig:
    settings = dict(table)
    base_name = settings.pop("base", "default")
    if base_name not in PRESETS:
        raise ValueError(f"{source}: base must be one of {sorted(PRESETS)}, got {base_name!r}")
    base = PRESETS[base_name]
    unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(BuildConfig)})
    if unknown:
        raise ValueError(f"{source}: unknown build settings {unknown}")
    changes = {k: _setting(k, v, getattr(base, k), source) for k, v in settings.items()}
    return dataclasses.replace(base, **changes)


def _setting(name: str, value: Any, like: Any, source: str) -> Any:
    """``value`` as the type of the preset's ``like``: TOML has arrays where the config has
    tuples, and integers are fine where it takes floats (but booleans are not numbers)."""
    if isinstance(like, tuple) and isinstance(value, list) and len(value) == len(like):
        if all(_is_int(v) for v in value):
            return tuple(value)
    elif isinstance(like, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(like, float):
        if _is_int(value) or isinstance(value, float):
            return float(value)
    elif isinstance(like, int):
        if _is_int(value):
            return value
    elif isinstance(like, str) and isinstance(value, str):
        return value
    raise ValueError(f"{source}: {name} = {value!r} is not like the preset's {like!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
