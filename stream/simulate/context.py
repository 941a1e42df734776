"""Shared state and building blocks of the simulation: time, sessions and orders."""

from __future__ import annotations

import math
import random
from bisect import bisect
from itertools import accumulate
from typing import Any

from stream.core.timeutil import DAY_MS, HOUR_MS
from stream.simulate.config import SimConfig
from stream.simulate.emitter import Emitter, Session
from stream.simulate.world import Item, User, World, ipv4, ipv6, token


class Context:
    def __init__(self, config: SimConfig, rng: random.Random, world: World, em: Emitter) -> None:
        self.config = config
        self.rng = rng
        self.world = world
        self.em = em
        self.currency = config.currency
        self.hour_cum = list(accumulate(config.hour_weights))
        self.purchases_today = 0  # every non-fake purchase of sessions started today

    def day_start(self, day: int) -> int:
        return self.config.start_ms + day * DAY_MS

    def session_start(self, day: int) -> int:
        """A start time on ``day`` following the daily activity profile."""
        rng = self.rng
        hour = bisect(self.hour_cum, rng.random() * self.hour_cum[-1])
        return self.day_start(day) + min(hour, 23) * HOUR_MS + rng.randrange(HOUR_MS)

    def dwell(self, median_s: float, sigma: float = 0.8) -> int:
        """A log-normal pause in milliseconds: most short, a few long."""
        return 1 + int(median_s * 1000.0 * math.exp(self.rng.gauss(0.0, sigma)))

    def open_session(self, user: User, t: int, day: int, label: str | None = None) -> Session:
        """A session from the user's own devices and networks (abroad while on a trip)."""
        rng = self.rng
        devices = user.devices
        device = devices[0] if len(devices) == 1 or rng.random() < 0.65 else rng.choice(devices)
        if user.trip_until >= day:
            country, ip = user.trip_country, ipv4(rng, user.trip_prefix)
        elif device == devices[0] and rng.random() < 0.8:
            country, ip = user.country, user.home_ip
        else:
            country = user.country
            ip = ipv6(rng) if rng.random() < 0.08 else ipv4(rng, user.mobile_prefix)
        return Session(self.em, user, token(rng, "ss_"), t, device, ip, country, label)

    def home_session(self, user: User, t: int, label: str | None = None) -> Session:
        """A short later visit (to review or ask for a refund) from home."""
        return Session(
            self.em,
            user,
            token(self.rng, "ss_"),
            t,
            user.devices[0],
            user.home_ip,
            user.country,
            label,
        )

    @staticmethod
    def item_fields(item: Item) -> dict[str, Any]:
        return {
            "item_id": item.item_id,
            "seller_id": item.seller_id,
            "category": item.category,
            "price": item.price,
        }

    def order(
        self,
        s: Session,
        item: Item,
        quantity: int,
        instrument: tuple[str, str],
        fail_first: bool = False,
        purchase_label: str | None = None,
        attrs: dict[str, Any] | None = None,
        gap_s: float = 15.0,
    ) -> str:
        """Checkout, payment (maybe a declined first attempt) and purchase of one order line."""
        order_id = token(self.rng, "o_")
        amount = round(item.price * quantity, 2)
        base = {
            "item_id": item.item_id,
            "seller_id": item.seller_id,
            "category": item.category,
            "price": item.price,
            "quantity": quantity,
            "order_id": order_id,
            "amount": amount,
            "currency": self.currency,
        }
        if attrs:
            base["attrs"] = attrs
        s.add("checkout", self.dwell(gap_s), base)
        method, instrument_id = instrument
        pay = {**base, "payment_method": method, "instrument_id": instrument_id}
        if fail_first:
            s.add("payment", self.dwell(8.0), {**pay, "status": "failed"})
        s.add("payment", self.dwell(10.0), {**pay, "status": "ok"})
        label = s.label
        if purchase_label is not None:
            s.label = purchase_label
        s.add("purchase", self.dwell(1.0, 0.5), pay)
        s.label = label
        return order_id

    def review(
        self,
        user: User,
        item: Item,
        order_id: str,
        t: int,
        rating: int,
        text_len: int,
        label: str | None = None,
    ) -> None:
        s = self.home_session(user, t, label)
        s.add(
            "review",
            0,
            {
                "item_id": item.item_id,
                "seller_id": item.seller_id,
                "category": item.category,
                "order_id": order_id,
                "rating": rating,
                "attrs": {"text_len": text_len},
            },
        )

    def refund(
        self,
        user: User,
        item: Item,
        order_id: str,
        quantity: int,
        t: int,
        reason: str,
        label: str | None = None,
    ) -> None:
        s = self.home_session(user, t, label)
        s.add(
            "refund",
            0,
            {
                "item_id": item.item_id,
                "seller_id": item.seller_id,
                "category": item.category,
                "price": item.price,
                "quantity": quantity,
                "order_id": order_id,
                "amount": round(item.price * quantity, 2),
                "currency": self.currency,
                "attrs": {"reason": reason},
            },
        )

    def instrument(self, user: User) -> tuple[str, str]:
        instruments = user.instruments
        if len(instruments) == 1 or self.rng.random() < 0.75:
            return instruments[0]
        return self.rng.choice(instruments)

    def poisson(self, lam: float) -> int:
        """Knuth's method: exact and fast for the small rates used here."""
        if lam <= 0.0:
            return 0
        if lam > 30.0:
            return max(0, round(self.rng.gauss(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k
