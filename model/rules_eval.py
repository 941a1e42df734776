"""Scores of the streaming core's rules at the same scoring points, for comparison.

Events are replayed in event time through the stream's own pipeline
(``stream.detect.pipeline``, as the worker and the backtest run it), except that alert
cool-downs are switched off so every decision is scored on its own (a cool-down hides
repeats from people, not from a metric).
"""

from __future__ import annotations

from pathlib import Path

from stream.core.schema import Rejected, parse_event
from stream.core.state import SellerState, UserState
from stream.detect.churn import ChurnConfig
from stream.detect.pipeline import Effects, MemoryStates, Record, UserPipeline
from stream.detect.processor import DetectorConfig
from stream.detect.seller_pipeline import SellerPipeline, encode_seller_record, encode_watermark

CHUNK = 2048  # input records per pipeline run


def churn_key(user_id: str, tick: int) -> str:
    return f"{user_id}@{tick}"


def rule_scores(
    events_path: Path, since_ms: int, churn: ChurnConfig | None = None
) -> dict[str, dict[str, float]]:
    """``{kind: {event_id: rule score}}`` for fraud and brushing detections at or after
    ``since_ms``, and ``{"churn": {churn_key: score}}`` for the churn rule at each clock
    tick from ``since_ms`` on; what the rules did not score is absent (it counts as 0)."""
    # 1 ms, not 0: the brushing cool-down also sizes the window named in alert ids.
    cfg = DetectorConfig(fraud_cooldown_ms=1, brushing_cooldown_ms=1)
    user_side = UserPipeline(cfg, churn or ChurnConfig(), check_keys=False)
    seller_side = SellerPipeline(cfg, sources=1, wait_ms=0)
    users: MemoryStates[UserState] = MemoryStates(UserState)
    sellers: MemoryStates[SellerState] = MemoryStates(SellerState)
    book = _Book(since_ms)
    lines = _in_event_time_order(events_path)
    for start in range(0, len(lines), CHUNK):
        chunk = lines[start : start + CHUNK]
        records = [Record(None, line, 0, start + i) for i, (_, line) in enumerate(chunk)]
        fx = user_side.run(records, users, None)
        book.add(fx)
        inputs = [Record(s.encode(), encode_seller_record(r), 0, -1) for s, r in fx.seller_records]
        inputs.append(Record(None, encode_watermark(0, chunk[-1][0] + 1), 0, -1))
        book.add(seller_side.run(inputs, sellers, None, 0))
    book.add(seller_side.run([], sellers, None, 0, flush=True))
    return book.scores


def _in_event_time_order(path: Path) -> list[tuple[int, bytes]]:
    """The file's valid events as (ts, line), by event time and then event id."""
    keyed: list[tuple[int, str, bytes]] = []
    with path.open("rb") as f:
        for raw in f:
            line = raw.rstrip(b"\r\n")
            if line.strip():
                try:
                    event = parse_event(line)
                except Rejected:
                    continue
                keyed.append((event.ts, event.event_id, line))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [(ts, line) for ts, _, line in keyed]


class _Book:
    """Rule scores from ``since_ms`` on: the highest per fraud or brushing event, and each
    churn evaluation."""

    def __init__(self, since_ms: int) -> None:
        self.since_ms = since_ms
        self.scores: dict[str, dict[str, float]] = {"fraud": {}, "brushing": {}, "churn": {}}

    def add(self, fx: Effects) -> None:
        for row in fx.scores:
            if row.kind == "churn" and row.ts >= self.since_ms:
                self.scores["churn"][churn_key(row.subject_id, row.ts)] = row.score
        for _, det in fx.alerts:
            if det.kind != "churn" and det.event_ts >= self.since_ms:
                kind = self.scores[det.kind]
                kind[det.event_id] = max(kind.get(det.event_id, 0.0), float(det.score))
