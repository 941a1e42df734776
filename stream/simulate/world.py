"""The marketplace's static world: categories, countries and networks, sellers, items, users."""

from __future__ import annotations

import math
import random
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate

from stream.simulate.config import SimConfig

# name, median unit price, log-normal sigma, share of browsing interest
CATEGORIES: tuple[tuple[str, float, float, float], ...] = (
    ("electronics", 180.0, 0.8, 0.09),
    ("phones", 420.0, 0.5, 0.04),
    ("computers", 750.0, 0.5, 0.03),
    ("home", 45.0, 0.8, 0.09),
    ("kitchen", 35.0, 0.7, 0.07),
    ("fashion", 40.0, 0.6, 0.13),
    ("shoes", 70.0, 0.5, 0.06),
    ("beauty", 18.0, 0.6, 0.08),
    ("books", 14.0, 0.4, 0.07),
    ("toys", 25.0, 0.6, 0.06),
    ("sports", 40.0, 0.8, 0.05),
    ("grocery", 8.0, 0.5, 0.06),
    ("jewelry", 120.0, 1.0, 0.03),
    ("gift_cards", 50.0, 0.6, 0.03),
    ("games", 45.0, 0.5, 0.05),
    ("pet", 20.0, 0.6, 0.06),
)
CATEGORY_NAMES = tuple(c[0] for c in CATEGORIES)
_CATEGORY_CUM = list(accumulate(c[3] for c in CATEGORIES))
# What account takeovers cash out on: expensive or easily resold goods.
HIGH_VALUE = tuple(
    CATEGORY_NAMES.index(n) for n in ("electronics", "phones", "computers", "jewelry", "gift_cards")
)

# country, share of users, residential /16 prefixes, mobile-carrier /16 prefixes
Prefix = tuple[int, int]
COUNTRIES: tuple[tuple[str, float, tuple[Prefix, ...], tuple[Prefix, ...]], ...] = (
    ("US", 0.45, ((24, 10), (50, 90), (68, 100), (73, 170), (98, 210)), ((172, 56), (174, 200))),
    ("GB", 0.10, ((81, 100), (86, 140), (90, 200)), ((92, 40), (31, 94))),
    ("DE", 0.10, ((84, 130), (87, 150), (93, 200)), ((80, 187), (89, 204))),
    ("FR", 0.07, ((82, 64), (90, 40), (86, 240)), ((37, 160), (176, 130))),
    ("ES", 0.04, ((83, 40), (88, 20)), ((37, 10), (185, 44))),
    ("IT", 0.04, ((79, 20), (93, 40)), ((151, 20), (5, 170))),
    ("NL", 0.03, ((77, 160), (83, 80)), ((62, 140), (145, 130))),
    ("PL", 0.03, ((83, 20), (89, 64)), ((37, 47), (188, 146))),
    ("CA", 0.05, ((24, 50), (70, 30), (99, 230)), ((142, 160), (184, 150))),
    ("AU", 0.03, ((101, 160), (110, 140)), ((49, 180), (1, 120))),
    ("BR", 0.03, ((177, 10), (179, 100)), ((191, 180), (200, 150))),
    ("IN", 0.03, ((117, 200), (122, 160)), ((49, 36), (106, 200))),
)
# Where attackers, proxies and farms appear from (paired with their networks).
ATTACKER_NETS: tuple[tuple[str, Prefix], ...] = (
    ("RU", (5, 188)),
    ("NG", (41, 58)),
    ("VN", (14, 160)),
    ("RO", (86, 120)),
    ("UA", (91, 200)),
    ("ID", (36, 80)),
    ("CN", (58, 20)),
    ("BR", (45, 160)),
    ("US", (46, 29)),
    ("NL", (194, 50)),
)
DATACENTER_PREFIXES: tuple[Prefix, ...] = (
    (104, 16),
    (45, 33),
    (167, 99),
    (159, 89),
    (185, 220),
    (139, 59),
    (209, 141),
)
COUNTRY_CODES = tuple(c[0] for c in COUNTRIES)
COUNTRY_INDEX = {code: i for i, code in enumerate(COUNTRY_CODES)}
PAYMENT_METHODS = ("card", "card", "card", "paypal", "wallet", "bank_transfer")


def ipv4(rng: random.Random, prefix: Prefix) -> str:
    """A host address inside the /16 ``prefix``."""
    return f"{prefix[0]}.{prefix[1]}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def ipv6(rng: random.Random) -> str:
    return (
        f"2a0{rng.randrange(10)}:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}::"
        f"{rng.getrandbits(16):x}"
    )


def token(rng: random.Random, prefix: str, bits: int = 64) -> str:
    """An opaque id: random, so that nothing about a role leaks through its spelling."""
    return f"{prefix}{rng.getrandbits(bits):0{bits // 4}x}"


@dataclass(slots=True)
class Item:
    item_id: str
    seller_id: str
    category: str
    price: float


@dataclass(slots=True)
class Seller:
    seller_id: str
    country: str
    items: list[Item]
    brushing: bool = False


