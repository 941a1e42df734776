"""What the worker's user and seller views show, without a worker (the served pages are
checked against a real one in ``test_worker_kafka``)."""

from __future__ import annotations

import orjson

from stream.core.schema import parse_event
from stream.core.state import SellerState, StateLimits, UserState
from stream.runtime.subject_views import (
    RecentAlerts,
    as_html,
    index,
    seller_view,
    user_view,
    wants_html,
)
from tests.events import T0, ev


def test_user_view_names_fields_in_rfc3339_and_says_what_was_new() -> None:
    state = UserState()
    login = ev("u1", "login", T0, device_id="d0", country="FR")
    payment = ev("u1", "payment", T0 + 1000, device_id="d1", country="DE", amount=9.5)
    for e in (login, payment):
        state.add(parse_event(orjson.dumps(e)), StateLimits())
    view = user_view("u1", state, [{"kind": "fraud", "summary": "s"}])
    assert view["first_seen"] == "2026-11-18T11:06:40.000Z"
    assert view["last_event"] == "2026-11-18T11:06:41.000Z"
    assert view["events_seen"] == 2 and view["known"]["devices"] == 2
    login, payment = view["events"]
    # Nothing is new for a user never seen before; the payment's device and country are.
    assert "new_for_user" not in login and "flags" not in login
    assert payment["new_for_user"] == ["device", "country"]
    assert payment["ts"] == "2026-11-18T11:06:41.000Z" and payment["amount"] == 9.5
    assert view["recent_alerts"] == [{"kind": "fraud", "summary": "s"}]


def test_seller_view_names_the_order_fields() -> None:
    state = SellerState()
    row = [T0, "o1", "b1", "purchase", 4.9, None, 0, 3_600_000, 4, "d", "10.0.0.1", "ord", "i1",
           0.84]  # fmt: skip
    state.add(row, StateLimits())
    [order] = seller_view("s1", state, [])["orders"]
    assert order == {
        "ts": "2026-11-18T11:06:40.000Z", "event_id": "o1", "type": "purchase",
        "user_id": "b1", "amount": 4.9, "buyer_viewed_item": False,
        "buyer_account_age_hours": 1.0, "buyer_events": 4, "device_id": "d",
        "ip": "10.0.0.1", "order_id": "ord", "item_id": "i1", "brushing_score": 0.84,
    }  # fmt: skip


def test_recent_alerts_newest_first_bounded_per_subject_and_in_subjects() -> None:
    recent = RecentAlerts(per_subject=2, subjects=2)
    for i in range(3):
        recent.add({"alert_id": f"a{i}", "kind": "fraud", "subject": {"type": "user", "id": "u1"}})
    assert [a["alert_id"] for a in recent.of("user", "u1")] == ["a2", "a1"]
    recent.add({"alert_id": "b", "kind": "churn", "subject": {"type": "user", "id": "u2"}})
    recent.add({"alert_id": "c", "kind": "brushing", "subject": {"type": "seller", "id": "u1"}})
    assert recent.of("user", "u1") == []  # the least recently alerted subject went first
    assert recent.of("seller", "u1")[0]["alert_id"] == "c"


def test_html_only_for_clients_that_prefer_it() -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert wants_html(browser)
    assert not wants_html(None) and not wants_html("*/*") and not wants_html("application/json")
    assert not wants_html("application/json, text/html")
    page = as_html("fraudstream worker", index())
    assert page.startswith("<!DOCTYPE html>") and "/users/{user_id}" in page
    assert "<script" not in page
