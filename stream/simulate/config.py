"""Every parameter of the marketplace simulator, with its default, in one frozen object."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

# Share of sessions starting in each UTC hour (the marketplace serves one main region):
# a quiet night, a morning climb, a lunch bump and an evening peak.
DEFAULT_HOUR_WEIGHTS: tuple[float, ...] = (
    1.0,
    0.6,
    0.4,
    0.3,
    0.3,
    0.4,
    0.8,
    1.5,
    2.2,
    2.6,
    2.8,
    3.0,
    3.3,
    3.1,
    3.0,
    3.0,
    3.2,
    3.6,
    4.2,
    4.8,
    5.0,
    4.4,
    3.2,
    1.8,
)
# Relative activity Monday..Sunday: weekends are busier.
DEFAULT_WEEKDAY_WEIGHTS: tuple[float, ...] = (1.0, 0.96, 0.97, 1.0, 1.08, 1.22, 1.27)
PROFILES = ("marketplace", "rare")
# Account takeover, card testing, refund or promotion abuse.
DEFAULT_FRAUD_MIX: tuple[float, float, float] = (0.5, 0.3, 0.2)


@dataclass(frozen=True)
class SimConfig:
    """Parameters of one simulated marketplace; the same config and seed give the same data."""

    users: int = 2000
    days: int = 14
    seed: int = 7
    # A Monday, so that weekday effects line up with day indices in the default run.
    start: datetime = datetime(2026, 11, 16, tzinfo=UTC)
    sellers: int | None = None  # None: one seller per 12 users, at least 20
    items_per_seller: float = 20.0  # mean catalogue size (heavy tailed)
    currency: str = "USD"
    # Event ids are ``<prefix><n>``; the default ``e<seed>-`` repeats for the same seed, so
    # give live or repeated streams into one topic their own prefix (event_id is the
    # idempotency key downstream).
    id_prefix: str | None = None

    # Honest behaviour.
    sessions_per_user_day: float = 1.0  # mean over users; each user has a personal rate
    conversion_rate: float = 0.05  # share of ordinary sessions that end in a purchase
    zipf_exponent: float = 1.1  # item popularity within a category
    hour_weights: tuple[float, ...] = DEFAULT_HOUR_WEIGHTS
    weekday_weights: tuple[float, ...] = DEFAULT_WEEKDAY_WEIGHTS
    login_rate: float = 0.3  # sessions that start with an explicit login
    payment_fail_rate: float = 0.03  # first payment attempt declined, then retried
    refund_rate: float = 0.04
    review_rate: float = 0.3
    account_update_rate: float = 0.01  # honest address or card changes, per session
    travel_rate: float = 0.01  # per user-day: start a trip abroad for 2-7 days
    new_device_rate: float = 0.01  # per user-day

    # Fraud: share of users hit by (account takeover) or running (other scenarios) an attack.
    fraud_rate: float = 0.008
    fraud_mix: tuple[float, float, float] = DEFAULT_FRAUD_MIX

    # Brushing: share of sellers that run fake-order farms, and fake orders as a share of
    # all purchases; flash sales (per seller-day) are honest spikes that look alike.
    brushing_seller_rate: float = 0.03
    brushing_order_share: float = 0.05
    flash_sale_rate: float = 0.006

    # Churn: users whose engagement decays and who stop; users who pause and return.
    churn_rate: float = 0.06
    pause_rate: float = 0.04
    # Real shops are less kind than long daily histories: some users come once and never
    # return (churners with one visit), and some join during the run (short histories).
    one_time_rate: float = 0.08
    newcomer_rate: float = 0.15

    # "marketplace" (daily visitors, the above) or "rare": a cohort of rare buyers who join
    # in the first weeks, visit one to three times a year (mostly to buy) and leave for good
    # after a visit with a personal probability, as buy-till-you-die models assume.
    profile: str = "marketplace"

    @classmethod
    def rare_buyers(cls, **changes: Any) -> SimConfig:
        """The rare-buyer profile: a year of a cohort that buys one to three times a year."""
        base: dict[str, Any] = {
            "profile": "rare",
            "days": 365,
            "start": datetime(2025, 11, 17, tzinfo=UTC),  # a Monday; a year ends in the past
            "sessions_per_user_day": 2.0 / 365.0,
            "conversion_rate": 0.6,
            "churn_rate": 0.0,
            "pause_rate": 0.0,
            "one_time_rate": 0.0,
            "newcomer_rate": 0.0,
            "fraud_rate": 0.002,
            "brushing_seller_rate": 0.0,
            "flash_sale_rate": 0.0,
        }
        return cls(**{**base, **changes})

    def __post_init__(self) -> None:
        _check(self.users >= 1, "users must be at least 1")
        _check(self.profile in PROFILES, f"profile must be one of {PROFILES}")
        _check(self.days >= 1, "days must be at least 1")
        _check(self.start.tzinfo is not None, "start must be timezone-aware")
        _check(self.id_prefix is None or len(self.id_prefix) <= 100, "id_prefix too long")
        _check(self.sellers is None or self.sellers >= 1, "sellers must be at least 1")
        _check(self.items_per_seller >= 1, "items_per_seller must be at least 1")
        _check(len(self.currency) == 3 and self.currency.isupper(), "currency: 3 upper letters")
        _check(self.sessions_per_user_day > 0, "sessions_per_user_day must be positive")
        _check(len(self.hour_weights) == 24 and min(self.hour_weights) >= 0, "24 hour weights")
        _check(sum(self.hour_weights) > 0, "hour weights must not all be zero")
        _check(len(self.weekday_weights) == 7 and min(self.weekday_weights) > 0, "7 weekdays")
        _check(len(self.fraud_mix) == 3 and sum(self.fraud_mix) > 0, "fraud_mix: 3 weights")
        _check(min(self.fraud_mix) >= 0, "fraud_mix weights must be non-negative")
        _check(0 < self.zipf_exponent < 5, "zipf_exponent must be in (0, 5)")
        for name in (
            "conversion_rate",
            "login_rate",
            "payment_fail_rate",
            "refund_rate",
            "review_rate",
            "account_update_rate",
            "travel_rate",
            "new_device_rate",
            "fraud_rate",
            "brushing_seller_rate",
            "flash_sale_rate",
            "churn_rate",
            "pause_rate",
            "one_time_rate",
            "newcomer_rate",
        ):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, f"{name} must be in [0, 1]")
        _check(0.0 <= self.brushing_order_share < 0.5, "brushing_order_share must be in [0, 0.5)")
        _check(self.conversion_rate <= 0.6, "conversion_rate above 0.6 is not a marketplace")
        role_share = self.fraud_rate + self.churn_rate + self.pause_rate + self.one_time_rate
        _check(role_share <= 0.8, "fraud, churn, pause and one-time rates must sum to <= 0.8")

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp()) * 1000

    @property
    def event_id_prefix(self) -> str:
        return self.id_prefix if self.id_prefix is not None else f"e{self.seed}-"

    @property
    def seller_count(self) -> int:
        return self.sellers if self.sellers is not None else max(20, self.users // 12)

    def describe(self) -> dict[str, Any]:
        """Parameters as JSON-friendly values, for dataset cards and run logs."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        out["seller_count"] = self.seller_count
        return out


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)
