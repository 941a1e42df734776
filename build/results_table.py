#!/usr/bin/env python3
"""Regenerate the rows of docs/results.md for one bundle: backtest it (and, with --rules,
the rules alone) on the held-out file, evaluate, and print markdown table rows.

    python build/results_table.py --bundle build/out/243k/bundle --name 243k [--rules]
        [--events test.jsonl --labels test.labels.jsonl]

Without --events and --labels the held-out file of build/heldout.toml is simulated into
build/out/heldout first. Prints the rows of "The model against the rules" and of "Inside
a build: the test days" (from the bundle's manifest).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rebuild_bundle import BUILD_DIR, fraudstream, generate, read_recipe

from stream.core.timeutil import DAY_S

KIND_LABELS = {
    "fraud": "fraud (per decision event)",
    "brushing": "brushing (per order / per seller)",
    "churn": "churn (per user)",
}
CASES = {"fraud": "users", "brushing": "sellers", "churn": ""}


def evaluate(events: Path, labels: Path, bundle: Path | None) -> dict[str, Any]:
    """``fraudstream backtest`` (with ``bundle``, if any) then ``fraudstream evaluate``."""
    with tempfile.TemporaryDirectory() as tmp:
        alerts, scores = Path(tmp) / "alerts.jsonl", Path(tmp) / "scores.jsonl"
        model = ["--model", str(bundle)] if bundle is not None else ["--rules-only"]
        fraudstream(
            "backtest",
            "--events",
            str(events),
            "--alerts-out",
            str(alerts),
            "--scores-out",
            str(scores),
            *model,
        )
        report: dict[str, Any] = json.loads(
            fraudstream(
                "evaluate",
                "--labels",
                str(labels),
                "--alerts",
                str(alerts),
                "--scores",
                str(scores),
            )
        )
    return report


def _two(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def _rate(x: float) -> str:
    """Alerts per 1,000 users per day, to two significant figures as the tables give them."""
    return f"{x:.2f}" if x < 1 else f"{x:.1f}" if x < 10 else f"{x:.0f}"


def _recall(res: dict[str, Any], kind: str) -> str:
    found = round((res["recall"] or 0.0) * res["cases"])
    return f"{found} of {res['cases']} {CASES[kind]}".rstrip()


def _pr_auc(res: dict[str, Any], kind: str) -> str:
    if kind == "brushing":
        return f"{_two(res['per_order']['pr_auc'])} / {_two(res['per_seller']['pr_auc'])}"
    return _two(res["per_decision" if kind == "fraud" else "per_user"]["pr_auc"])


def _delay(res: dict[str, Any], kind: str) -> str:
    delay = res.get("delay", {})
    if kind == "brushing" or delay.get("median_seconds") is None:
        return ""  # a ring's first fake order is days before it can be told apart
    if kind == "churn":
        return f"{delay['median_seconds'] / DAY_S:.1f} days"
    return f"{delay['median_seconds']:.0f} s, {delay['median_events']:g} events"


def detection_rows(runs: list[tuple[str, dict[str, Any]]], kind: str) -> Iterator[str]:
    """One row per (detector, evaluate report): alert precision, recall, PR-AUC, alert
    rate and median delay of ``kind``; the kind is named on its first row only."""
    for i, (detector, report) in enumerate(runs):
        res = report[kind]
        cells = [
            _two(res["precision"]),
            _recall(res, kind),
            _pr_auc(res, kind),
            _rate(res["alerts_per_1000_users_per_day"]),
            _delay(res, kind),
        ]
        label = f"| {KIND_LABELS[kind]} |" if i == 0 else "| |"
        yield f"{label} {detector} | " + " | ".join(cells) + " |"


def test_day_rows(manifest: dict[str, Any], name: str) -> Iterator[str]:
    """The build's own test days per kind: PR-AUC of each detector the build compared."""
    tested = manifest["metrics"]["test"]
    for kind in (k for k in KIND_LABELS if k in tested):
        res = tested[kind]
        n, positives = int(res["student"]["n"]), int(res["student"]["positives"])
        aucs = [
            res.get(who, {}).get("pr_auc")
            for who in ("teacher", "student", "student_int8", "lightgbm", "rules")
        ]
        cells = ["" if auc is None else f"{auc:.3f}" for auc in aucs]
        yield f"| {kind} | {name} ({positives:,} of {n:,}) | " + " | ".join(cells) + " |"


def heldout() -> tuple[Path, Path]:
    recipe = read_recipe(BUILD_DIR / "heldout.toml")
    return generate(recipe["data"], BUILD_DIR / "out" / "heldout")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="model bundle directory")
    parser.add_argument("--name", default=None, help="the bundle's name in the tables")
    parser.add_argument("--events", type=Path, help="held-out events (with --labels)")
    parser.add_argument("--labels", type=Path, help="held-out labels (with --events)")
    parser.add_argument("--rules", action="store_true", help="also the rules without a model")
    args = parser.parse_args(argv)
    if (args.events is None) != (args.labels is None):
        parser.error("--events and --labels go together")
    events, labels = (args.events, args.labels) if args.events else heldout()
    manifest = json.loads((args.bundle / "manifest.json").read_text(encoding="utf-8"))
    name = args.name or args.bundle.name
    rules = [("rules", evaluate(events, labels, None))] if args.rules else []
    report = evaluate(events, labels, args.bundle)
    for kind in KIND_LABELS:
        for row in detection_rows([*rules, *_bundle_run(manifest, name, kind, report)], kind):
            print(row)
    print()
    print("\n".join(test_day_rows(manifest, name)))
    return 0


def _bundle_run(
    manifest: dict[str, Any], name: str, kind: str, report: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """Fraud alerts come from the bundle and the rules together; a kind the bundle leaves
    to the rules has no row of its own."""
    if kind == "fraud":
        return [(f"{name} bundle + rules", report)]
    if manifest["kinds"][kind]["source"] != "model":
        return []
    return [(f"{name} bundle", report)]


if __name__ == "__main__":
    sys.exit(main())
