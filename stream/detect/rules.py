"""Explicit detection rules: the baseline any model must beat, and the fallback without one.

Card testing (fraud, at a payment): within ``card_window_ms`` the user made at least
``card_min_failed`` failed payments using at least ``card_min_instruments`` distinct
instruments. Testers cycle stolen cards with small charges; honest users retry one card.

Account takeover (fraud, at a purchase or payment): within ``ato_window_ms`` a successful
login from a device AND a country this user had never shown, then an ``account_update``,
then this event moving at least ``max(ato_min_amount, ato_amount_ratio x median earlier
amount)``.

Brushing (seller, at a purchase): over ``brushing_window_ms`` the seller has at least
``brushing_min_orders`` orders from at least ``brushing_min_buyers`` accounts, at least
``brushing_unbrowsed_share`` of them bought without the buyer viewing the item first, and
at least one corroborating signal: several orders per
unique buyer, mostly brand-new buyer accounts, buyers sharing devices or IPs, or fast
five-star reviews on those orders.

Rule scores are rule strengths in [0, 1] (how many signals agree, how far past the
limits), not calibrated probabilities; calibrated scores come from a model bundle.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from stream.core.alerts import Reason
from stream.core.state import (
    AMOUNT,
    COUNTRY,
    DEVICE,
    EID,
    FLAGS,
    INSTRUMENT,
    NEW_COUNTRY,
    NEW_DEVICE,
    NEW_INSTRUMENT,
    NEW_IP,
    S_BROWSED,
    S_BUYER_AGE,
    S_DEVICE,
    S_EID,
    S_IP,
    S_KIND,
    S_ORDER,
    S_RATING,
    S_TS,
    S_USER,
    STATUS,
    TS,
    TYPE,
    TYPE_CODE,
    Row,
)
from stream.core.timeutil import HOUR_MS, MINUTE_MS

PAYMENT, PURCHASE = TYPE_CODE["payment"], TYPE_CODE["purchase"]
LOGIN, ACCOUNT_UPDATE = TYPE_CODE["login"], TYPE_CODE["account_update"]
FAILED = 2


@dataclass(frozen=True)
class RuleConfig:
    card_window_ms: int = 10 * MINUTE_MS
    card_min_failed: int = 3
    card_min_instruments: int = 3
    ato_window_ms: int = 24 * HOUR_MS
    ato_min_amount: float = 200.0
    ato_amount_ratio: float = 3.0
    brushing_window_ms: int = 48 * HOUR_MS
    brushing_min_orders: int = 6
    brushing_min_buyers: int = 4  # a ring needs a pool of accounts; one hot buyer is not one
    brushing_unbrowsed_share: float = 0.5
    brushing_orders_per_buyer: float = 1.5
    brushing_new_buyer_share: float = 0.5
    brushing_new_buyer_age_ms: int = 72 * HOUR_MS
    brushing_shared_device_ratio: float = 0.5
    brushing_fast_review_ms: int = 48 * HOUR_MS
    threshold: float = 0.5


@dataclass(frozen=True)
class RuleHit:
    rule: str
    score: float
    reasons: tuple[Reason, ...]
    evidence: tuple[str, ...]


def _since(rows: list[Row], start: int) -> list[Row]:
    return [r for r in rows if r[TS] > start]


def card_testing(window: list[Row], trigger: Row, cfg: RuleConfig) -> RuleHit | None:
    if trigger[TYPE] != PAYMENT:
        return None
    payments = [r for r in _since(window, trigger[TS] - cfg.card_window_ms) if r[TYPE] == PAYMENT]
    failed = [r for r in payments if r[STATUS] == FAILED]
    instruments = {r[INSTRUMENT] for r in payments if r[INSTRUMENT] is not None}
    if len(failed) < cfg.card_min_failed or len(instruments) < cfg.card_min_instruments:
        return None
    minutes = cfg.card_window_ms / 60000
    score = 0.5 + 0.1 * (len(failed) - cfg.card_min_failed)
    score += 0.1 * (len(instruments) - cfg.card_min_instruments)
    reasons = [
        Reason(
            "card_testing.failed_payments",
            f"{len(failed)} failed payments within {minutes:g} minutes",
        ),
        Reason(
            "card_testing.instruments",
            f"{len(instruments)} distinct payment instruments within {minutes:g} minutes",
        ),
    ]
    small = [r for r in payments if (r[AMOUNT] or 0.0) < 5.0]
    if len(small) >= cfg.card_min_failed:
        score += 0.1
        reasons.append(Reason("card_testing.small_amounts", f"{len(small)} payments under 5"))
    evidence = [r[EID] for r in failed] + [r[EID] for r in payments if r[STATUS] != FAILED]
    return RuleHit("card_testing", min(score, 0.99), tuple(reasons), tuple(evidence[:50]))


def account_takeover(window: list[Row], trigger: Row, cfg: RuleConfig) -> RuleHit | None:
    amount = trigger[AMOUNT]
    if trigger[TYPE] not in (PAYMENT, PURCHASE) or amount is None:
        return None
    recent = _since(window, trigger[TS] - cfg.ato_window_ms)
    for i, login in enumerate(recent):
        if login[TYPE] != LOGIN or login[STATUS] == FAILED:
            continue
        if not (login[FLAGS] & NEW_DEVICE and login[FLAGS] & NEW_COUNTRY):
            continue
        updates = [r for r in recent[i + 1 :] if r[TYPE] == ACCOUNT_UPDATE and r[TS] <= trigger[TS]]
        if not updates:
            continue
        earlier = [
            r[AMOUNT]
            for r in window
            if r[TS] < login[TS] and r[TYPE] == PURCHASE and r[AMOUNT] is not None
        ]
        typical = statistics.median(earlier) if earlier else 0.0
        floor = max(cfg.ato_min_amount, cfg.ato_amount_ratio * typical)
        if amount < floor:
            continue
        return _ato_hit(login, updates[0], trigger, floor, typical)
    return None


def _ato_hit(login: Row, update: Row, trigger: Row, floor: float, typical: float) -> RuleHit:
    score = 0.6
    reasons = [
        Reason(
            "ato.new_device_country",
            f"login from new device {login[DEVICE]} in new country {login[COUNTRY]}",
        ),
        Reason("ato.account_update", "account details changed after that login"),
        Reason(
            "ato.large_amount",
            f"amount {trigger[AMOUNT]:.2f} >= {floor:.2f} (typical {typical:.2f})",
        ),
    ]
    if login[FLAGS] & NEW_IP:
        score += 0.1
        reasons.append(Reason("ato.new_ip", "the login came from a new IP address"))
    if trigger[FLAGS] & NEW_INSTRUMENT:
        score += 0.1
        reasons.append(Reason("ato.new_instrument", "paid with an instrument never used before"))
    if trigger[AMOUNT] >= 2 * floor:
        score += 0.1
    evidence = (trigger[EID], login[EID], update[EID])
    return RuleHit("account_takeover", min(score, 0.99), tuple(reasons), evidence)


def brushing(orders: list[Row], trigger: Row, cfg: RuleConfig) -> RuleHit | None:
    """Seller-side rule over the seller's recent purchases and reviews."""
    recent = _since(orders, trigger[S_TS] - cfg.brushing_window_ms)
    buys = [r for r in recent if r[S_KIND] == "purchase" and r[S_TS] <= trigger[S_TS]]
    if len(buys) < cfg.brushing_min_orders:
        return None
    unbrowsed = [r for r in buys if not r[S_BROWSED]]
    share = len(unbrowsed) / len(buys)
    if share < cfg.brushing_unbrowsed_share:
        return None
    buyers = {r[S_USER] for r in buys}
    if len(buyers) < cfg.brushing_min_buyers:
        return None
    reasons = [
        Reason(
            "brushing.no_browsing",
            f"{len(unbrowsed)} of {len(buys)} orders bought without viewing the item",
        )
    ]
    per_buyer = len(buys) / len(buyers)
    if per_buyer >= cfg.brushing_orders_per_buyer:
        reasons.append(
            Reason(
                "brushing.orders_per_buyer",
                f"{per_buyer:.1f} orders per unique buyer ({len(buyers)} buyers)",
            )
        )
    new = [r for r in buys if r[S_BUYER_AGE] < cfg.brushing_new_buyer_age_ms]
    if len(new) / len(buys) >= cfg.brushing_new_buyer_share:
        reasons.append(
            Reason(
                "brushing.new_accounts",
                f"{len(new)} of {len(buys)} orders from accounts under "
                f"{cfg.brushing_new_buyer_age_ms // HOUR_MS} hours old",
            )
        )
    reasons.extend(_shared_identity(buys, buyers, cfg))
    reasons.extend(_fast_reviews(recent, buys, cfg))
    if len(reasons) < 2:
        return None
    score = min(0.99, 0.4 + 0.1 * len(reasons) + 0.2 * (share - cfg.brushing_unbrowsed_share))
    suspects = [r[S_EID] for r in unbrowsed]
    return RuleHit("brushing", score, tuple(reasons), tuple(suspects[:50]))


