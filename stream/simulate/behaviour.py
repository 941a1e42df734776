"""Honest behaviour: shopping sessions, follow-ups (reviews, refunds), trips, flash sales."""

from __future__ import annotations

from stream.core.timeutil import DAY_MS, HOUR_MS
from stream.simulate.context import Context
from stream.simulate.emitter import Session
from stream.simulate.world import (
    CATEGORY_NAMES,
    COUNTRIES,
    PAYMENT_METHODS,
    Item,
    Seller,
    User,
    token,
)

RATINGS = (1, 2, 3, 4, 5)
HAPPY = (0.04, 0.05, 0.10, 0.28, 0.53)
UNHAPPY = (0.30, 0.25, 0.25, 0.12, 0.08)
REFUND_REASONS = ("damaged", "not_as_described", "changed_mind", "wrong_size", "late_delivery")
PAGES = ("home", "home", "home", "deals", "orders", "account")
UPDATES = ("shipping_address", "payment_instrument", "email", "phone", "password")


def daily_changes(ctx: Context, user: User, day: int) -> None:
    """Occasional trips abroad and new devices: mostly stable identities, not frozen ones."""
    rng = ctx.rng
    if user.trip_until < day and rng.random() < ctx.config.travel_rate:
        code, _, homes, _ = COUNTRIES[rng.randrange(len(COUNTRIES))]
        if code != user.country:
            user.trip_until = day + rng.randint(1, 6)
            user.trip_country, user.trip_prefix = code, rng.choice(homes)
    if rng.random() < ctx.config.new_device_rate:
        user.devices.append(token(rng, "d_", 48))


def honest_session(ctx: Context, user: User, t: int, day: int, engagement: float = 1.0) -> None:
    """A shopping visit. ``engagement`` < 1 marks a fading user: shallower, rarely buying."""
    rng, cfg = ctx.rng, ctx.config
    s = ctx.open_session(user, t, day)
    if rng.random() < cfg.login_rate:
        if rng.random() < 0.04:  # a mistyped password
            s.add("login", 0, {"status": "failed"})
        s.add("login", ctx.dwell(6.0), {"status": "ok"})
    if rng.random() < 0.8:
        s.add("page_view", ctx.dwell(3.0), {"attrs": {"page": rng.choice(PAGES)}})
    buys = rng.random() < min(0.95, cfg.conversion_rate * user.conv) * engagement
    viewed = browse(ctx, s, user, engagement)
    if buys:
        checkout_cart(ctx, s, user, viewed, engagement)
    elif viewed and rng.random() < 0.2:
        abandon_cart(ctx, s, rng.choice(viewed))
    if rng.random() < cfg.account_update_rate:
        account_update(ctx, s, user)
    if rng.random() < 0.15:
        s.add("logout", ctx.dwell(20.0))


def browse(ctx: Context, s: Session, user: User, engagement: float) -> list[Item]:
    """Searches and item views within the user's favourite categories, Zipf popular items."""
    rng, catalogue = ctx.rng, ctx.world.catalogue
    views = 1 + int(rng.expovariate(1.0 / max(0.5, user.depth * engagement)))
    cat = rng.choice(user.cats) if rng.random() < 0.8 else catalogue.any_category(rng)
    viewed: list[Item] = []
    for i in range(views):
        if (i == 0 and rng.random() < 0.5) or (i > 0 and rng.random() < 0.15):
            if i > 0:
                cat = rng.choice(user.cats) if rng.random() < 0.7 else catalogue.any_category(rng)
            s.add(
                "search",
                ctx.dwell(8.0),
                {"category": CATEGORY_NAMES[cat], "attrs": {"query_len": rng.randint(3, 30)}},
            )
        item = catalogue.pick(rng, cat)
        s.add("item_view", ctx.dwell(25.0), ctx.item_fields(item))
        viewed.append(item)
    return viewed


def checkout_cart(
    ctx: Context, s: Session, user: User, viewed: list[Item], engagement: float
) -> None:
    """Buy one viewed item, sometimes two (the marketplace splits orders per line)."""
    rng = ctx.rng
    lines = 2 if len(viewed) > 1 and rng.random() < 0.15 else 1
    picks = [viewed[-1] if rng.random() < 0.5 else rng.choice(viewed) for _ in range(lines)]
    quantities = []
    for item in picks:
        qty = 1 if rng.random() < 0.85 else rng.randint(2, 4)
        quantities.append(qty)
        s.add("add_to_cart", ctx.dwell(10.0), {**ctx.item_fields(item), "quantity": qty})
    for item, qty in zip(picks, quantities, strict=True):
        fail = rng.random() < ctx.config.payment_fail_rate
        order_id = ctx.order(s, item, qty, ctx.instrument(user), fail_first=fail)
        ctx.purchases_today += 1
        follow_up(ctx, user, item, order_id, qty, s.t, engagement)


