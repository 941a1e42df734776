"""``fraudstream retrain``: a challenger bundle from the recent history and the analysts'
verdicts, promoted over the champion only when it is better.

1. History: an events file, or a Kafka topic's retained events (``--from-topic``). The last
   ``--holdout-days`` of event time are kept out of training.
2. Labels: the labels files, with the analysts' verdicts applied (confirmed cases added,
   false positives removed): verdicts read from the ``feedback`` topic itself
   (``--feedback-topic``, every partition, so a verdict kept by any worker counts) and/or
   the files the workers keep (``--feedback``, their ``feedback.jsonl``).
3. Challenger: ``fraudstream build`` with the champion's recipe on the history before the
   holdout, its teacher starting from the champion's (fine-tuning; the older days of the
   history are trained on again, so old patterns are not forgotten).
4. Both bundles run the backtest over the whole history and are judged on the holdout
   days (``stream.offline.holdout``): promoted only when the challenger's PR-AUC is better
   and no alert precision, judged on the alerts with a verdict, is worse, by the bundle
   switch that hot reload follows.

``--every 24h`` repeats it; ``--metrics-port`` serves the runs, promotions and both
sides' scores for Prometheus.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from stream.core.cliutil import CommandError, add_option
from stream.core.feedback import Feedback, apply_to_labels, read_feedback, read_verdicts
from stream.core.timeutil import DAY_MS, format_ts
from stream.offline.holdout import KINDS, MIN_JUDGED, Scorecard, Truth, score_bundle, verdict
from stream.offline.replay import iter_in_time_order

if TYPE_CHECKING:
    from model.config import BuildConfig


@dataclass(frozen=True)
class RetrainJob:
    events: Path
    labels: list[Path]
    feedback: list[Path]
    champion: Path
    holdout_days: float = 2.0
    backend: str = "auto"
    # Verdicts read elsewhere (the feedback topic), with those of the ``feedback`` files.
    verdicts: tuple[Feedback, ...] = ()
    min_judged: int = MIN_JUDGED


class RetrainMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.runs = Counter("fraudstream_retrain_runs", "Retraining runs", registry=r)
        self.promotions = Counter(
            "fraudstream_retrain_promotions", "Challengers promoted over the champion", registry=r
        )
        self.pr_auc = Gauge(
            "fraudstream_retrain_pr_auc", "PR-AUC on the holdout days", ["side", "kind"], registry=r
        )
        self.precision = Gauge(
            "fraudstream_retrain_alert_precision",
            "Alert precision on the holdout days",
            ["side", "kind"],
            registry=r,
        )
        self.judged = Gauge(
            "fraudstream_retrain_judged_alerts",
            "Alerts with a verdict on the holdout days (their precision's base)",
            ["side", "kind"],
            registry=r,
        )
        self.seconds = Gauge("fraudstream_retrain_seconds", "Last run's duration", registry=r)

    def record(self, report: dict[str, Any], sides: dict[str, Scorecard]) -> None:
        self.runs.inc()
        if report["promoted"]:
            self.promotions.inc()
        for side, card in sides.items():
            for kind in KINDS:
                for gauge, value in (
                    (self.pr_auc, card.pr_auc),
                    (self.precision, card.alert_precision),
                ):
                    if value.get(kind) is not None:
                        gauge.labels(side, kind).set(value[kind] or 0.0)
                if kind in card.judged:
                    self.judged.labels(side, kind).set(card.judged[kind])
        self.seconds.set(report["seconds"]["total"])


def merged_labels(
    labels: list[Path], feedback: list[Path], extra: tuple[Feedback, ...] = ()
) -> tuple[list[dict[str, Any]], list[Feedback]]:
    """The labels files with the verdicts applied, and the verdicts (one per id: a verdict
    kept by a worker's file and read from the topic counts once)."""
    rows: list[dict[str, Any]] = []
    for path in labels:
        with open(path, "rb") as lines:
            rows.extend(orjson.loads(line) for line in lines if line.strip())
    verdicts: dict[str, Feedback] = {fb.id: fb for fb in extra}
    for path in feedback:
        verdicts.update((fb.id, fb) for fb in read_feedback(path))
    return apply_to_labels(rows, list(verdicts.values())), list(verdicts.values())


def topic_verdicts(
    broker: str, topic: str, tmp: str, client_config: dict[str, str] | None = None
) -> tuple[list[Feedback], int]:
    """Every verdict retained on the ``feedback`` topic (all partitions, whichever worker
    kept them), one per id, and how many records were skipped as invalid (the worker
    dead-letters those)."""
    from stream.offline.topic_history import export_topic

    copy = Path(tmp) / "feedback-topic.jsonl"
    export_topic(broker, topic, copy, None, None, client_config, flag="--feedback-topic")
    return read_verdicts(copy, skip_invalid=True)


def split_history(events: Path, holdout_days: float, out: Path, tmp: str) -> tuple[int, int]:
    """Write the events before the holdout days to ``out``; return the first event's time
    and the cutoff (epoch ms)."""
    ordered = list(iter_in_time_order(events, tmp))
    if not ordered:
        raise CommandError(f"{events}: no events")
    cutoff = ordered[-1][0] - int(holdout_days * DAY_MS)
    with open(out, "wb") as train:
        for ts, _, _, line in ordered:
            if ts < cutoff:
                train.write(line.rstrip(b"\n") + b"\n")
    return ordered[0][0], cutoff


def challenger_config(cfg: BuildConfig, first_ms: int, cutoff_ms: int) -> BuildConfig:
    """The champion's recipe with the build's own test split cut to its minimum, one day.

    A build keeps its latest days out of training (validation, then ``test_frac`` of the
    days, 20% in the recipes) to judge itself. A retrain judges the challenger on its own
    holdout days, and the days just before them are where a new pattern is: with 11 days of
    history and the pattern from day 7, the recipe's split trained on one day of it and
    tested on two, and the challenger ranked the pattern's cases well but under its alert
    threshold. Validation (calibration, threshold) keeps the recipe's share."""
    days = (cutoff_ms - 1) // DAY_MS - first_ms // DAY_MS + 1
    return replace(cfg, test_frac=min(cfg.test_frac, 1.0 / max(days, 1)))


def partial_fraud_labels(truth: Truth) -> frozenset[str] | None:
    """The fraud events analysts judged false positives, when there are any: then the labels
    are partial (analysts confirm some cases of a pattern; the unreviewed ones are unknown,
    not honest), and the challenger's fraud threshold is placed on judged validation alerts,
    as the promotion rule judges them. Without such verdicts nothing says which unlabelled
    decisions were looked at, and every one counts as honest, as in a build from labels."""
    false = frozenset(event for kind, event in truth.false_events if kind == "fraud")
    return false or None


def retrain_once(job: RetrainJob, log: Any = print) -> tuple[dict[str, Any], dict[str, Scorecard]]:
    from model.build import run_build
    from model.bundle import BundleError, load_bundle, promote_bundle
    from model.config import config_from_table

    started = time.monotonic()
    try:
        champion = load_bundle(job.champion)
    except BundleError as exc:
        raise CommandError(str(exc)) from None
    cfg = config_from_table({**champion.manifest["build_config"], "base": "default"})
    labels, verdicts = merged_labels(job.labels, job.feedback, job.verdicts)
    truth = Truth.of(labels, verdicts)
    challenger_dir = job.champion.with_name(f".{job.champion.name}.challenger")
    with tempfile.TemporaryDirectory(prefix="fraudstream-retrain-") as tmp:
        history, labels_path = Path(tmp) / "history.jsonl", Path(tmp) / "labels.jsonl"
        first, cutoff = split_history(job.events, job.holdout_days, history, tmp)
        cfg = challenger_config(cfg, first, cutoff)
        labels_path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in labels))
        built = time.monotonic()
        try:
            challenger, _ = run_build(
                history, labels_path, challenger_dir, cfg, progress=False, log=log,
                init=champion, false_fraud=partial_fraud_labels(truth),
            )  # fmt: skip
        except ValueError as exc:
            raise CommandError(f"challenger not built: {exc}") from None
        build_s = time.monotonic() - built
    sides = {
        "champion": score_bundle(job.events, job.champion, job.backend, cutoff, truth),
        "challenger": score_bundle(job.events, challenger_dir, job.backend, cutoff, truth),
    }
    promoted, why = verdict(sides["champion"], sides["challenger"], job.min_judged)
    if promoted:
        promote_bundle(challenger_dir, job.champion)
    report = {
        "promoted": promoted,
        "why": why,
        "champion_version": champion.version,
        "challenger_version": challenger.version,
        "holdout_from": format_ts(cutoff),
        "labels": len(labels),
        "verdicts": len(verdicts),
        "champion": sides["champion"].to_json(),
        "challenger": sides["challenger"].to_json(),
        "seconds": {"build": round(build_s, 1), "total": round(time.monotonic() - started, 1)},
    }
    return report, sides