def _shared_identity(buys: list[Row], buyers: set[str], cfg: RuleConfig) -> list[Reason]:
    out = []
    for field, name in ((S_DEVICE, "devices"), (S_IP, "IP addresses")):
        values = {r[field] for r in buys if r[field] is not None}
        if values and len(values) / len(buyers) <= cfg.brushing_shared_device_ratio:
            out.append(
                Reason(
                    f"brushing.shared_{'device' if field == S_DEVICE else 'ip'}",
                    f"{len(buyers)} buyers share {len(values)} {name}",
                )
            )
    return out


def _fast_reviews(recent: list[Row], buys: list[Row], cfg: RuleConfig) -> list[Reason]:
    bought_at = {r[S_ORDER]: r[S_TS] for r in buys if r[S_ORDER] is not None}
    fast = [
        r
        for r in recent
        if r[S_KIND] == "review"
        and r[S_RATING] == 5
        and r[S_ORDER] in bought_at
        and r[S_TS] - bought_at[r[S_ORDER]] <= cfg.brushing_fast_review_ms
    ]
    if len(fast) * 2 >= len(buys):
        hours = cfg.brushing_fast_review_ms // HOUR_MS
        return [
            Reason(
                "brushing.fast_five_star",
                f"{len(fast)} five-star reviews within {hours} hours of purchase",
            )
        ]
    return []


