"""``fraudstream generate`` (and the registration of ``fraudstream replay``)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from stream.core.cliutil import CommandError, add_option
from stream.offline import replay
from stream.simulate.config import PROFILES, SimConfig
from stream.simulate.new_pattern import PatternConfig, add_new_pattern
from stream.simulate.writer import generate_files

_DEFAULTS = SimConfig()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``generate`` and ``replay`` commands."""
    parser = subparsers.add_parser(
        "generate",
        help="write labelled synthetic marketplace traffic",
        description="Simulate a marketplace (honest shoppers, fraud, brushing, churn) and "
        "write its events, sorted by ts, and their ground-truth labels as "
        "JSON Lines. Prints a JSON summary to stdout.",
    )
    add_option(parser, "--out", type=Path, required=True, help="events file to write")
    add_option(
        parser,
        "--profile",
        choices=PROFILES,
        default="marketplace",
        help="marketplace: daily visitors (default); rare: a cohort of rare buyers over a "
        "year (defaults: 365 days, 2 visits a year, buy-till-you-die churn)",
    )
    add_option(parser, "--labels-out", type=Path, required=True, help="labels file to write")
    add_option(parser, "--users", type=int, default=_DEFAULTS.users, help="simulated users")
    add_option(
        parser, "--days", type=int, default=None, help="simulated days (default 14; rare: 365)"
    )
    add_option(parser, "--seed", type=int, default=_DEFAULTS.seed, help="random seed")
    add_option(
        parser,
        "--start",
        type=_parse_start,
        default=None,
        help="first simulated day, YYYY-MM-DD (UTC) or RFC 3339 (default 2026-11-16; "
        "rare: 2025-11-17)",
    )
    add_option(
        parser,
        "--sellers",
        type=int,
        default=None,
        help="number of sellers (default: users / 12, at least 20)",
    )
    add_option(
        parser,
        "--sessions-per-day",
        type=float,
        default=None,
        help="mean sessions per user per day (default 1; rare: 2/365)",
    )
    add_option(
        parser,
        "--conversion-rate",
        type=float,
        default=None,
        help="share of ordinary sessions ending in a purchase (default 0.05; rare: 0.6)",
    )
    add_option(
        parser,
        "--fraud-rate",
        type=float,
        default=None,
        help="share of users involved in fraud (default 0.008; rare: 0.002)",
    )
    add_option(
        parser,
        "--brushing-share",
        type=float,
        default=_DEFAULTS.brushing_order_share,
        help="fake orders as a share of all purchases",
    )
    add_option(
        parser,
        "--churn-rate",
        type=float,
        default=None,
        help="share of users who fade out and stop (default 0.06; rare: none, users leave "
        "after a visit instead)",
    )
    add_option(
        parser,
        "--new-fraud-from-day",
        type=int,
        help="from this day on, a fraud pattern unseen before (gift-card cash-out, "
        "stream/simulate/new_pattern.py)",
    )
    add_option(parser, "--new-fraud-cases", type=int, default=40, help="its cases")
    parser.set_defaults(func=run)
    replay.register(subparsers)


def _parse_start(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date or RFC 3339 date-time") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def config_from_args(args: argparse.Namespace) -> SimConfig:
    given = {
        "days": args.days,
        "sessions_per_user_day": args.sessions_per_day,
        "conversion_rate": args.conversion_rate,
        "fraud_rate": args.fraud_rate,
        "churn_rate": args.churn_rate,
        "start": args.start,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    changes.update(
        users=args.users,
        seed=args.seed,
        sellers=args.sellers,
        brushing_order_share=args.brushing_share,
    )
    try:
        if getattr(args, "profile", "marketplace") == "rare":
            return SimConfig.rare_buyers(**changes)
        return SimConfig(**changes)
    except ValueError as exc:
        raise CommandError(f"invalid simulation parameters: {exc}") from None


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    out, labels_out = Path(args.out), Path(args.labels_out)
    if out.resolve() == labels_out.resolve():
        raise CommandError("--out and --labels-out must be different files")
    try:
        for path in (out, labels_out):
            path.parent.mkdir(parents=True, exist_ok=True)
        stats = generate_files(out, labels_out, config)
        if args.new_fraud_from_day is not None:
            pattern = PatternConfig(args.new_fraud_from_day, args.new_fraud_cases, seed=args.seed)
            print(f"generate: new pattern {add_new_pattern(out, labels_out, pattern)}",
                  file=sys.stderr)  # fmt: skip
    except ValueError as exc:
        raise CommandError(f"--new-fraud-from-day: {exc}") from None
    except OSError as exc:
        raise CommandError(f"cannot write {exc.filename or out}: {exc.strerror}") from None
    print(
        f"generate: {stats.events} events, {stats.labels} labels in {stats.seconds:.1f} s "
        f"({stats.events_per_s:,.0f} events/s)",
        file=sys.stderr,
    )
    print(
        orjson.dumps(
            {
                **stats.as_dict(),
                "out": str(out),
                "labels_out": str(labels_out),
                "config": config.describe(),
            }
        ).decode()
    )
    return 0
