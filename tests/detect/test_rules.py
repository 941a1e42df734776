from __future__ import annotations

from typing import Any

from stream.core.schema import Event
from stream.core.state import S_BROWSED, Row, SellerState, UserState
from stream.core.timeutil import HOUR_MS, MINUTE_MS
from stream.detect.processor import DetectorConfig, apply_seller_record, apply_user_event
from tests.events import T0, card_testing, ev

CFG = DetectorConfig()
MIN = MINUTE_MS
HOUR = HOUR_MS


def run(events: list[dict[str, Any]]) -> tuple[UserState, list[Any], list[tuple[str, Row]]]:
    """Feed events through the user side; return final state, detections, seller records."""
    state = UserState()
    detections, records = [], []
    for raw in events:
        result = apply_user_event(state, Event.model_validate(raw), CFG)
        detections += result.detections
        if result.seller_record:
            records.append(result.seller_record)
    return state, detections, records


def test_card_testing_fires_once_with_evidence() -> None:
    events = card_testing("u1", n=4)
    _, dets, _ = run(events)
    assert len(dets) == 1  # the 3rd failure fires, the 4th is inside the cooldown
    det = dets[0]
    assert det.kind == "fraud" and det.subject_id == "u1"
    assert det.event_id == events[2]["event_id"]
    assert det.score >= det.threshold
    assert {r.code for r in det.reasons} >= {"card_testing.failed_payments"}
    assert set(det.evidence_event_ids) == {e["event_id"] for e in events[:3]}


def test_card_testing_quiet_for_honest_retries_on_one_card() -> None:
    events = [
        ev("u2", "payment", T0 + i * MIN, status="failed", amount=40.0, instrument_id="my-card")
        for i in range(5)
    ]
    assert run(events)[1] == []


def test_card_testing_quiet_when_failures_are_spread_out() -> None:
    events = [
        ev("u3", "payment", T0 + i * 30 * MIN, status="failed", amount=1.0, instrument_id=f"c{i}")
        for i in range(5)
    ]
    assert run(events)[1] == []


def history(user: str) -> list[dict[str, Any]]:
    return [
        ev(user, "login", T0 + i * HOUR, status="ok", device_id="home", country="DE", ip="10.0.0.1")
        for i in range(3)
    ] + [ev(user, "purchase", T0 + 4 * HOUR, amount=50.0, device_id="home", country="DE")]


def takeover(
    user: str, amount: float, update: bool = True, device: str = "evil", country: str = "BR"
) -> list[dict[str, Any]]:
    t = T0 + 10 * HOUR
    seq = [ev(user, "login", t, status="ok", device_id=device, country=country, ip="203.0.113.9")]
    if update:
        seq.append(ev(user, "account_update", t + MIN, device_id=device))
    seq.append(
        ev(user, "purchase", t + 2 * MIN, amount=amount, device_id=device, instrument_id="new-card")
    )
    return seq


def test_account_takeover_fires_on_the_large_purchase() -> None:
    events = history("v1") + takeover("v1", 1500.0)
    dets = run(events)[1]
    assert len(dets) == 1
    assert dets[0].event_id == events[-1]["event_id"]
    assert dets[0].reasons[0].code.startswith("ato.")
    assert events[-3]["event_id"] in dets[0].evidence_event_ids  # the suspicious login


def test_account_takeover_quiet_without_update_or_when_small_or_known_device() -> None:
    assert run(history("v2") + takeover("v2", 1500.0, update=False))[1] == []
    assert run(history("v3") + takeover("v3", 120.0))[1] == []
    assert run(history("v4") + takeover("v4", 1500.0, device="home", country="DE"))[1] == []


def seller_run(records: list[tuple[str, Row]]) -> list[Any]:
    state = SellerState()
    dets = []
    for seller, row in sorted(records, key=lambda r: r[1][0]):
        result = apply_seller_record(state, seller, row, CFG)
        dets += result.detections
    return dets


def brushing_ring(seller: str, n: int = 12) -> list[dict[str, Any]]:
    events = []
    for i in range(n):
        user, t, order = f"fake-{seller}-{i}", T0 + i * 10 * MIN, f"o-{seller}-{i}"
        events.append(
            ev(
                user,
                "purchase",
                t,
                seller_id=seller,
                item_id="cheap",
                amount=1.5,
                order_id=order,
                device_id="farm-1",
                ip="198.51.100.7",
            )
        )
        events.append(
            ev(
                user,
                "review",
                t + 20 * MIN,
                seller_id=seller,
                item_id="cheap",
                rating=5,
                order_id=order,
            )
        )
    return events


def flash_sale(seller: str, n: int = 30) -> list[dict[str, Any]]:
    events = []
    for i in range(n):
        user, t = f"loyal-{seller}-{i}", T0 + i * MIN
        events += history(user)[:1]  # an established account with its own device
        events.append(
            ev(
                user,
                "item_view",
                T0 + 5 * HOUR + i * MIN,
                seller_id=seller,
                item_id="deal",
                device_id=f"dev-{i}",
            )
        )
        events.append(
            ev(
                user,
                "purchase",
                T0 + 5 * HOUR + i * MIN + 30_000,
                seller_id=seller,
                item_id="deal",
                amount=19.0,
                device_id=f"dev-{i}",
                order_id=f"f{i}",
            )
        )
        del t
    return events


def test_brushing_fires_for_a_ring_and_names_the_suspect_orders() -> None:
    records: list[tuple[str, Row]] = []
    for user_events in _by_user(brushing_ring("s1")):
        records += run(user_events)[2]
    dets = seller_run(records)
    # At most one alert per seller and 6-hour event-time window; this ring spans two.
    assert 1 <= len(dets) <= 2 and len({d.window for d in dets}) == len(dets)
    det = dets[0]
    assert det.kind == "brushing" and det.subject_type == "seller" and det.subject_id == "s1"
    codes = {r.code for r in det.reasons}
    assert "brushing.no_browsing" in codes and len(codes) >= 3
    assert len(det.evidence_event_ids) >= CFG.rules.brushing_min_orders


def test_brushing_quiet_for_a_flash_sale() -> None:
    records: list[tuple[str, Row]] = []
    for user_events in _by_user(flash_sale("s2")):
        records += run(user_events)[2]
    assert len(records) == 30
    assert seller_run(records) == []


def _by_user(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    users: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        users.setdefault(e["user_id"], []).append(e)
    return [sorted(v, key=lambda e: e["ts"]) for v in users.values()]


def test_seller_records_say_whether_the_buyer_browsed_first() -> None:
    def browsed(views: list[dict[str, Any]], **purchase: Any) -> int:
        buy = ev(
            "b", "purchase", T0 + 10 * MIN, amount=5.0, seller_id="s1", order_id="o", **purchase
        )
        _, _, records = run([*views, buy])
        seller, row = records[-1]
        assert seller == "s1"
        return int(row[S_BROWSED])

    def view(item: str, at: int, seller: str = "s1") -> dict[str, Any]:
        return ev("b", "item_view", T0 + at * MIN, item_id=item, seller_id=seller)

    assert browsed([view("i1", 1)], item_id="i1") == 1
    assert browsed([view("i2", 1)], item_id="i1") == 0  # another item of the seller
    assert browsed([view("i1", 1)]) == 1  # no item named: any item of the seller counts
    assert browsed([view("i1", 1, seller="s2")]) == 0
    assert browsed([view("i1", 11)], item_id="i1") == 0  # viewed after the purchase
    assert browsed([], item_id="i1") == 0
