"""Per-user and per-seller state kept in RocksDB tables, bounded in event time.

Values are compact positional JSON arrays (no repeated key names, event type as a small
integer). A user's window keeps at most ``max_events`` events no older than ``max_age_ms``
before the newest one; events up to ``allowed_lateness_ms`` behind the newest are placed
in order, older ones are refused as late. A repeated ``event_id`` inside the window, however
old, is a duplicate and changes nothing, which makes at-least-once redelivery idempotent.
"""

from __future__ import annotations

import bisect
import operator
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from stream.core.schema import DECISION_TYPES, EVENT_TYPES, Event
from stream.core.timeutil import DAY_MS, HOUR_MS, MINUTE_MS

FORMAT_VERSION: Final = 1
TYPE_CODE: Final = {name: i for i, name in enumerate(EVENT_TYPES)}
DECISION_CODES: Final = frozenset(TYPE_CODE[t] for t in DECISION_TYPES)
STATUS_CODE: Final = {None: 0, "ok": 1, "failed": 2}
STATUS_NAME: Final = (None, "ok", "failed")

# Row layout of one stored user event.
TS, EID, TYPE, STATUS, AMOUNT, PRICE, QTY, SELLER, ITEM, CATEGORY, ORDER = range(11)
DEVICE, IP, COUNTRY, INSTRUMENT, METHOD, RATING, FLAGS = range(11, 18)
_EID_OF = operator.itemgetter(EID)
_ORDER = operator.itemgetter(TS, EID)  # a user's events are kept sorted by this
ROW_FIELDS: Final = (
    "ts",
    "event_id",
    "type",
    "status",
    "amount",
    "price",
    "quantity",
    "seller_id",
    "item_id",
    "category",
    "order_id",
    "device_id",
    "ip",
    "country",
    "instrument_id",
    "payment_method",
    "rating",
    "flags",
)

# Novelty bits set when the event was inserted: first time this user showed that value.
NEW_DEVICE, NEW_IP, NEW_COUNTRY, NEW_INSTRUMENT = 1, 2, 4, 8
KNOWN_PER_KIND: Final = 32  # how many distinct devices/IPs/countries/instruments are remembered
_NOVELTY_BITS = (NEW_DEVICE, NEW_IP, NEW_COUNTRY, NEW_INSTRUMENT)  # in the order of ``known``

Outcome = Literal["added", "duplicate", "late"]
# A stored event is a tuple of atoms (str, int, float, None): the garbage collector stops
# tracking such a tuple the first time it sees it, so a cache of decoded states costs the
# older generations' collections nothing (stream.runtime.gc_pauses). Lists stay tracked.
Row = tuple[Any, ...]


@dataclass(frozen=True)
class StateLimits:
    max_events: int = 128
    max_age_ms: int = 30 * DAY_MS
    allowed_lateness_ms: int = 10 * MINUTE_MS
    seller_max_orders: int = 500
    seller_window_ms: int = 48 * HOUR_MS


def event_row(event: Event, flags: int = 0) -> Row:
    return (
        event.ts,
        event.event_id,
        TYPE_CODE[event.type],
        STATUS_CODE[event.status],
        event.amount,
        event.price,
        event.quantity,
        event.seller_id,
        event.item_id,
        event.category,
        event.order_id,
        event.device_id,
        event.ip,
        event.country,
        event.instrument_id,
        event.payment_method,
        event.rating,
        flags,
    )


def row_to_dict(row: Row) -> dict[str, Any]:
    """The stored event as a dict with contract field names (``ts`` in epoch ms)."""
    out = {name: row[i] for i, name in enumerate(ROW_FIELDS) if row[i] is not None}
    out["type"] = EVENT_TYPES[row[TYPE]]
    out["status"] = STATUS_NAME[row[STATUS]]
    return out


# A visit (a "transaction" in buy-till-you-die terms) starts after this much silence.
VISIT_GAP_MS: Final = 30 * MINUTE_MS
PURCHASE_CODE: Final = TYPE_CODE["purchase"]


