"""``fraudstream backtest``: the stream's detectors, offline, in event time.

The worker's pipeline (``stream.detect.pipeline``) runs over a file (or a topic's history)
in event-time order, with files as sinks: seller records go straight to the seller side,
and the churn clock ticks in event time. Alerts and scores are written as in
docs/contract.md, sections 3 and 4.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from model.sequence_model import SequenceModel
from model.shipped import choose_bundle, describe
from stream.core.alerts import Detection, to_alert
from stream.core.cliutil import CommandError, add_option
from stream.core.event_time import EventTimeGuard
from stream.core.privacy import Pseudonymiser, PseudonymKeyError, load_key
from stream.core.state import SellerState, UserState
from stream.core.timeutil import format_ts, now_ms, parse_ts
from stream.detect.churn import ChurnConfig
from stream.detect.model_churn import churn_for
from stream.detect.pipeline import (
    Effects,
    MemoryStates,
    Model,
    Record,
    ScoreRow,
    UserPipeline,
    model_version,
)
from stream.detect.processor import DetectorConfig
from stream.detect.seller_pipeline import SellerPipeline, encode_seller_record, encode_watermark
from stream.offline.replay import iter_in_time_order

MODEL_BATCH = 256  # decisions per model call
CHUNK = 2048  # input records per pipeline run: a few hundred decisions per model call
PARTITION = 0  # one input partition: one churn clock over every user, as a file is one stream


@dataclass
class BacktestStats:
    events: int = 0
    rejected: int = 0
    duplicates: int = 0
    alerts: dict[str, int] = field(default_factory=lambda: {"fraud": 0, "brushing": 0, "churn": 0})
    score_rows: int = 0
    users: int = 0
    sellers: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    seconds: float = 0.0
    events_per_s: float = 0.0
    model_version: str | None = None  # the bundle that scored; None: the rules alone


class Backtest:
    """The worker's pipeline over records in event-time order, with file sinks: one input
    partition, the seller side right behind the user side (the worker has a topic between),
    and a closing churn evaluation of every user."""

    def __init__(
        self,
        alerts_out: IO[bytes],
        scores_out: IO[bytes] | None = None,
        cfg: DetectorConfig | None = None,
        churn: ChurnConfig | None = None,
        model: Model | None = None,
        pseudonyms: Pseudonymiser | None = None,
    ) -> None:
        cfg = cfg or DetectorConfig()
        self.model = model
        # History is judged against the wall clock as the live worker judges traffic: every
        # past event passes, one dated far ahead of now (and of the events before it) does not.
        guard = EventTimeGuard(wall_clock=now_ms)
        self.user_side = UserPipeline(
            cfg,
            churn_for(model, churn),
            MODEL_BATCH,
            check_keys=False,
            guard=guard,
            pseudonyms=pseudonyms,
        )
        # Records come in event-time order: nothing waits for a watermark but the chunk's own.
        self.seller_side = SellerPipeline(cfg, sources=1, wait_ms=0)
        self.users: MemoryStates[UserState] = MemoryStates(UserState)
        self.sellers: MemoryStates[SellerState] = MemoryStates(SellerState)
        self.alerts_out, self.scores_out = alerts_out, scores_out
        self.stats = BacktestStats()
        self.clock: int | None = None  # event time of the latest event
        self.first: int | None = None
        self._offset = 0

    @property
    def model_version(self) -> str:
        return model_version(self.model)

    def feed(self, lines: list[bytes]) -> None:
        """Run one chunk of input lines (in event-time order) through both sides."""
        records = []
        for line in lines:
            records.append(Record(None, line, PARTITION, self._offset))
            self._offset += 1
        fx = self.user_side.run(records, self.users, self.model)
        self.stats.events += fx.added
        self.stats.duplicates += fx.duplicates
        self.stats.rejected += len(fx.dead_letters)
        self._sink(fx)
        mark = fx.watermarks.get(PARTITION)
        if mark is not None:
            self.clock = mark if self.clock is None else max(self.clock, mark)
        self._sellers(fx, mark)

    def _sellers(self, fx: Effects, mark: int | None, flush: bool = False) -> None:
        inputs = [
            Record(seller_id.encode(), encode_seller_record(row), PARTITION, -1)
            for seller_id, row in fx.seller_records
        ]
        if mark is not None:
            inputs.append(Record(None, encode_watermark(PARTITION, mark), PARTITION, -1))
        if inputs or flush:
            self._sink(self.seller_side.run(inputs, self.sellers, self.model, 0, flush))

    def finish(self, until_ms: int | None = None, close_churn: bool = True) -> BacktestStats:
        """The closing churn evaluation of every user, as of the last event time."""
        self._sellers(Effects(self.model_version), None, flush=True)
        end = until_ms if until_ms is not None else self.clock
        if end is not None and close_churn:
            self._sink(self.user_side.close(end, self.users, [PARTITION], self.model))
        self.stats.users, self.stats.sellers = len(self.users), len(self.sellers)
        return self.stats

    def _sink(self, fx: Effects) -> None:
        for _, det in fx.alerts:
            self._alert(det, fx.model_version)
        if self.scores_out is not None:
            for row in fx.scores:
                self.scores_out.write(orjson.dumps(score_row(row)) + b"\n")
            self.stats.score_rows += len(fx.scores)

    def _alert(self, det: Detection, version: str) -> None:
        self.alerts_out.write(orjson.dumps(to_alert(det, version)) + b"\n")
        self.stats.alerts[det.kind] += 1


def score_row(row: ScoreRow) -> dict[str, Any]:
    """A scores-file row (docs/contract.md, section 4)."""
    user = row.subject_type == "user"
    out = {
        "kind": row.kind,
        "subject": {"type": row.subject_type, "id": row.subject_id},
        "user_id": row.subject_id if user else None,
        "seller_id": row.seller_id if user else row.subject_id,
        "event_id": row.event_id,
        "ts": format_ts(row.ts),
        "score": round(row.score, 6),
    }
    if row.history is not None:
        out["history_visits"] = row.history
    return out


def run_backtest(
    events: Path,
    alerts_out: Path,
    scores_out: Path | None = None,
    until: int | None = None,
    model: SequenceModel | None = None,
    churn: ChurnConfig | None = None,
    close_churn: bool = True,
    pseudonyms: Pseudonymiser | None = None,
) -> BacktestStats:
    if not events.is_file():
        raise CommandError(f"{events}: no such file")
    started = time.perf_counter()
    with (
        open(alerts_out, "wb") as alerts,
        open(scores_out, "wb") if scores_out else _Null() as scores,
        tempfile.TemporaryDirectory(prefix="fraudstream-backtest-") as tmpdir,
    ):
        bt = Backtest(
            alerts, scores if scores_out else None, churn=churn, model=model, pseudonyms=pseudonyms
        )
        chunk: list[bytes] = []
        for ts, _, _, line in iter_in_time_order(events, tmpdir):
            if until is not None and ts > until:
                break
            chunk.append(line)
            if len(chunk) >= CHUNK:
                bt.feed(chunk)
                chunk = []
        bt.feed(chunk)
        stats = bt.finish(until, close_churn)
    stats.seconds = round(time.perf_counter() - started, 3)
    processed = stats.events + stats.rejected + stats.duplicates
    stats.events_per_s = round(processed / stats.seconds, 1) if stats.seconds else 0.0
    stats.model_version = model.version if model is not None else None
    if bt.clock is not None:
        users = [u for t in bt.users.by_partition.values() for u in t.values() if u.total]
        first = min((u.first_ts for u in users), default=bt.clock)
        stats.first_ts, stats.last_ts = format_ts(first), format_ts(bt.clock)
    return stats


class _Null:
    """Stands in for an output file that was not asked for."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _time_option(value: str | None, flag: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_ts(int(value) if value.isdigit() else value)
    except ValueError as exc:
        raise CommandError(f"{flag}: {exc}") from None


