"""Live traffic sources.

``simulated_traffic`` feeds ``fraudstream up``: the labelled simulator's marketplace (the
distribution the first-run bundle learned), starting now and running ahead in event time.
``LiveTraffic`` is a small hand-written source stamped with the wall clock: honest
shoppers plus, every few seconds, one of the patterns the rules know (card testing,
account takeover, brushing); the stream benchmark times alerts on it, and the soak
(``stream.local.soak``) runs it with a fixed population of farm accounts.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

Event = dict[str, Any]
COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "PL", "SE")
CATEGORIES = {"books": (5, 40), "electronics": (50, 900), "fashion": (15, 150), "home": (10, 300)}


@dataclass
class Shopper:
    user_id: str
    device_id: str
    ip: str
    country: str
    instrument_id: str


class LiveTraffic:
    """Yields events forever.

    Each brushing burst signs up new fake accounts, so the number of users grows without
    end; with ``farm_accounts`` the bursts reuse a fixed pool of that many accounts
    instead, and the population stays fixed (as a soak needs: its state can then stop
    growing once every window is full)."""

    def __init__(
        self, users: int = 500, sellers: int = 40, seed: int = 7, farm_accounts: int | None = None
    ) -> None:
        self.rng = random.Random(seed)
        self.ids = itertools.count()
        self.shoppers = [self._shopper(f"u{i:05d}") for i in range(users)]
        self.sellers = [f"s{i:03d}" for i in range(sellers)]
        self.run = f"{seed}-{int(time.time())}"  # keeps ids unique across runs
        self.farm = [
            Shopper(f"b{i:04d}", "", "198.51.100.7", "DE", f"tok-b{i:04d}")
            for i in range(farm_accounts or 0)
        ]

    def _shopper(self, user_id: str) -> Shopper:
        r = self.rng
        return Shopper(
            user_id,
            f"d-{user_id}",
            f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}",
            r.choice(COUNTRIES),
            f"tok-{user_id}-{r.randrange(10**6)}",
        )

    def _event(self, shopper: Shopper, type_: str, **fields: Any) -> Event:
        event: Event = {
            "event_id": f"live-{self.run}-{next(self.ids)}",
            "ts": int(time.time() * 1000),
            "user_id": shopper.user_id,
            "type": type_,
            "device_id": shopper.device_id,
            "ip": shopper.ip,
            "country": shopper.country,
        }
        event.update(fields)
        return event

    def session(self, shopper: Shopper) -> Iterator[Event]:
        r = self.rng
        yield self._event(shopper, "login", status="ok")
        category = r.choice(list(CATEGORIES))
        low, high = CATEGORIES[category]
        seller = r.choice(self.sellers)
        item = f"i-{seller}-{r.randrange(50)}"
        price = round(r.uniform(low, high), 2)
        yield self._event(shopper, "search", category=category)
        for _ in range(r.randrange(1, 4)):
            yield self._event(
                shopper, "item_view", item_id=item, seller_id=seller, category=category, price=price
            )
        if r.random() < 0.3:
            yield from self._buy(shopper, item, seller, category, price, shopper.instrument_id)

    def _buy(
        self,
        shopper: Shopper,
        item: str,
        seller: str,
        category: str,
        price: float,
        instrument: str,
        rating: int | None = None,
    ) -> Iterator[Event]:
        order = f"o-{self.run}-{next(self.ids)}"
        common = {"item_id": item, "seller_id": seller, "category": category, "order_id": order}
        yield self._event(shopper, "add_to_cart", price=price, quantity=1, **common)
        yield self._event(shopper, "checkout", amount=price, currency="EUR", **common)
        yield self._event(
            shopper,
            "payment",
            amount=price,
            currency="EUR",
            status="ok",
            instrument_id=instrument,
            payment_method="card",
            **common,
        )
        yield self._event(
            shopper, "purchase", amount=price, currency="EUR", price=price, quantity=1, **common
        )
        if rating is not None:
            yield self._event(shopper, "review", rating=rating, **common)

    def card_testing(self) -> Iterator[Event]:
        shopper = self.rng.choice(self.shoppers)
        for i in range(self.rng.randrange(4, 8)):
            yield self._event(
                shopper,
                "payment",
                amount=round(self.rng.uniform(0.5, 3), 2),
                currency="EUR",
                status="failed" if i % 4 else "ok",
                instrument_id=f"stolen-{self.run}-{next(self.ids)}",
            )

    def account_takeover(self) -> Iterator[Event]:
        victim = self.rng.choice(self.shoppers)
        yield from self.session(victim)  # some honest history first
        thief = Shopper(
            victim.user_id, f"d-x{next(self.ids)}", "203.0.113.9", "BR", f"tok-x{next(self.ids)}"
        )
        yield self._event(thief, "login", status="ok")
        yield self._event(thief, "account_update", attrs={"changed": "shipping_address"})
        seller = self.rng.choice(self.sellers)
        yield from self._buy(
            thief,
            f"i-{seller}-lux",
            seller,
            "electronics",
            round(self.rng.uniform(900, 2500), 2),
            thief.instrument_id,
        )

    def brushing(self) -> Iterator[Event]:
        seller = self.rng.choice(self.sellers)
        device = f"farm-{next(self.ids)}"
        for fake in self._fakes(self.rng.randrange(10, 16), device):
            yield self._event(fake, "login", status="ok")
            yield from self._buy(
                fake, f"i-{seller}-cheap", seller, "books", 1.99, fake.instrument_id, rating=5
            )

    def _fakes(self, n: int, device: str) -> Iterator[Shopper]:
        """``n`` accounts on the farm's ``device``: new ones, or drawn from the pool."""
        if self.farm:
            for account in self.rng.sample(self.farm, min(n, len(self.farm))):
                yield replace(account, device_id=device)
            return
        for _ in range(n):
            user_id = f"b-{self.run}-{next(self.ids)}"
            yield Shopper(user_id, device, "198.51.100.7", "DE", f"tok-b{next(self.ids)}")

    def __iter__(self) -> Iterator[Event]:
        patterns = (self.card_testing, self.account_takeover, self.brushing)
        for n in itertools.count():
            if n and n % 60 == 0:
                yield from patterns[(n // 60) % 3]()
            yield from self.session(self.rng.choice(self.shoppers))


def simulated_traffic(seed: int, start: datetime | None = None) -> Iterator[Event]:
    """The simulator's events from ``start`` (default now) on, two simulated weeks at a time
    (a new seed each), forever. Event time runs as fast as the events are produced: the
    worker keeps time by ``ts``, so sessions, gaps, cooldowns and the churn clock behave as
    in the simulated days. Fraud and brushing are more frequent than by default, so a demo
    shows both within a minute or two; ids carry the seed, so reruns never collide."""
    from stream.simulate import SimConfig, iter_events

    begin = start or datetime.now(UTC)
    for run in itertools.count():
        config = SimConfig(
            users=2000,
            days=14,
            seed=seed + run,
            start=begin + timedelta(days=14 * run),
            id_prefix=f"live{seed + run}-",
            fraud_rate=0.05,
            brushing_seller_rate=0.1,
            # A fifth of the orders fake (default 0.05): the first ring is flagged within
            # hours of event time, about a minute at 200 events/s, instead of days.
            brushing_order_share=0.2,
        )
        for event, _labels in iter_events(config):
            yield event