class UserState:
    """A user's recent events (oldest first) plus what is known about their habits."""

    __slots__ = ("cooldowns", "events", "first_ts", "known", "max_ts", "spend", "total", "visits")

    def __init__(self) -> None:
        self.events: list[Row] = []
        self.first_ts = 0
        self.max_ts = 0
        self.total = 0  # events ever added, beyond the window too
        # Whole-history summaries for churn, which the bounded window cannot give: visits
        # (events after VISIT_GAP_MS of silence) and money spent on purchases.
        self.visits = 0
        self.spend = 0.0
        # device, ip, country, instrument: tuples (untracked by the collector), replaced
        # when a value is learnt
        self.known: list[tuple[Any, ...]] = [(), (), (), ()]
        self.cooldowns: dict[str, int] = {}  # rule or kind -> event time of its last alert

    @classmethod
    def decode(cls, raw: bytes | None) -> UserState:
        state = cls()
        if raw:
            values = orjson.loads(raw)
            version, state.first_ts, state.max_ts, state.total, events, known, cool = values[:7]
            if version != FORMAT_VERSION:
                raise ValueError(f"user state format {version} is not {FORMAT_VERSION}")
            state.events = [tuple(row) for row in events]
            state.known = [tuple(values) for values in known]
            state.cooldowns = cool
            if len(values) > 7:
                state.visits, state.spend = values[7]
            else:  # stored before the summaries existed: what the window says
                state.visits = _visits_in(state.events)
                state.spend = sum(_spent(r) for r in state.events)
        return state

    def encode(self) -> bytes:
        return orjson.dumps(
            [
                FORMAT_VERSION,
                self.first_ts,
                self.max_ts,
                self.total,
                self.events,
                self.known,
                self.cooldowns,
                [self.visits, self.spend],
            ]
        )

    def has_event(self, event_id: str) -> bool:
        return event_id in map(_EID_OF, self.events)  # a C loop: this runs on every event

    def add(self, event: Event, limits: StateLimits) -> Outcome:
        """Insert in event-time order, enforcing lateness, de-duplication and the bounds."""
        # Duplicates first: a redelivery after a restart may be far behind the stored state,
        # and an event the window still holds is not a late arrival for the dead letters.
        if self.has_event(event.event_id):
            return "duplicate"
        if self.total and event.ts < self.max_ts - limits.allowed_lateness_ms:
            return "late"
        row = event_row(event, self._learn(event))
        key = (event.ts, event.event_id)
        if not self.events or key >= _ORDER(self.events[-1]):
            self.events.append(row)  # the usual case: events arrive in order
        else:
            self.events.insert(bisect.bisect_right(self.events, key, key=_ORDER), row)
        if not self.total or event.ts - self.max_ts > VISIT_GAP_MS:
            self.visits += 1
        self.spend += _spent(row)
        self.first_ts = event.ts if not self.total else min(self.first_ts, event.ts)
        self.max_ts = max(self.max_ts, event.ts)
        self.total += 1
        self._evict(limits)
        return "added"

    def _learn(self, event: Event) -> int:
        flags = 0
        values = (event.device_id, event.ip, event.country, event.instrument_id)
        for kind, (value, bit) in enumerate(zip(values, _NOVELTY_BITS, strict=True)):
            known = self.known[kind]
            if value is None or value in known:
                continue
            if self.total:  # nothing is "new" for a user we have never seen
                flags |= bit
            self.known[kind] = (*known[1 - KNOWN_PER_KIND :], value)
        return flags

    def _evict(self, limits: StateLimits) -> None:
        horizon = self.max_ts - limits.max_age_ms
        drop = 0
        while drop < len(self.events) and self.events[drop][TS] < horizon:
            drop += 1
        drop = max(drop, len(self.events) - limits.max_events)
        if drop:
            del self.events[:drop]

    def upto(self, ts: int) -> list[Row]:
        """The window as it stood at event time ``ts`` (for late events and backtests)."""
        events = self.events
        if not events or events[-1][TS] <= ts:  # the event is the latest: nearly always
            return events[:]
        return events[: bisect.bisect_right(events, ts, key=lambda r: r[TS])]


def _spent(row: Row) -> float:
    """Money a stored event spent: a purchase's amount, else its price times quantity."""
    if row[TYPE] != PURCHASE_CODE:
        return 0.0
    if row[AMOUNT] is not None:
        return float(row[AMOUNT])
    return float(row[PRICE] or 0.0) * (row[QTY] or 1)


def _visits_in(rows: list[Row]) -> int:
    return sum(1 for i, r in enumerate(rows) if not i or r[TS] - rows[i - 1][TS] > VISIT_GAP_MS)


# Row layout of one seller-side record (a purchase or a review, enriched by the user side).
S_TS, S_EID, S_USER, S_KIND, S_AMOUNT, S_RATING, S_BROWSED, S_BUYER_AGE, S_BUYER_EVENTS = range(9)
S_DEVICE, S_IP, S_ORDER, S_ITEM = range(9, 13)
S_MODEL = 13  # the buyer-side model's brushing score for a purchase; absent in older rows


class SellerState:
    """A seller's recent purchases and reviews, oldest first."""

    __slots__ = ("cooldowns", "max_ts", "orders")

    def __init__(self) -> None:
        self.orders: list[Row] = []
        self.max_ts = 0
        self.cooldowns: dict[str, int] = {}

    @classmethod
    def decode(cls, raw: bytes | None) -> SellerState:
        state = cls()
        if raw:
            version, state.max_ts, orders, state.cooldowns = orjson.loads(raw)
            if version != FORMAT_VERSION:
                raise ValueError(f"seller state format {version} is not {FORMAT_VERSION}")
            state.orders = [tuple(row) for row in orders]
        return state

    def encode(self) -> bytes:
        return orjson.dumps([FORMAT_VERSION, self.max_ts, self.orders, self.cooldowns])

    def add(self, row: Row, limits: StateLimits) -> Outcome:
        if any(r[S_EID] == row[S_EID] for r in self.orders):
            return "duplicate"
        key = (row[S_TS], row[S_EID])
        pos = bisect.bisect_right(self.orders, key, key=lambda r: (r[S_TS], r[S_EID]))
        self.orders.insert(pos, row)
        self.max_ts = max(self.max_ts, row[S_TS])
        horizon = self.max_ts - limits.seller_window_ms
        drop = 0
        while drop < len(self.orders) and self.orders[drop][S_TS] < horizon:
            drop += 1
        drop = max(drop, len(self.orders) - limits.seller_max_orders)
        if drop:
            del self.orders[:drop]
        return "added"