def _pseudonymiser(key_file: str | None) -> Pseudonymiser:
    """As the worker's: the configured key, else one for this run alone (alert ids and
    verdicts do not depend on it, only the pseudonyms that reasons quote)."""
    secret = os.environ.get("FRAUDSTREAM_PSEUDONYM_KEY")
    try:
        return Pseudonymiser(load_key(secret, Path(key_file) if key_file else None, None))
    except PseudonymKeyError as exc:
        raise CommandError(str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    until = _time_option(args.until, "--until")
    since = _time_option(args.since, "--since")
    if (args.events is None) == (args.from_topic is None):
        raise CommandError("give either --events FILE or --from-topic TOPIC")
    if since is not None and args.from_topic is None:
        raise CommandError("--since selects Kafka history: it needs --from-topic")
    bundle = choose_bundle(args.model, args.rules_only)
    model = SequenceModel(bundle, args.backend) if bundle is not None else None
    churn = ChurnConfig(budget_per_1000=args.churn_budget_per_1000 or None)
    outputs = (Path(args.alerts_out), Path(args.scores_out) if args.scores_out else None)
    pseudonyms = _pseudonymiser(args.pseudonym_key_file)
    if args.from_topic is None:
        stats = run_backtest(
            Path(args.events), *outputs, until, model, churn, pseudonyms=pseudonyms
        )
    else:
        from stream.offline.topic_history import export_topic
        from stream.runtime.settings import Settings

        settings = Settings(**({"broker": args.broker} if args.broker else {}))
        with tempfile.TemporaryDirectory(prefix="fraudstream-history-") as tmp:
            events = Path(tmp) / "events.jsonl"
            export_topic(settings.broker, args.from_topic, events, since, until,
                         settings.kafka_client_config())  # fmt: skip
            # The range is chosen by Kafka timestamps; event time ends with the last event.
            stats = run_backtest(events, *outputs, None, model, churn, pseudonyms=pseudonyms)
    print(f"fraudstream backtest: scored with {describe(bundle)}", file=sys.stderr)
    print(orjson.dumps(asdict(stats)).decode())
    if stats.rejected:
        print(f"fraudstream: {stats.rejected} invalid lines skipped", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "backtest",
        help="run the detectors offline over an events file, in event time",
        description=__doc__,
    )
    add_option(p, "--events", help="events file (JSON Lines, any order)")
    add_option(p, "--from-topic", help="instead of --events: this Kafka topic's history")
    add_option(p, "--broker", help="Kafka bootstrap HOST:PORT for --from-topic")
    add_option(
        p, "--since", help="with --from-topic: from this message time (RFC 3339 or epoch ms)"
    )
    add_option(p, "--alerts-out", required=True, help="where to write alerts (JSON Lines)")
    add_option(p, "--scores-out", help="where to write one score row per decision")
    add_option(
        p,
        "--until",
        help="stop at this event time; with --from-topic, at this message time "
        "(RFC 3339 or epoch ms)",
    )
    add_option(p, "--model", help="model bundle directory (default: the shipped bundle)")
    add_option(p, "--rules-only", action="store_true", help="no model: the rules score all")
    add_option(
        p, "--churn-budget-per-1000", type=float, default=10.0,
        help="churn alerts per 1,000 users per day at most, best first (0: no limit; the "
        "worker shares its budget out per input partition, the backtest has one)",
    )  # fmt: skip
    add_option(p, "--backend", default="auto", help="model backend: auto, onnx, torch, ...")
    add_option(
        p,
        "--pseudonym-key-file",
        help="file holding the key that pseudonymises device ids, IPs and instruments, as the "
        "worker's (FRAUDSTREAM_PSEUDONYM_KEY gives the key itself; default: a key for this run)",
    )
    p.set_defaults(func=_run)
