"""Scores of the streaming core's rules at the same scoring points, for comparison.

Events are replayed in event time through ``stream.detect.processor`` exactly as the worker
would process them, except that alert cool-downs are switched off so every decision is
scored on its own (a cool-down hides repeats from people, not from a metric).
"""

from __future__ import annotations

from pathlib import Path


def churn_key(user_id: str, tick: int) -> str:
    return f"{user_id}@{tick}"


def rule_scores(events_path: Path, since_ms: int) -> dict[str, dict[str, float]]:
    """``{kind: {event_id: rule score}}`` for fraud and brushing detections at or after
    ``since_ms`` (events without a detection score 0), and ``{"churn": {churn_key: score}}``
    for the churn rule at each clock tick from ``since_ms`` on."""
    from stream.core.schema import Event, Rejected, parse_event
    from stream.core.state import UserState
    from stream.detect.churn import ChurnClock, ChurnConfig, churn_score
    from stream.detect.processor import DetectorConfig, process_seller_record, process_user_event

    # 1 ms, not 0: the brushing cool-down also sizes the window named in alert ids.
    cfg = DetectorConfig(fraud_cooldown_ms=1, brushing_cooldown_ms=1)
    parsed: list[Event] = []
    with events_path.open("rb") as f:
        for line in f:
            if line.strip():
                try:
                    parsed.append(parse_event(line.rstrip(b"\r\n")))
                except Rejected:
                    continue
    parsed.sort(key=lambda e: (e.ts, e.event_id))
    users: dict[str, bytes | None] = {}
    sellers: dict[str, bytes | None] = {}
    scores: dict[str, dict[str, float]] = {"fraud": {}, "brushing": {}, "churn": {}}
    churn_cfg = ChurnConfig()
    clock = ChurnClock(churn_cfg.interval_ms)
    for event in parsed:
        for tick in clock.crossed(0, event.ts):
            if tick < since_ms:
                continue
            for user_id, raw in users.items():
                score = churn_score(UserState.decode(raw), tick, churn_cfg)
                scores["churn"][churn_key(user_id, tick)] = score or 0.0
        result = process_user_event(users.get(event.user_id), event, cfg)
        if result.state is not None:
            users[event.user_id] = result.state
        detections = list(result.detections)
        if result.seller_record is not None:
            seller_id, row = result.seller_record
            sres = process_seller_record(sellers.get(seller_id), seller_id, row, cfg)
            if sres.state is not None:
                sellers[seller_id] = sres.state
            detections.extend(sres.detections)
        if event.ts < since_ms:
            continue
        for det in detections:
            book = scores.get(det.kind)
            if book is not None:
                book[det.event_id] = max(book.get(det.event_id, 0.0), float(det.score))
    return scores
