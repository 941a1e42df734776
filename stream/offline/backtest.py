"""``fraudstream backtest``: the stream's detectors, offline, in event time.

The same processing functions as the worker run over a file in event-time order; seller
records go straight to the seller side, and the churn clock ticks in event time. Alerts
and scores are written as in CONTRACT sections 3 and 4.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from model.sequence_model import SequenceModel
from stream.core.alerts import RULES_MODEL_VERSION, Detection, to_alert
from stream.core.cliutil import CommandError, add_option
from stream.core.schema import Event, Rejected, parse_event
from stream.core.state import EID, S_EID, S_TS, S_USER, TS, Row, SellerState, UserState
from stream.core.timeutil import format_ts, parse_ts
from stream.detect.churn import ChurnClock, ChurnConfig
from stream.detect.model_churn import churn_verdicts
from stream.detect.model_fraud import PendingFraud, decide_all, scored_seller_records
from stream.detect.processor import DetectorConfig, apply_seller_record, apply_user_event
from stream.offline.replay import iter_in_time_order

MODEL_BATCH = 256  # decisions per model call


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


class Backtest:
    def __init__(
        self,
        alerts_out: IO[bytes],
        scores_out: IO[bytes] | None = None,
        cfg: DetectorConfig | None = None,
        churn: ChurnConfig | None = None,
        model: SequenceModel | None = None,
    ) -> None:
        self.cfg = cfg or DetectorConfig()
        self.churn = churn or ChurnConfig()
        self.model_version = model.version if model is not None else RULES_MODEL_VERSION
        # Kinds the bundle was trained for are the model's; the others stay with the rules.
        self.fraud_model = model if model is not None and "fraud" in model.kinds else None
        self.brushing_threshold = model.threshold("brushing") if model is not None else None
        self.model = model  # churn_verdicts checks whether it scores churn
        # Decisions wait here for a batched model call, as in the worker's micro-batches.
        self.pending: list[PendingFraud] = []
        self.alerts_out, self.scores_out = alerts_out, scores_out
        self.users: dict[str, UserState] = {}
        self.sellers: dict[str, SellerState] = {}
        self.stats = BacktestStats()
        self.clock: int | None = None  # event time of the latest event
        self.ticks = ChurnClock(self.churn.interval_ms)

    def feed(self, event: Event) -> None:
        self._advance(event.ts)
        state = self.users.setdefault(event.user_id, UserState())
        result = apply_user_event(state, event, self.cfg, self.fraud_model is not None)
        if result.outcome == "late":
            raise Rejected("late", "field 'ts': event is older than the allowed lateness")
        if result.outcome == "duplicate":
            self.stats.duplicates += 1
            return
        self.stats.events += 1
        self._alerts(result.detections)
        if result.fraud_score is not None:
            self._score("fraud", "user", event.user_id, event, result.fraud_score)
        if result.pending is not None:
            self.pending.append(result.pending)
            if len(self.pending) >= MODEL_BATCH:
                self.decide_pending()
        if result.seller_record is not None:
            self._seller(*result.seller_record)

    def _seller(self, seller_id: str, row: Row) -> None:
        """The seller side, right behind the user side (the worker has a topic between)."""
        seller = self.sellers.setdefault(seller_id, SellerState())
        sres = apply_seller_record(seller, seller_id, row, self.cfg, self.brushing_threshold)
        self._alerts(sres.detections)
        if sres.order_score is not None and sres.seller_score is not None:
            user, eid, ts = row[S_USER], row[S_EID], row[S_TS]
            self._write_score("brushing", "user", user, seller_id, eid, ts, sres.order_score)
            self._write_score("brushing", "seller", seller_id, seller_id, eid, ts,
                              sres.seller_score)  # fmt: skip

    def decide_pending(self) -> None:
        model, pending = self.fraud_model, self.pending
        if model is None or not pending:
            return
        self.pending = []
        threshold = model.thresholds["fraud"]
        scores, detections = decide_all(
            pending, model, threshold, self.cfg.fraud_cooldown_ms, self.cfg.rules, MODEL_BATCH
        )
        for p, score, dets in zip(pending, scores["fraud"], detections, strict=True):
            self._alerts(dets)
            row = p.trigger
            self._write_score("fraud", "user", p.user_id, p.seller_id, row[EID], row[TS], score)
        for seller_id, record in scored_seller_records(pending, scores):
            self._seller(seller_id, record)

    def _advance(self, ts: int) -> None:
        """Tick the churn clock through every interval boundary up to ``ts``."""
        for tick in self.ticks.crossed(0, ts):
            self.evaluate_churn(tick)
        self.clock = ts if self.clock is None else max(self.clock, ts)

    def evaluate_churn(self, now_ms: int) -> None:
        verdicts = churn_verdicts(
            list(self.users.items()), now_ms, self.churn, self.model, MODEL_BATCH
        )
        for v in verdicts:
            last = v.state.events[-1]
            self._write_score("churn", "user", v.user_id, None, last[EID], now_ms, v.score)
            if v.detection is not None:
                self._alerts([v.detection])

    def finish(self, until_ms: int | None = None) -> BacktestStats:
        """The closing churn evaluation of every user, as of the last event time."""
        self.decide_pending()
        end = until_ms if until_ms is not None else self.clock
        if end is not None:
            self.evaluate_churn(end)
        self.stats.users, self.stats.sellers = len(self.users), len(self.sellers)
        return self.stats

    def _alerts(self, detections: list[Detection]) -> None:
        for det in detections:
            self.alerts_out.write(orjson.dumps(to_alert(det, self.model_version)) + b"\n")
            self.stats.alerts[det.kind] += 1

    def _score(self, kind: str, subject: str, sid: str, event: Event, score: float) -> None:
        self._write_score(kind, subject, sid, event.seller_id, event.event_id, event.ts, score)

    def _write_score(
        self, kind: str, subject: str, sid: str, seller: str | None, event_id: str, ts: int,
        score: float,
    ) -> None:  # fmt: skip
        if self.scores_out is None:
            return
        row: dict[str, Any] = {
            "kind": kind,
            "subject": {"type": subject, "id": sid},
            "user_id": sid if subject == "user" else None,
            "seller_id": sid if subject == "seller" else seller,
            "event_id": event_id,
            "ts": format_ts(ts),
            "score": round(score, 6),
        }
        self.scores_out.write(orjson.dumps(row) + b"\n")
        self.stats.score_rows += 1


def run_backtest(
    events: Path,
    alerts_out: Path,
    scores_out: Path | None = None,
    until: int | None = None,
    model: SequenceModel | None = None,
) -> BacktestStats:
    if not events.is_file():
        raise CommandError(f"{events}: no such file")
    started = time.perf_counter()
    with (
        open(alerts_out, "wb") as alerts,
        open(scores_out, "wb") if scores_out else _Null() as scores,
        tempfile.TemporaryDirectory(prefix="fraudstream-backtest-") as tmpdir,
    ):
        bt = Backtest(alerts, scores if scores_out else None, model=model)
        for ts, _, _, line in iter_in_time_order(events, tmpdir):
            if until is not None and ts > until:
                break
            try:
                bt.feed(parse_event(line))
            except Rejected:
                bt.stats.rejected += 1
        stats = bt.finish(until)
    stats.seconds = round(time.perf_counter() - started, 3)
    processed = stats.events + stats.rejected + stats.duplicates
    stats.events_per_s = round(processed / stats.seconds, 1) if stats.seconds else 0.0
    if bt.clock is not None:
        first = min((u.first_ts for u in bt.users.values()), default=bt.clock)
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


def _run(args: argparse.Namespace) -> int:
    until = _time_option(args.until, "--until")
    since = _time_option(args.since, "--since")
    if (args.events is None) == (args.from_topic is None):
        raise CommandError("give either --events FILE or --from-topic TOPIC")
    if since is not None and args.from_topic is None:
        raise CommandError("--since selects Kafka history: it needs --from-topic")
    model = SequenceModel(Path(args.model), args.backend) if args.model else None
    outputs = (Path(args.alerts_out), Path(args.scores_out) if args.scores_out else None)
    if args.from_topic is None:
        stats = run_backtest(Path(args.events), *outputs, until, model)
    else:
        from stream.offline.topic_history import export_topic
        from stream.runtime.settings import Settings

        settings = Settings(**({"broker": args.broker} if args.broker else {}))
        with tempfile.TemporaryDirectory(prefix="fraudstream-history-") as tmp:
            events = Path(tmp) / "events.jsonl"
            export_topic(settings.broker, args.from_topic, events, since, until,
                         settings.kafka_client_config())  # fmt: skip
            # The range is chosen by Kafka timestamps; event time ends with the last event.
            stats = run_backtest(events, *outputs, None, model)
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
    add_option(p, "--model", help="model bundle directory (default: the rules alone)")
    add_option(p, "--backend", default="auto", help="model backend: auto, onnx, torch, ...")
    p.set_defaults(func=_run)
