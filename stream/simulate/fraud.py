"""Fraud scenarios, every event of an attack labelled: account takeover, card testing, and
refund or promotion abuse. Each attack draws its own parameters, so no single rule (new
country, failed payments, refunds) catches all of them."""

from __future__ import annotations

from stream.core.timeutil import DAY_MS, HOUR_MS
from stream.simulate.context import Context
from stream.simulate.emitter import Session
from stream.simulate.world import (
    ATTACKER_NETS,
    CATEGORY_NAMES,
    COUNTRIES,
    COUNTRY_INDEX,
    DATACENTER_PREFIXES,
    HIGH_VALUE,
    Item,
    Prefix,
    User,
    ipv4,
    token,
)

FRAUD = "fraud"
SCENARIOS = ("ato", "card_testing", "abuse")
CHEAP = tuple(CATEGORY_NAMES.index(n) for n in ("grocery", "books", "beauty", "games", "pet"))
GIFT_CARDS = CATEGORY_NAMES.index("gift_cards")
ABUSE_REASONS = ("item_not_received", "item_not_received", "damaged", "empty_box", "wrong_item")


def assign(ctx: Context, candidates: list[User]) -> list[User]:
    """Pick exactly ``fraud_rate`` of the users and give each a scenario and attack days."""
    rng, cfg = ctx.rng, ctx.config
    count = round(cfg.fraud_rate * cfg.users)
    if cfg.fraud_rate > 0 and count == 0 and rng.random() < cfg.fraud_rate * cfg.users:
        count = 1
    chosen = rng.sample(candidates, min(count, len(candidates)))
    for user in chosen:
        user.role = rng.choices(SCENARIOS, cfg.fraud_mix)[0]
        first = rng.randrange(cfg.days)
        if user.role == "ato":
            user.attack_days = (first,)
        elif user.role == "card_testing":
            extra = [first + rng.randint(1, 3) for _ in range(rng.choice((0, 0, 1, 2)))]
            user.attack_days = tuple(sorted({first, *extra}))
            if rng.random() < 0.5:  # a fresh account that exists only to test cards
                user.active_from = cfg.days + 1
        else:
            span = rng.randint(2, 8)
            user.attack_days = tuple(
                sorted({first + rng.randrange(span) for _ in range(rng.randint(2, 5))} | {first})
            )
    return chosen


def run(ctx: Context, user: User, day: int) -> None:
    if user.role == "ato":
        account_takeover(ctx, user, day)
    elif user.role == "card_testing":
        card_testing(ctx, user, day)
    elif user.role == "abuse":
        refund_abuse(ctx, user, day)


def _attacker_network(ctx: Context, user: User) -> tuple[str, Prefix]:
    rng = ctx.rng
    roll = rng.random()
    if roll < 0.6:
        return rng.choice(ATTACKER_NETS)
    if roll < 0.8:  # a proxy in the victim's own country defeats country rules
        _, _, homes, _ = COUNTRIES[COUNTRY_INDEX[user.country]]
        return user.country, rng.choice(homes)
    return rng.choice(("US", "NL", "DE")), rng.choice(DATACENTER_PREFIXES)


def account_takeover(ctx: Context, user: User, day: int) -> None:
    """Stolen credentials: new device and network, a profile change, fast high-value buys."""
    rng = ctx.rng
    country, prefix = _attacker_network(ctx, user)
    hijacked = rng.random() < 0.1  # a stolen session cookie: the victim's own device, no login
    device = user.devices[0] if hijacked else token(rng, "d_", 48)
    t = ctx.day_start(day) + rng.randrange(DAY_MS)
    s = Session(ctx.em, user, token(rng, "ss_"), t, device, ipv4(rng, prefix), country, FRAUD)
    if not hijacked:
        for _ in range(rng.choice((0, 0, 0, 1, 2, 4))):
            s.add("login", ctx.dwell(5.0), {"status": "failed"})
        s.add("login", ctx.dwell(5.0), {"status": "ok"})
    if rng.random() < 0.6:
        s.add("page_view", ctx.dwell(4.0), {"attrs": {"page": "account"}})
    instrument = ctx.instrument(user)
    for field, p in (("email", 0.3), ("shipping_address", 0.7), ("payment_instrument", 0.45)):
        if rng.random() >= p:
            continue
        fields: dict[str, object] = {"attrs": {"field": field}}
        if field == "payment_instrument":
            instrument = (rng.choice(("card", "card", "wallet")), token(rng, "pi_"))
            fields["payment_method"], fields["instrument_id"] = instrument
        s.add("account_update", ctx.dwell(25.0), fields)
    if rng.random() < 0.35:  # come back later, as if to let the change settle
        later = s.t + int(HOUR_MS * rng.uniform(0.2, 6.0))
        s = Session(ctx.em, user, token(rng, "ss_"), later, device, s.ip, country, FRAUD)
        if not hijacked:
            s.add("login", 0, {"status": "ok"})
    pace = rng.uniform(3.0, 40.0)
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4, 6))):
        cat = rng.choice(HIGH_VALUE) if rng.random() < 0.85 else rng.choice(user.cats)
        item = ctx.world.catalogue.pick(rng, cat)
        for _ in range(rng.choice((0, 0, 1, 2))):
            s.add("item_view", ctx.dwell(pace), ctx.item_fields(item))
        qty = rng.randint(1, 5) if item.category == "gift_cards" else rng.choice((1, 1, 1, 2))
        if rng.random() < 0.6:
            s.add("add_to_cart", ctx.dwell(pace), {**ctx.item_fields(item), "quantity": qty})
        ctx.order(s, item, qty, instrument, fail_first=rng.random() < 0.15, gap_s=pace)
        ctx.purchases_today += 1
    if rng.random() < 0.3:
        s.add("logout", ctx.dwell(pace))


