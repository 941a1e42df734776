"""Test fixture: a small, simple synthetic shop with labelled fraud, brushing and churn.

Not the project's simulator; just enough structure for the model tests to learn from:
account takeovers (new device, IP and country, account update, new instrument, big
purchase), brushing (fake buyers who purchase from one seller without browsing and leave
fast 5-star reviews) and churners who stop coming back.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stream.core.timeutil import DAY_MS, HOUR_MS

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass
class Fixture:
    events: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _User:
    uid: str
    device: str
    ip: str
    country: str
    instrument: str
    last_day: int


class _Gen:
    def __init__(self, seed: int, n_sellers: int) -> None:
        self.rng = random.Random(seed)
        self.fx = Fixture()
        self.n = 0
        self.sellers = [f"s{i}" for i in range(n_sellers)]

    def emit(self, user: str, ts: int, etype: str, **fields: Any) -> dict[str, Any]:
        self.n += 1
        ev: dict[str, Any] = {"event_id": f"e{self.n}", "ts": ts, "user_id": user, "type": etype}
        ev.update({k: v for k, v in fields.items() if v is not None})
        self.fx.events.append(ev)
        return ev

    def item(self) -> dict[str, Any]:
        seller = self.rng.choice(self.sellers)
        return {
            "item_id": f"i{self.rng.randrange(400)}",
            "seller_id": seller,
            "category": f"c{self.rng.randrange(20)}",
            "price": round(self.rng.lognormvariate(3.0, 0.8), 2),
        }

    def session(self, u: _User, ts: int, *, fraud: bool = False) -> int:
        r = self.rng
        dev, ip, country, inst = u.device, u.ip, u.country, u.instrument
        if fraud:
            dev, ip = f"d{r.randrange(10**9)}", f"10.{r.randrange(255)}.{r.randrange(255)}.9"
            country, inst = r.choice(["RU", "NG", "BR", "VN"]), f"x{r.randrange(10**9)}"
        sid = f"s{r.randrange(10**12)}"
        common = {"session_id": sid, "device_id": dev, "ip": ip, "country": country}
        marked: list[dict[str, Any]] = []
        for _ in range(r.randrange(2) if fraud else 0):
            ts += r.randrange(5_000, 30_000)
            marked.append(self.emit(u.uid, ts, "login", status="failed", **common))
        ts += r.randrange(1_000, 60_000)
        marked.append(self.emit(u.uid, ts, "login", status="ok", **common))
        if fraud:
            ts += r.randrange(10_000, 120_000)
            marked.append(self.emit(u.uid, ts, "account_update", **common))
        it = self.item()
        for _ in range(r.randrange(1, 3) if fraud else r.randrange(2, 9)):
            ts += r.randrange(3_000, 90_000)
            it = self.item()
            self.emit(
                u.uid,
                ts,
                r.choice(["page_view", "search", "item_view", "item_view"]),
                **common,
                **it,
            )
        if fraud or r.random() < 0.35:
            qty = r.randrange(3, 9) if fraud else r.randrange(1, 3)
            amount = round(it["price"] * qty * (4 if fraud else 1), 2)
            order = f"o{self.n}"
            pay = {
                "order_id": order,
                "amount": amount,
                "payment_method": "card",
                "instrument_id": inst,
                "currency": "EUR",
            }
            ts += r.randrange(5_000, 60_000)
            self.emit(u.uid, ts, "add_to_cart", **common, **it, quantity=qty)
            ts += r.randrange(5_000, 60_000)
            marked.append(
                self.emit(u.uid, ts, "checkout", **common, **it, quantity=qty, order_id=order)
            )
            if fraud and r.random() < 0.5:
                ts += r.randrange(2_000, 20_000)
                marked.append(self.emit(u.uid, ts, "payment", status="failed", **common, **pay))
            ts += r.randrange(2_000, 20_000)
            marked.append(self.emit(u.uid, ts, "payment", status="ok", **common, **pay))
            ts += r.randrange(1_000, 5_000)
            marked.append(self.emit(u.uid, ts, "purchase", **common, **it, **pay, quantity=qty))
            if not fraud and r.random() < 0.3:
                ts += r.randrange(DAY_MS, 3 * DAY_MS)
                self.emit(
                    u.uid,
                    ts,
                    "review",
                    rating=r.randrange(2, 6),
                    **common,
                    item_id=it["item_id"],
                    seller_id=it["seller_id"],
                    order_id=order,
                )
        if fraud:
            for ev in marked:
                self.fx.labels.append({"kind": "fraud", "event_id": ev["event_id"]})
        return ts

    def brushing_order(self, buyer: str, seller: str, ts: int) -> None:
        r = self.rng
        common = {
            "session_id": f"b{r.randrange(10**9)}",
            "device_id": f"bd{r.randrange(3)}",
            "ip": "192.0.2.7",
            "country": "US",
        }
        order = f"o{self.n}"
        item = {
            "item_id": f"bi{r.randrange(5)}",
            "seller_id": seller,
            "category": "c0",
            "price": 9.99,
        }
        self.emit(buyer, ts, "login", status="ok", **common)
        ts += r.randrange(2_000, 10_000)
        self.emit(buyer, ts, "checkout", **common, **item, quantity=1, order_id=order)
        ts += r.randrange(1_000, 5_000)
        pay = {
            "order_id": order,
            "amount": 9.99,
            "payment_method": "wallet",
            "instrument_id": "shared-wallet",
        }
        self.emit(buyer, ts, "payment", status="ok", **common, **pay)
        ts += r.randrange(1_000, 5_000)
        ev = self.emit(buyer, ts, "purchase", **common, **item, **pay, quantity=1)
        self.fx.labels.append({"kind": "brushing", "event_id": ev["event_id"]})
        ts += r.randrange(60_000, 600_000)
        self.emit(
            buyer,
            ts,
            "review",
            rating=5,
            **common,
            item_id=item["item_id"],
            seller_id=seller,
            order_id=order,
        )


def make_fixture(users: int = 300, days: int = 40, seed: int = 7) -> Fixture:
    """Events (``ts`` as epoch ms) and labels as in docs/contract.md, deterministic in ``seed``."""
    g = _Gen(seed, n_sellers=30)
    r = g.rng
    for k in range(users):
        churn_day = r.randrange(3, days) if r.random() < 0.25 else days + 1
        u = _User(f"u{k}", f"d{k}", f"172.16.{k % 250}.{k % 7}", "DE", f"inst{k}", 0)
        fraud_day = r.randrange(5, days) if r.random() < 0.15 else -1
        for day in range(min(days, churn_day)):
            if r.random() < 0.45:
                ts = START_MS + day * DAY_MS + r.randrange(6 * HOUR_MS, 22 * HOUR_MS)
                g.session(u, ts)
                u.last_day = day
            if day == fraud_day:
                g.session(u, START_MS + day * DAY_MS + r.randrange(0, 5 * HOUR_MS), fraud=True)
        if churn_day <= days:
            mine = [e["ts"] for e in g.fx.events if e["user_id"] == u.uid]
            if mine:
                g.fx.labels.append({"kind": "churn", "user_id": u.uid, "ts": _rfc3339(max(mine))})
    for b in range(3):
        seller = g.sellers[b]
        g.fx.labels.append({"kind": "brushing", "seller_id": seller})
        for j in range(users // 20):
            buyer = f"fake{b}-{j}"
            for _ in range(r.randrange(1, 4)):
                g.brushing_order(buyer, seller, START_MS + r.randrange(days * DAY_MS))
    g.fx.events.sort(key=lambda e: (e["ts"], e["event_id"]))
    return g.fx


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def write_fixture(fx: Fixture, events_path: Path, labels_path: Path) -> None:
    """Write JSON Lines; every other event carries ``ts`` as RFC 3339 to exercise parsing."""
    with events_path.open("w", encoding="utf-8") as f:
        for i, ev in enumerate(fx.events):
            row = dict(ev, ts=_rfc3339(ev["ts"])) if i % 2 else ev
            f.write(json.dumps(row) + "\n")
    with labels_path.open("w", encoding="utf-8") as f:
        for lab in fx.labels:
            f.write(json.dumps(lab) + "\n")