@dataclass(slots=True)
class User:
    """One account. Role fields are filled by the fraud, brushing and churn modules."""

    user_id: str
    country: str
    home_ip: str
    mobile_prefix: Prefix
    devices: list[str]
    instruments: list[tuple[str, str]]  # (payment_method, instrument_id)
    rate: float  # mean sessions per day
    conv: float  # personal multiplier of the conversion rate
    depth: float  # mean item views per session
    cats: list[int]  # preferred categories
    review_prop: float
    role: str = "honest"
    active_from: int = 0  # first day of ordinary sessions
    attack_days: tuple[int, ...] = ()
    decay_start_ms: int = -1
    stop_ms: int = -1  # no activity from here on (churners)
    pause: tuple[int, int] = (-1, -1)  # days without activity (pausers)
    dropout: float = 0.0  # rare buyers: chance of leaving for good after a good visit
    bad_rate: float = 0.0  # rare buyers: share of visits that go badly
    trip_until: int = -1
    trip_country: str = ""
    trip_prefix: Prefix = (0, 0)


class Catalogue:
    """Items by category with Zipf popularity, for fast weighted draws."""

    def __init__(self, items: list[Item], exponent: float, rng: random.Random) -> None:
        self.by_cat: list[list[Item]] = [[] for _ in CATEGORIES]
        for item in items:
            self.by_cat[CATEGORY_NAMES.index(item.category)].append(item)
        self.cum: list[list[float]] = []
        for bucket in self.by_cat:
            rng.shuffle(bucket)  # popularity rank is unrelated to the seller or the price
            self.cum.append(list(accumulate(1.0 / (r + 1) ** exponent for r in range(len(bucket)))))
        self.cat_cum = list(
            accumulate(c[3] if self.by_cat[i] else 0.0 for i, c in enumerate(CATEGORIES))
        )

    def pick(self, rng: random.Random, cat: int) -> Item:
        cum = self.cum[cat]
        if not cum:
            cat = self.any_category(rng)
            cum = self.cum[cat]
        return self.by_cat[cat][bisect(cum, rng.random() * cum[-1])]

    def any_category(self, rng: random.Random) -> int:
        return bisect(self.cat_cum, rng.random() * self.cat_cum[-1])


def price_for(rng: random.Random, cat: int) -> float:
    _, median, sigma, _ = CATEGORIES[cat]
    price = median * math.exp(rng.gauss(0.0, sigma))
    if CATEGORY_NAMES[cat] == "gift_cards":
        return float(rng.choice((10, 25, 25, 50, 50, 100, 200)))
    return round(max(0.99, price), 2) if price < 100 else float(round(price)) - 0.01


class World:
    def __init__(self, config: SimConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.country_cum = list(accumulate(c[1] for c in COUNTRIES))
        self.sellers = [self._seller() for _ in range(config.seller_count)]
        self._user_ids: set[str] = set()
        self.users = [self.new_user() for _ in range(config.users)]
        self.catalogue = Catalogue([], config.zipf_exponent, rng)

    def build_catalogue(self) -> None:
        """Index every listing; call once the sellers' catalogues are final."""
        items = [item for s in self.sellers for item in s.items]
        self.catalogue = Catalogue(items, self.config.zipf_exponent, self.rng)

    def country(self) -> int:
        return bisect(self.country_cum, self.rng.random() * self.country_cum[-1])

    def _seller(self) -> Seller:
        rng = self.rng
        seller_id = token(rng, "s_", 32)
        cats = [self.catalogue_category() for _ in range(rng.choice((1, 1, 2, 3)))]
        # Pareto-ish catalogue sizes: a few big shops, many small ones.
        size = max(1, int(self.config.items_per_seller * 0.5 * rng.paretovariate(2.0)))
        items = [
            Item(token(rng, "i_", 40), seller_id, CATEGORY_NAMES[c], price_for(rng, c))
            for c in (rng.choice(cats) for _ in range(size))
        ]
        return Seller(seller_id, COUNTRY_CODES[self.country()], items)

    def catalogue_category(self) -> int:
        return self.rng.choices(range(len(CATEGORIES)), cum_weights=_CATEGORY_CUM)[0]

    def new_user(self, country: int | None = None) -> User:
        rng = self.rng
        user_id = token(rng, "u_", 40)
        while user_id in self._user_ids:
            user_id = token(rng, "u_", 40)
        self._user_ids.add(user_id)
        ci = self.country() if country is None else country
        code, _, homes, mobiles = COUNTRIES[ci]
        devices = [token(rng, "d_", 48) for _ in range(rng.choice((1, 1, 2, 2, 3)))]
        instruments = [
            (rng.choice(PAYMENT_METHODS), token(rng, "pi_"))
            for _ in range(rng.choice((1, 1, 1, 2, 3)))
        ]
        # Habits: session rate is heavy tailed (a few daily shoppers, many occasional ones),
        # conversion propensity and browsing depth vary independently of it.
        mean_rate = self.config.sessions_per_user_day
        rate = mean_rate * rng.lognormvariate(-0.5 * 0.8**2, 0.8)
        conv = rng.lognormvariate(-0.5 * 0.5**2, 0.5)
        depth = rng.choice((2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0))
        cats = [self.catalogue_category() for _ in range(rng.choice((1, 2, 3, 4)))]
        return User(
            user_id,
            code,
            ipv4(rng, rng.choice(homes)),
            rng.choice(mobiles),
            devices,
            instruments,
            rate,
            conv,
            depth,
            cats,
            rng.uniform(0.3, 1.7),
        )