def card_testing(ctx: Context, user: User, day: int) -> None:
    """Bursts of tiny payments over many stolen instruments, most declined."""
    rng = ctx.rng
    attempts = rng.randint(8, 60)
    cards = [
        (rng.choice(("card", "card", "prepaid_card")), token(rng, "pi_"))
        for _ in range(rng.randint(3, max(3, min(30, attempts // 2))))
    ]
    fail_p = rng.uniform(0.4, 0.95)
    pace = rng.uniform(1.0, 30.0)
    country, prefix = rng.choice(ATTACKER_NETS)
    if rng.random() < 0.6:
        prefix = rng.choice(DATACENTER_PREFIXES)
    rotate_ip = rng.random() < 0.5
    device = user.devices[0] if rng.random() < 0.5 else token(rng, "d_", 48)
    t = ctx.day_start(day) + rng.randrange(DAY_MS)
    s = Session(ctx.em, user, token(rng, "ss_"), t, device, ipv4(rng, prefix), country, FRAUD)
    s.add("login", 0, {"status": "ok"})
    probe = _probe_item(ctx)
    working: list[tuple[str, str]] = []
    while attempts > 0:
        amount = round(rng.uniform(0.5, 5.0), 2) if rng.random() < 0.7 else 1.0
        item = Item(probe.item_id, probe.seller_id, probe.category, amount)
        base = {
            **ctx.item_fields(item),
            "quantity": 1,
            "order_id": token(rng, "o_"),
            "amount": amount,
            "currency": ctx.currency,
        }
        s.add("checkout", ctx.dwell(pace), base)
        for _ in range(rng.randint(1, 4)):
            attempts -= 1
            if rotate_ip:
                s.ip = ipv4(rng, prefix)
            method, instrument_id = rng.choice(cards)
            ok = rng.random() >= fail_p
            s.add(
                "payment",
                ctx.dwell(pace),
                {
                    **base,
                    "payment_method": method,
                    "instrument_id": instrument_id,
                    "status": "ok" if ok else "failed",
                },
            )
            if ok:
                s.add(
                    "purchase",
                    ctx.dwell(1.0, 0.5),
                    {**base, "payment_method": method, "instrument_id": instrument_id},
                )
                ctx.purchases_today += 1
                working.append((method, instrument_id))
                break
    if working and rng.random() < 0.4:  # cash out on a card that passed
        big = ctx.world.catalogue.pick(rng, rng.choice(HIGH_VALUE))
        ctx.order(s, big, 1, rng.choice(working), gap_s=pace)
        ctx.purchases_today += 1


def _probe_item(ctx: Context) -> Item:
    """Something cheap or digital to probe cards with: a gift card or the cheapest of a few."""
    rng, catalogue = ctx.rng, ctx.world.catalogue
    if rng.random() < 0.5:
        return catalogue.pick(rng, GIFT_CARDS)
    picks = [catalogue.pick(rng, rng.choice(CHEAP)) for _ in range(8)]
    return min(picks, key=lambda item: item.price)


def refund_abuse(ctx: Context, user: User, day: int) -> None:
    """Orders made to be refunded ("never arrived"), often stacked with promotion codes."""
    rng = ctx.rng
    promo_p = rng.choice((0.0, 0.5, 1.0))
    refund_p = rng.uniform(0.4, 1.0)
    promo = "".join(rng.choice("ABCDEFGHJKMNPQRSTUVWXYZ23456789") for _ in range(8))
    s = ctx.open_session(user, ctx.session_start(day), day, FRAUD)
    s.add("login", 0, {"status": "ok"})
    for _ in range(rng.choice((1, 1, 2, 3))):
        cat = rng.choice(HIGH_VALUE) if rng.random() < 0.5 else rng.choice(user.cats)
        item = ctx.world.catalogue.pick(rng, cat)
        for _ in range(rng.randint(1, 4)):
            s.add("item_view", ctx.dwell(20.0), ctx.item_fields(item))
        s.add("add_to_cart", ctx.dwell(10.0), {**ctx.item_fields(item), "quantity": 1})
        attrs = {"promo_code": promo} if rng.random() < promo_p else None
        order_id = ctx.order(s, item, 1, ctx.instrument(user), attrs=attrs)
        ctx.purchases_today += 1
        if rng.random() < refund_p:
            when = s.t + int(DAY_MS * rng.uniform(0.5, 5.0))
            ctx.refund(user, item, order_id, 1, when, rng.choice(ABUSE_REASONS), FRAUD)
        if rng.random() < 0.2:
            when = s.t + int(DAY_MS * rng.uniform(1.0, 6.0))
            ctx.review(user, item, order_id, when, 1, int(rng.lognormvariate(3.0, 0.6)), FRAUD)
