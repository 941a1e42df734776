"""The default model bundle that ships with the package, and how commands choose a bundle.

``fraudstream up``, ``worker`` and ``backtest`` score with the shipped bundle unless given
``--model DIR`` (another bundle) or ``--rules-only`` (none). It is built by a recipe in
``build/recipes`` (``python build/rebuild_bundle.py build/recipes/243k.toml --ship``) and
carries only what scoring needs: the student's ONNX graphs and weights and the manifest.
"""

from __future__ import annotations

from pathlib import Path

from model.bundle import MANIFEST, peek_manifest
from stream.core.cliutil import CommandError

SHIPPED_DIR = Path(__file__).with_name("bundles") / "default"


def shipped_bundle() -> Path:
    """The shipped bundle's directory; a clear error when this install lacks it."""
    if not (SHIPPED_DIR / MANIFEST).is_file():
        raise CommandError(
            f"the default model bundle is missing from this install ({SHIPPED_DIR}); "
            "give --model DIR or --rules-only"
        )
    return SHIPPED_DIR


def choose_bundle(model: str | Path | None, rules_only: bool) -> Path | None:
    """The bundle a command scores with: ``--model``, else the shipped one; None for
    ``--rules-only``."""
    if rules_only:
        if model:
            raise CommandError("--model and --rules-only: give one of them")
        return None
    if model:
        return Path(model)
    return shipped_bundle()


def describe(bundle: Path | None) -> str:
    """One line saying what scores: which bundle (and whether it is the shipped one)."""
    if bundle is None:
        return "no model: the rules score every kind"
    manifest = peek_manifest(bundle) or {}
    version = manifest.get("version", "unreadable")
    if bundle.resolve() == SHIPPED_DIR.resolve():
        recipe = manifest.get("recipe", "unknown")
        return f"model bundle {version} (shipped default, recipe {recipe}) at {bundle}"
    return f"model bundle {version} at {bundle}"
