"""Alerts that explain themselves: pattern, summary, amount at stake, evidence events."""

from __future__ import annotations

import orjson

from stream.core.alerts import Detection, EvidenceEvent, Reason, to_alert
from stream.core.explain import pattern_of, seller_evidence, user_evidence
from stream.core.schema import parse_event
from stream.core.state import S_AMOUNT, S_EID, S_KIND, S_TS, S_USER, UserState, event_row
from stream.core.timeutil import format_ts
from tests.events import T0, card_testing, ev


def detection(kind: str = "fraud", *reasons: Reason, **fields: object) -> Detection:
    base: dict[str, object] = dict(
        kind=kind,
        subject_type="user",
        subject_id="u1",
        score=0.95,
        threshold=0.5,
        event_id="e-last",
        event_ts=T0,
        reasons=reasons or (Reason("x", "something"),),
        evidence_event_ids=("e-last",),
        user_id="u1",
    )
    base.update(fields)
    return Detection(**base)  # type: ignore[arg-type]


def test_rule_findings_name_the_pattern() -> None:
    card = (Reason("card_testing.failed_payments", "4 failed payments within 10 minutes"),)
    ato = (Reason("model.fraud", "score"), Reason("ato.new_device_country", "login from ..."))
    assert pattern_of("fraud", card) == "card_testing"
    assert pattern_of("fraud", ato) == "account_takeover"
    assert pattern_of("brushing", (Reason("model.brushing", "5 of 9 orders"),)) == "brushing"
    assert pattern_of("churn", (Reason("churn.inactive", "no activity for 9 days"),)) == "churn"


def test_model_alerts_take_the_pattern_of_a_telling_feature_or_the_evidence() -> None:
    amounts = Reason("model.feature.amounts", "the score falls from 0.9 to 0.2 without ...")
    failed = Reason("model.feature.failed_attempts", "the score falls from 0.9 to 0.5 ...")
    assert pattern_of("fraud", (amounts, failed)) == "card_testing"  # telling beats first
    assert pattern_of("fraud", (amounts,)) == "unusual_amounts"
    declined = tuple(EvidenceEvent(f"p{i}", "payment", T0, 1.0, "failed") for i in range(3))
    assert pattern_of("fraud", (amounts,), declined) == "card_testing"
    assert pattern_of("fraud", (Reason("model.fraud", "score"),)) == "unusual_activity"


def test_evidence_events_carry_type_time_status_and_amount() -> None:
    state = UserState()
    events = card_testing("u1", n=3)
    rows = [event_row(parse_event(orjson.dumps(e))) for e in events]
    state.events = rows
    ids = tuple(e["event_id"] for e in reversed(events))
    det = user_evidence(detection(evidence_event_ids=(*ids, "gone"), event_id=ids[0]), rows)
    alert = to_alert(det, "rules-v1")
    assert [e["event_id"] for e in alert["evidence"]] == list(ids)  # the unknown id skipped
    first = alert["evidence"][0]
    assert first == {
        "event_id": ids[0],
        "type": "payment",
        "ts": format_ts(events[-1]["ts"]),
        "amount": 1.0,
        "status": "failed",
    }
    assert alert["amount_at_stake"] == 1.0  # the triggering payment
    assert alert["evidence_event_ids"] == [*ids, "gone"]  # the contract's field unchanged


def test_summary_reads_pattern_subject_two_reasons_amount_and_score() -> None:
    reasons = (
        Reason("model.fraud", "sequence model score 0.950 >= 0.500"),
        Reason("card_testing.failed_payments", "4 failed payments within 10 minutes"),
        Reason("card_testing.instruments", "4 distinct payment instruments within 10 minutes"),
        Reason("card_testing.small_amounts", "4 payments under 5"),
    )
    alert = to_alert(detection("fraud", *reasons, at_stake=1234.5), "v1")
    assert alert["pattern"] == "card_testing"
    assert alert["summary"] == (
        "Card testing: user u1 - 4 failed payments within 10 minutes; 4 distinct payment "
        "instruments within 10 minutes - 1,234.50 at stake - score 0.95 (threshold 0.50)"
    )
    orjson.dumps(alert)  # all of it serialisable


def test_churn_is_at_stake_for_the_customers_purchases() -> None:
    rows = [
        event_row(parse_event(orjson.dumps(ev("u1", "purchase", T0 + i, amount=a))))
        for i, a in enumerate((10.0, 32.5))
    ]
    rows.append(event_row(parse_event(orjson.dumps(ev("u1", "page_view", T0 + 5)))))
    det = detection("churn", Reason("churn.inactive", "no activity for 9.0 days"))
    alert = to_alert(user_evidence(det, rows), "rules-v1")
    assert alert["amount_at_stake"] == 42.5
    assert alert["summary"].startswith("Churn risk: user u1 - no activity for 9.0 days")


def test_seller_evidence_names_the_buyers_and_sums_the_orders() -> None:
    orders = []
    for i, buyer in enumerate(("b1", "b2", "b1")):
        row: list[object] = [None] * 13
        row[S_TS], row[S_EID], row[S_USER], row[S_KIND], row[S_AMOUNT] = (
            T0 + i, f"o{i}", buyer, "purchase", 4.5)  # fmt: skip
        orders.append(row)
    det = detection(
        "brushing",
        Reason("model.brushing", "3 of 3 orders in 48 hours scored as fake"),
        subject_type="seller",
        subject_id="s1",
        evidence_event_ids=("o2", "o0", "o1"),
    )
    alert = to_alert(seller_evidence(det, orders), "v1")
    assert [(e["event_id"], e["user_id"]) for e in alert["evidence"]] == [
        ("o2", "b1"), ("o0", "b1"), ("o1", "b2")]  # fmt: skip
    assert alert["amount_at_stake"] == 13.5
    assert alert["pattern"] == "brushing" and "seller s1" in alert["summary"]