def fraud_partial(window: list[Row], trigger: Row, cfg: RuleConfig) -> float:
    """How close the fraud rules came, below their threshold: a ranking score for decision
    events where no rule fires, so that rules can be compared with models by PR-AUC."""
    payments = [r for r in _since(window, trigger[TS] - cfg.card_window_ms) if r[TYPE] == PAYMENT]
    failed = sum(1 for r in payments if r[STATUS] == FAILED)
    instruments = len({r[INSTRUMENT] for r in payments if r[INSTRUMENT] is not None})
    card = 0.45 * min(1.0, failed / cfg.card_min_failed)
    card *= min(1.0, instruments / cfg.card_min_instruments)
    ato = 0.0
    for i, row in enumerate(recent := _since(window, trigger[TS] - cfg.ato_window_ms)):
        if row[TYPE] == LOGIN and row[FLAGS] & NEW_DEVICE and row[FLAGS] & NEW_COUNTRY:
            updated = any(r[TYPE] == ACCOUNT_UPDATE for r in recent[i + 1 :])
            large = (trigger[AMOUNT] or 0.0) >= cfg.ato_min_amount
            ato = max(ato, 0.2 + 0.1 * updated + 0.1 * large)
    return max(card, ato)


def brushing_partial(orders: list[Row], trigger: Row, cfg: RuleConfig) -> float:
    """Below-threshold strength of the brushing rule at a purchase, for ranking."""
    recent = _since(orders, trigger[S_TS] - cfg.brushing_window_ms)
    buys = [r for r in recent if r[S_KIND] == "purchase" and r[S_TS] <= trigger[S_TS]]
    if not buys:
        return 0.0
    share = sum(1 for r in buys if not r[S_BROWSED]) / len(buys)
    volume = min(1.0, len(buys) / cfg.brushing_min_orders)
    return 0.45 * volume * min(1.0, share / cfg.brushing_unbrowsed_share)