def abandon_cart(ctx: Context, s: Session, item: Item) -> None:
    rng = ctx.rng
    s.add("add_to_cart", ctx.dwell(10.0), {**ctx.item_fields(item), "quantity": 1})
    if rng.random() < 0.4:
        s.add("remove_from_cart", ctx.dwell(30.0), {**ctx.item_fields(item), "quantity": 1})
    elif rng.random() < 0.25:
        s.add(
            "checkout",
            ctx.dwell(15.0),
            {
                **ctx.item_fields(item),
                "quantity": 1,
                "order_id": token(rng, "o_"),
                "amount": item.price,
                "currency": ctx.currency,
            },
        )


def follow_up(
    ctx: Context, user: User, item: Item, order_id: str, qty: int, t: int, engagement: float
) -> None:
    """Refunds days later, reviews after delivery; both worse for fading users."""
    rng, cfg = ctx.rng, ctx.config
    unhappy = engagement < 1.0 and rng.random() > engagement
    refunded = rng.random() < cfg.refund_rate * (4.0 if unhappy else 1.0)
    if refunded:
        when = t + int(DAY_MS * rng.uniform(1.0, 12.0))
        ctx.refund(user, item, order_id, qty, when, rng.choice(REFUND_REASONS))
    if rng.random() < cfg.review_rate * user.review_prop * (1.5 if unhappy else 1.0):
        when = t + int(DAY_MS * rng.lognormvariate(1.3, 0.5))
        weights = UNHAPPY if unhappy or refunded else HAPPY
        rating = rng.choices(RATINGS, weights)[0]
        ctx.review(user, item, order_id, when, rating, int(rng.lognormvariate(4.6, 0.8)))


def account_update(ctx: Context, s: Session, user: User) -> None:
    """Honest profile changes: the benign twin of an account takeover's first step."""
    rng = ctx.rng
    field = rng.choice(UPDATES)
    fields: dict[str, object] = {"attrs": {"field": field}}
    if field == "payment_instrument":
        instrument = (rng.choice(PAYMENT_METHODS), token(rng, "pi_"))
        user.instruments.append(instrument)
        fields["payment_method"], fields["instrument_id"] = instrument
    s.add("account_update", ctx.dwell(40.0), fields)


def flash_sale(ctx: Context, seller: Seller, day: int) -> None:
    """A seller's discounted item sells out within hours to many real buyers: a spike of
    orders, many fast 5-star reviews, some brand-new accounts, yet everyone browses first."""
    rng, world = ctx.rng, ctx.world
    base = rng.choice(seller.items)
    item = Item(
        base.item_id, base.seller_id, base.category, round(base.price * rng.uniform(0.4, 0.8), 2)
    )
    campaign = token(rng, "fs_", 32)
    t0 = ctx.day_start(day) + rng.randint(9, 20) * HOUR_MS
    window = int(HOUR_MS * rng.uniform(0.5, 3.0))
    for _ in range(rng.randint(8, 50)):
        if rng.random() < 0.2:
            user = world.new_user()  # signed up for the deal, and stays a customer
            world.users.append(user)
        else:
            user = world.users[rng.randrange(len(world.users))]
            if user.role != "honest" and user.role != "pause":
                continue
        s = ctx.open_session(user, t0 + rng.randrange(window), day)
        s.add("page_view", 0, {"attrs": {"page": "deals", "campaign": campaign}})
        s.add(
            "item_view", ctx.dwell(20.0), {**ctx.item_fields(item), "attrs": {"campaign": campaign}}
        )
        s.add("add_to_cart", ctx.dwell(8.0), {**ctx.item_fields(item), "quantity": 1})
        order_id = ctx.order(s, item, 1, ctx.instrument(user), gap_s=8.0)
        ctx.purchases_today += 1
        if rng.random() < 0.45:
            when = s.t + int(HOUR_MS * rng.uniform(6.0, 96.0))
            rating = 5 if rng.random() < 0.7 else rng.choice((3, 4, 4))
            ctx.review(user, item, order_id, when, rating, int(rng.lognormvariate(3.5, 0.8)))
