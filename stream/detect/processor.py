"""Per-event steps, free of Kafka and Faust: one user event or one seller record applied to
its live state, with what it detects and what must go on to the seller side. The pipeline
(``stream.detect.pipeline``) runs them for the worker and the backtest alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.core.alerts import Detection
from stream.core.schema import Event
from stream.core.state import (
    DECISION_CODES,
    EID,
    ITEM,
    S_BROWSED,
    S_EID,
    S_KIND,
    S_TS,
    SELLER,
    TS,
    TYPE,
    TYPE_CODE,
    Outcome,
    Row,
    SellerState,
    StateLimits,
    UserState,
)
from stream.core.timeutil import HOUR_MS
from stream.detect.model_brushing import ModelBrushingConfig, model_brushing, order_score
from stream.detect.model_fraud import PendingFraud
from stream.detect.rule_fraud import rule_fraud
from stream.detect.rules import (
    RuleConfig,
    RuleHit,
    brushing,
    brushing_partial,
)
from stream.detect.seller_windows import claim, decision_points, forget_old_windows, window_id

# Browsing means looking at the item page; carting straight from a listing does not count.
VIEWING = frozenset({TYPE_CODE["item_view"]})
SELLER_SIDE = frozenset({"purchase", "review"})


@dataclass(frozen=True)
class DetectorConfig:
    limits: StateLimits = field(default_factory=StateLimits)
    rules: RuleConfig = field(default_factory=RuleConfig)
    fraud_cooldown_ms: int = 1 * HOUR_MS
    brushing_cooldown_ms: int = 6 * HOUR_MS


@dataclass
class UserResult:
    outcome: Outcome
    detections: list[Detection]
    seller_record: tuple[str, Row] | None = None
    fraud_score: float | None = None  # set at decision events the rules decide
    pending: PendingFraud | None = None  # a decision event left to the model


@dataclass
class SellerResult:
    outcome: Outcome
    detections: list[Detection]
    seller_score: float | None = None  # the seller's brushing strength, at purchases
    order_score: float | None = None  # this purchase's, from the seller's and its own signals


def apply_user_event(
    state: UserState, event: Event, cfg: DetectorConfig, defer_fraud: bool = False
) -> UserResult:
    """Update ``state`` in place with one event.

    With ``defer_fraud`` a decision event is not judged by the rules but returned as
    ``result.pending`` for the model (``stream.detect.model_fraud``)."""
    outcome = state.add(event, cfg.limits)
    if outcome == "late":
        return UserResult(outcome, [])
    window = state.upto(event.ts)
    trigger = next((r for r in reversed(window) if r[EID] == event.event_id), None)
    if trigger is None:  # a duplicate already evicted from the window
        return UserResult(outcome, [])
    # A duplicate is a redelivery: its seller record may have been lost with a crash, and
    # the seller side de-duplicates, so it is sent again. Alerts are not: they were
    # delivered before the state that now holds the event was written.
    record = _seller_record(state, window, trigger, event)
    if outcome != "added":
        return UserResult(outcome, [], record)
    if trigger[TYPE] not in DECISION_CODES:
        return UserResult(outcome, [], record)
    if defer_fraud:
        # Ends at the decision event even when a same-millisecond event sorts after it.
        upto_trigger = window[: len(window) - window[::-1].index(trigger)]
        pending = PendingFraud(state, upto_trigger, event.user_id, event.seller_id, record)
        return UserResult(outcome, [], None, pending=pending)
    score, detections = _fraud(state, window, trigger, event, cfg)
    return UserResult(outcome, detections, record, score)


def _fraud(
    state: UserState, window: list[Row], trigger: Row, event: Event, cfg: DetectorConfig
) -> tuple[float, list[Detection]]:
    """The decision's fraud score, and an alert unless every firing rule is cooling down."""
    return rule_fraud(
        state, window, trigger, event.user_id, event.seller_id, cfg.rules, cfg.fraud_cooldown_ms
    )


def _seller_record(
    state: UserState, window: list[Row], trigger: Row, event: Event
) -> tuple[str, Row] | None:
    """What the seller side needs to know about a purchase or review, seen from the buyer."""
    if event.type not in SELLER_SIDE or event.seller_id is None:
        return None
    # The item viewed when the event names one, else any item of the seller; the rarest
    # condition first: this scans the whole window for every purchase and review.
    ts, item = event.ts, event.item_id
    column, wanted = (ITEM, item) if item is not None else (SELLER, event.seller_id)
    browsed = any(
        r[column] == wanted and r[TYPE] in VIEWING and r[TS] <= ts and r is not trigger
        for r in window
    )
    row: Row = (
        event.ts,
        event.event_id,
        event.user_id,
        event.type,
        event.amount,
        event.rating,
        1 if browsed else 0,
        event.ts - state.first_ts,
        state.total,
        event.device_id,
        event.ip,
        event.order_id,
        event.item_id,
    )
    return event.seller_id, row


def apply_seller_record(
    state: SellerState,
    seller_id: str,
    row: Row,
    cfg: DetectorConfig,
    brushing_threshold: float | None = None,
) -> SellerResult:
    """Update ``state`` in place with one purchase or review seen from the buyer.

    With ``brushing_threshold`` (a bundle scores brushing) purchases carrying the model's
    order score are judged by ``stream.detect.model_brushing``; otherwise by the rule. Decisions
    follow ``stream.detect.seller_windows``: one alert per seller and event-time window."""
    newest_before = state.max_ts if state.orders else None
    outcome = state.add(row, cfg.limits)
    if outcome != "added" or row[S_KIND] != "purchase":
        return SellerResult(outcome, [])
    order = order_score(row)
    use_model = brushing_threshold is not None and order is not None
    model_cfg = ModelBrushingConfig(cooldown_ms=cfg.brushing_cooldown_ms)

    def judge(point: Row) -> tuple[float, Detection | None]:
        if brushing_threshold is not None and use_model:
            return model_brushing(state, seller_id, point, brushing_threshold, model_cfg, cfg.rules)
        hit = brushing(state.orders, point, cfg.rules)
        if hit is None:
            return brushing_partial(state.orders, point, cfg.rules), None
        return hit.score, _brushing_detection(seller_id, point, hit, cfg)

    seller, detections = 0.0, []
    for point in decision_points(state, row, newest_before):
        strength, det = judge(point)
        if point is row:
            seller = strength
        if det is not None and claim(state, point[S_TS], cfg.brushing_cooldown_ms):
            detections.append(det)
    forget_old_windows(state, cfg.limits.seller_window_ms, cfg.brushing_cooldown_ms)
    if not use_model:
        # An order bought without viewing the item carries the seller's suspicion in full.
        order = seller if not row[S_BROWSED] else 0.2 * seller
    return SellerResult(outcome, detections, seller, order)


def _brushing_detection(seller_id: str, row: Row, hit: RuleHit, cfg: DetectorConfig) -> Detection:
    return Detection(
        kind="brushing",
        subject_type="seller",
        subject_id=seller_id,
        score=hit.score,
        threshold=cfg.rules.threshold,
        event_id=row[S_EID],
        event_ts=row[S_TS],
        reasons=hit.reasons,
        evidence_event_ids=hit.evidence,
        user_id=None,
        seller_id=seller_id,
        window=window_id(row[S_TS], cfg.brushing_cooldown_ms),
    )