def parse_every(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if match is None:
        raise CommandError(f"--every: {text!r} is not a duration like 90s, 30m, 24h or 7d")
    return float(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def _job(args: argparse.Namespace, tmp: str) -> tuple[RetrainJob, dict[str, int]]:
    for flag, paths in (("--labels", args.labels), ("--feedback", args.feedback or [])):
        for p in paths:
            if not Path(p).is_file():
                raise CommandError(f"{flag} {p}: no such file")
    if args.min_judged < 1:
        raise CommandError(f"--min-judged: {args.min_judged} must be at least 1")
    events = _history(args, tmp)
    verdicts: list[Feedback] = []
    skipped = 0
    if args.feedback_topic is not None:
        settings = _settings(args)
        verdicts, skipped = topic_verdicts(settings.broker, args.feedback_topic, tmp,
                                           settings.kafka_client_config())  # fmt: skip
    job = RetrainJob(
        events, [Path(p) for p in args.labels], [Path(p) for p in args.feedback or []],
        Path(args.model), args.holdout_days, args.backend, tuple(verdicts), args.min_judged,
    )  # fmt: skip
    return job, {"topic_verdicts": len(verdicts), "topic_skipped": skipped}


def _settings(args: argparse.Namespace) -> Any:
    from stream.runtime.settings import Settings

    return Settings(**({"broker": args.broker} if args.broker else {}))


def _history(args: argparse.Namespace, tmp: str) -> Path:
    if (args.events is None) == (args.from_topic is None):
        raise CommandError("give either --events FILE or --from-topic TOPIC")
    if args.events is not None:
        if not Path(args.events).is_file():
            raise CommandError(f"--events {args.events}: no such file")
        return Path(args.events)
    from stream.offline.topic_history import export_topic

    settings = _settings(args)
    events = Path(tmp) / "events.jsonl"
    export_topic(settings.broker, args.from_topic, events, None, None,
                 settings.kafka_client_config())  # fmt: skip
    return events


def _run(args: argparse.Namespace) -> int:
    every = parse_every(args.every) if args.every else None
    metrics = RetrainMetrics()
    if args.metrics_port is not None:
        start_http_server(args.metrics_port, registry=metrics.registry)
    while True:
        with tempfile.TemporaryDirectory(prefix="fraudstream-history-") as tmp:
            job, read = _job(args, tmp)
            report, sides = retrain_once(job, log=_quiet)
            report["feedback_topic"] = read if args.feedback_topic is not None else None
        metrics.record(report, sides)
        print(orjson.dumps(report).decode(), flush=True)
        if every is None:
            return 0
        time.sleep(every)


def _quiet(msg: str) -> None:
    pass


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "retrain",
        help="build a challenger from recent history and feedback; promote it if better",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_option(p, "--model", required=True, help="the champion bundle directory (or symlink)")
    add_option(p, "--events", help="history: an events file")
    add_option(p, "--from-topic", help="history: instead of --events, this topic's events")
    add_option(p, "--broker", help="Kafka bootstrap HOST:PORT for the topics")
    p.add_argument("--labels", action="append", required=True, help="labels file (repeatable)")
    p.add_argument("--feedback", action="append", help="kept verdicts file (repeatable)")
    add_option(p, "--feedback-topic", help="verdicts: this topic's retained records (feedback)")
    add_option(p, "--min-judged", type=int, default=MIN_JUDGED,
               help="judged alerts below which a precision is not measurable")  # fmt: skip
    add_option(p, "--holdout-days", type=float, default=2.0, help="latest days judged, not trained")
    add_option(p, "--backend", default="auto", help="model backend for the comparison")
    add_option(p, "--every", help="repeat at this interval (90s, 30m, 24h, 7d)")
    add_option(p, "--metrics-port", type=int, help="serve Prometheus metrics on this port")
    p.set_defaults(func=_run)
