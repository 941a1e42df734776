"""Seller-side brushing from the model's per-order scores (``stream.detect.model_brushing``)."""

from __future__ import annotations

import random

from stream.core.alerts import Detection
from stream.core.state import Row, SellerState
from stream.core.timeutil import MINUTE_MS
from stream.detect.processor import DetectorConfig, apply_seller_record

CFG = DetectorConfig()
THRESHOLD = 0.6
T0 = 1_790_000_000_000
MINUTE = MINUTE_MS


def order(i: int, user: str, score: float | None, ts: int | None = None) -> Row:
    """A purchase as the user side sends it: ts, id, buyer, kind, amount, rating, browsed,
    buyer age, buyer events, device, ip, order, item, then the model's order score."""
    row: Row = [ts if ts is not None else T0 + i * MINUTE, f"o{i}", user, "purchase", 5.0,
                None, 0, 3_600_000, 4, f"d-{user}", "10.0.0.1", f"ord{i}", "item1"]  # fmt: skip
    return row if score is None else [*row, score]


def feed(
    rows: list[Row], threshold: float | None = THRESHOLD
) -> tuple[SellerState, list[Detection]]:
    state, found = SellerState(), list[Detection]()
    for row in rows:
        found += apply_seller_record(state, "s1", row, CFG, threshold).detections
    return state, found


def test_ring_of_suspect_orders_raises_one_alert_naming_orders_and_accounts() -> None:
    rows = [order(i, f"u{i % 4}", 0.9) for i in range(8)]
    state, found = feed(rows)
    assert len(found) == 1  # the cooldown holds back the rest of the burst
    det = found[0]
    assert det.kind == "brushing" and det.subject_id == "s1"
    assert det.score >= det.threshold == THRESHOLD
    assert det.event_id == "o2"  # the third suspect order, from a third account, completes it
    assert [r.code for r in det.reasons[:2]] == ["model.brushing", "model.brushing_accounts"]
    assert "u0, u1, u2" in det.reasons[1].detail
    assert set(det.evidence_event_ids) == {"o0", "o1", "o2"}
    assert any(k.startswith("brushing@") for k in state.cooldowns)  # the window is taken


def test_too_few_accounts_or_low_scores_stay_quiet() -> None:
    assert feed([order(i, f"u{i % 2}", 0.9) for i in range(8)])[1] == []  # two accounts
    assert feed([order(i, f"u{i}", 0.5) for i in range(8)])[1] == []  # below threshold
    # Honest flash sale: many buyers, but the model does not find the orders fake.
    assert feed([order(i, f"u{i}", 0.05) for i in range(40)])[1] == []


def test_suspects_outside_the_window_do_not_count() -> None:
    day = 24 * 60 * MINUTE
    rows = [order(i, f"u{i}", 0.9, ts=T0 + i * 2 * day) for i in range(6)]  # one per 2 days
    assert feed(rows)[1] == []


def test_orders_without_a_score_fall_back_to_the_rule() -> None:
    # No score on the rows: the rule judges (unbrowsed orders from few accounts, fast).
    rows = [order(i, f"u{i % 4}", None) for i in range(10)]
    _, with_model = feed(rows)
    _, rules_only = feed(rows, threshold=None)
    assert with_model and with_model == rules_only
    assert all(not r.code.startswith("model.") for d in with_model for r in d.reasons)


def test_alerts_do_not_depend_on_arrival_order() -> None:
    """Purchases reach the seller side interleaved across user partitions; arrivals out of
    order (by less than the seller window) give the same alert windows as event-time order.
    Each burst only just makes a ring (its last four orders, from three accounts)."""
    day = 24 * 60 * MINUTE
    rows: list[Row] = []
    for burst in range(6):
        start = T0 + burst * 3 * day
        for i in range(10):
            suspect = i >= 6
            user = f"b{burst}-{i % 3}" if suspect else f"h{burst}-{i}"
            rows.append(order(burst * 10 + i, user, 0.9 if suspect else 0.1, start + i * MINUTE))
    expected = {d.window for d in feed(rows)[1]}
    assert len(expected) == 6
    rng = random.Random(3)
    for _ in range(5):
        bursts = [rows[i : i + 10] for i in range(0, len(rows), 10)]
        for burst in bursts:
            rng.shuffle(burst)
        shuffled = [row for burst in bursts for row in burst]
        assert {d.window for d in feed(shuffled)[1]} == expected
