"""Brushing: sellers buying their own cheap items through pools of throwaway accounts, then
leaving fast 5-star reviews, in bursts. Each fake order's purchase event is labelled."""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.core.timeutil import HOUR_MS
from stream.simulate.context import Context
from stream.simulate.emitter import Session
from stream.simulate.world import (
    ATTACKER_NETS,
    CATEGORY_NAMES,
    COUNTRIES,
    COUNTRY_INDEX,
    Item,
    Seller,
    User,
    token,
)

BRUSHING = "brushing"


@dataclass
class Farm:
    """One brushing seller's operation; its habits are drawn once, so farms differ."""

    seller: Seller
    targets: list[Item]
    devices: list[str]
    net: tuple[int, int, int]  # the /24 all accounts come from
    country: str
    instruments: list[tuple[str, str]]
    pool_size: int
    burst_p: float  # chance of a burst on a given day
    browse_p: float  # chance a fake order views the item first
    review_p: float
    review_delay_h: float
    burst_hours: float
    accounts: list[User] = field(default_factory=list)


def setup(ctx: Context) -> list[Farm]:
    """Choose brushing sellers and give each cheap listings to push and an account farm.
    Runs before the catalogue is indexed, so honest users can find those listings too."""
    rng, cfg, world = ctx.rng, ctx.config, ctx.world
    if cfg.brushing_order_share <= 0 or cfg.brushing_seller_rate <= 0:
        return []
    count = max(1, round(cfg.brushing_seller_rate * len(world.sellers)))
    farms = []
    for seller in rng.sample(world.sellers, min(count, len(world.sellers))):
        seller.brushing = True
        cat = CATEGORY_NAMES.index(seller.items[0].category)
        cheap = [
            Item(
                token(rng, "i_", 40),
                seller.seller_id,
                CATEGORY_NAMES[cat],
                round(rng.uniform(0.99, 12.0), 2),
            )
            for _ in range(rng.randint(1, 4))
        ]
        seller.items.extend(cheap)
        if rng.random() < 0.5:
            code, a_b = rng.choice(ATTACKER_NETS)
        else:
            code = seller.country
            a_b = rng.choice(COUNTRIES[COUNTRY_INDEX[code]][2])
        farms.append(
            Farm(
                seller=seller,
                targets=cheap,
                devices=[token(rng, "d_", 48) for _ in range(rng.randint(1, 6))],
                net=(a_b[0], a_b[1], rng.randrange(256)),
                country=code,
                instruments=[
                    (rng.choice(("prepaid_card", "wallet", "card")), token(rng, "pi_"))
                    for _ in range(rng.randint(1, 5))
                ],
                pool_size=rng.randint(6, 40),
                burst_p=rng.uniform(0.2, 0.6),
                browse_p=rng.uniform(0.0, 0.4),
                review_p=rng.uniform(0.6, 0.98),
                review_delay_h=rng.uniform(0.5, 30.0),
                burst_hours=rng.uniform(0.5, 6.0),
            )
        )
    return farms


class Brushing:
    """Per day, fake orders fill the configured share of all purchases, in farm bursts."""

    def __init__(self, ctx: Context, farms: list[Farm]) -> None:
        self.ctx = ctx
        self.farms = farms
        share = ctx.config.brushing_order_share
        self.ratio = share / (1.0 - share)
        self.owed = 0.0  # fake orders due but not yet placed (no farm burst that day)

    def run_day(self, day: int, honest_purchases: int) -> int:
        if not self.farms:
            return 0
        rng = self.ctx.rng
        self.owed += self.ratio * honest_purchases
        active = [f for f in self.farms if rng.random() < f.burst_p]
        due = int(self.owed)
        if not active or due == 0:
            return 0
        self.owed -= due
        weights = [rng.uniform(0.3, 1.0) for _ in active]
        total = sum(weights)
        placed = 0
        for i, farm in enumerate(active):
            n = due - placed if i == len(active) - 1 else int(due * weights[i] / total)
            placed += n
            self._burst(farm, day, n)
        return placed

    def _burst(self, farm: Farm, day: int, orders: int) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        night = rng.random() < 0.4
        hour = rng.randint(0, 5) if night else rng.randint(8, 21)
        t0 = ctx.day_start(day) + hour * HOUR_MS + rng.randrange(HOUR_MS)
        span = int(farm.burst_hours * HOUR_MS)
        for t in sorted(t0 + rng.randrange(span) for _ in range(orders)):
            self._fake_order(farm, self._account(farm, day), t)

    def _account(self, farm: Farm, day: int) -> User:
        rng, world = self.ctx.rng, self.ctx.world
        if len(farm.accounts) < farm.pool_size and (not farm.accounts or rng.random() < 0.4):
            user = world.new_user(COUNTRY_INDEX.get(farm.country))
            user.role = "brushing_account"
            user.country = farm.country
            user.devices = [rng.choice(farm.devices)]
            user.instruments = [rng.choice(farm.instruments)]
            user.home_ip = self._ip(farm)
            farm.accounts.append(user)
            return user
        return rng.choice(farm.accounts)

    def _ip(self, farm: Farm) -> str:
        a, b, c = farm.net
        return f"{a}.{b}.{c}.{self.ctx.rng.randrange(1, 255)}"

    def _fake_order(self, farm: Farm, user: User, t: int) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        device = user.devices[0] if rng.random() < 0.7 else rng.choice(farm.devices)
        s = Session(ctx.em, user, token(rng, "ss_"), t, device, self._ip(farm), farm.country)
        if rng.random() < 0.1:  # a little filler browsing to look like a shopper
            for _ in range(rng.randint(1, 3)):
                item = ctx.world.catalogue.pick(rng, ctx.world.catalogue.any_category(rng))
                s.add("item_view", ctx.dwell(15.0), ctx.item_fields(item))
        if rng.random() < 0.8:
            s.add("login", ctx.dwell(3.0), {"status": "ok"})
        item = rng.choice(farm.targets)
        if rng.random() < farm.browse_p:
            s.add("item_view", ctx.dwell(6.0), ctx.item_fields(item))
        if rng.random() < 0.5:
            s.add("add_to_cart", ctx.dwell(4.0), {**ctx.item_fields(item), "quantity": 1})
        order_id = ctx.order(s, item, 1, user.instruments[0], purchase_label=BRUSHING, gap_s=4.0)
        if rng.random() < 0.5:
            s.add("logout", ctx.dwell(5.0))
        if rng.random() < farm.review_p:
            when = s.t + int(HOUR_MS * farm.review_delay_h * rng.uniform(0.3, 1.5))
            rating = 5 if rng.random() < 0.9 else 4
            ctx.review(user, item, order_id, when, rating, rng.randint(0, 60))
