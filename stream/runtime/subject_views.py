"""What the worker's web views show about a user or a seller, for a person on call: named
fields, RFC 3339 times, what was new about each event, the subject's recent alerts; as
JSON, or as a small HTML page when a browser asks (``Accept: text/html``).

Pure functions over the stored states, free of Faust; ``stream.runtime.views`` serves them.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from html import escape
from typing import Any

from stream.core.state import (
    FLAGS,
    NEW_COUNTRY,
    NEW_DEVICE,
    NEW_INSTRUMENT,
    NEW_IP,
    S_AMOUNT,
    S_BROWSED,
    S_BUYER_AGE,
    S_BUYER_EVENTS,
    S_DEVICE,
    S_EID,
    S_IP,
    S_ITEM,
    S_KIND,
    S_MODEL,
    S_ORDER,
    S_RATING,
    S_TS,
    S_USER,
    TS,
    Row,
    SellerState,
    UserState,
    row_to_dict,
)
from stream.core.timeutil import HOUR_MS, format_ts

NOVELTY = ((NEW_DEVICE, "device"), (NEW_IP, "ip"), (NEW_COUNTRY, "country"),
           (NEW_INSTRUMENT, "instrument"))  # fmt: skip
ENDPOINTS = (
    ("/", "this list"),
    ("/metrics", "Prometheus metrics"),
    ("/users/{user_id}", "a user's recent events, novelty, cooldowns and recent alerts"),
    ("/sellers/{seller_id}", "a seller's recent orders and reviews and recent alerts"),
    ("/tables", "keys and bytes of the local state tables (a scan; not for scraping)"),
)
KNOWN = ("devices", "ips", "countries", "instruments")


class RecentAlerts:
    """The last few alerts per subject that this worker emitted since it started, for the
    views; bounded in subjects (least recently alerted out) and per subject."""

    def __init__(self, per_subject: int = 10, subjects: int = 10_000) -> None:
        self.per_subject, self.subjects = per_subject, subjects
        self._by: OrderedDict[tuple[str, str], deque[dict[str, Any]]] = OrderedDict()

    def add(self, alert: dict[str, Any]) -> None:
        key = (alert["subject"]["type"], alert["subject"]["id"])
        alerts = self._by.pop(key, None) or deque(maxlen=self.per_subject)
        alerts.append({k: alert[k] for k in SHOWN_ALERT_FIELDS if k in alert})
        self._by[key] = alerts
        while len(self._by) > self.subjects:
            self._by.popitem(last=False)

    def of(self, subject_type: str, subject_id: str) -> list[dict[str, Any]]:
        """Newest first."""
        return list(reversed(self._by.get((subject_type, subject_id), ())))


SHOWN_ALERT_FIELDS = ("alert_id", "kind", "pattern", "score", "threshold", "event_ts",
                      "emitted_at", "summary", "model_version")  # fmt: skip


def index() -> dict[str, Any]:
    return {
        "service": "fraudstream worker",
        "endpoints": [{"path": p, "shows": what} for p, what in ENDPOINTS],
    }


def user_view(user_id: str, state: UserState, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    events = []
    for row in state.events:
        event = {k: v for k, v in row_to_dict(row).items() if v is not None and k != "flags"}
        event["ts"] = format_ts(row[TS])
        new = [name for bit, name in NOVELTY if row[FLAGS] & bit]
        if new:
            event["new_for_user"] = new  # first time this user showed that value
        events.append(event)
    return {
        "user_id": user_id,
        "first_seen": format_ts(state.first_ts),
        "last_event": format_ts(state.max_ts),
        "events_seen": state.total,
        "known": {name: len(values) for name, values in zip(KNOWN, state.known, strict=True)},
        "cooldowns_since": {name: format_ts(ts) for name, ts in state.cooldowns.items()},
        "recent_alerts": alerts,
        "events": events,  # oldest first, as kept
    }


def seller_view(seller_id: str, state: SellerState, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "seller_id": seller_id,
        "last_event": format_ts(state.max_ts),
        "cooldowns_since": {name: format_ts(ts) for name, ts in state.cooldowns.items()},
        "recent_alerts": alerts,
        "orders": [_order(r) for r in state.orders],  # oldest first, as kept
    }


def _order(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ts": format_ts(row[S_TS]),
        "event_id": row[S_EID],
        "type": row[S_KIND],
        "user_id": row[S_USER],
        "amount": row[S_AMOUNT],
        "rating": row[S_RATING],
        "buyer_viewed_item": bool(row[S_BROWSED]),
        "buyer_account_age_hours": round(row[S_BUYER_AGE] / HOUR_MS, 1),
        "buyer_events": row[S_BUYER_EVENTS],
        "device_id": row[S_DEVICE],
        "ip": row[S_IP],
        "order_id": row[S_ORDER],
        "item_id": row[S_ITEM] if len(row) > S_ITEM else None,
    }
    if len(row) > S_MODEL:
        out["brushing_score"] = row[S_MODEL]  # the buyer-side model's, when scored
    return {k: v for k, v in out.items() if v is not None}


def wants_html(accept: str | None) -> bool:
    """A browser's Accept header names text/html before (or instead of) JSON."""
    if not accept:
        return False
    html, json_ = accept.find("text/html"), accept.find("application/json")
    return html >= 0 and (json_ < 0 or html < json_)


def as_html(title: str, view: dict[str, Any]) -> str:
    """A small page: scalar fields as a table, lists of records as tables."""
    head, tables = [], []
    for key, value in view.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            tables.append(f"<h2>{escape(key)}</h2>{_table(value)}")
        elif isinstance(value, list) and not value:
            tables.append(f"<h2>{escape(key)}</h2><p>none</p>")
        else:
            head.append(f"<tr><th>{escape(key)}</th><td>{_cell(value)}</td></tr>")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        "</title><style>body{font-family:sans-serif;margin:20px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}"
        f"</style></head><body><h1>{escape(title)}</h1><table>{''.join(head)}</table>"
        f"{''.join(tables)}</body></html>"
    )


def _table(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return escape(", ".join(f"{k}: {v}" for k, v in value.items()))
    if isinstance(value, list):
        return escape(", ".join(map(str, value)))
    return escape(str(value))
