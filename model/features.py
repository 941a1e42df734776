"""Event tokenization shared by training and the stream worker.

An event becomes a row of small categorical codes plus a few numbers. Work splits in two:
``tokenize_events`` turns each event into per-event codes once (hashes, log buckets, hour),
and ``encode_packed`` derives what depends on the window (time since the previous event,
novelty flags, running distinct counts) from those codes, for a batch of right-aligned
windows at once. It is the one encoder: ``encode_tables`` (whole tables), ``encode_window``
(one slice of a table, a batch of one), ``encode_sequence`` and ``encode_batch`` (raw
events) all end in it. Training tokenizes each user's history once and encodes slices of
it; a test proves that equals encoding the stream's last T events.

Only numpy, the standard library and the stream's core are imported here: the worker calls
this per micro-batch."""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.core.schema import EVENT_TYPES as SCHEMA_EVENT_TYPES
from stream.core.timeutil import DAY_MS, HOUR_MS

# One list of event types for the stream and the model: the schema's.
EVENT_TYPES: tuple[str, ...] = SCHEMA_EVENT_TYPES
KINDS: tuple[str, ...] = ("fraud", "brushing", "churn")
MAX_T = 64

# Code 0 is padding everywhere; code 1 means "field absent" where a field is optional.
PAD, MISSING = 0, 1
TYPE_INDEX = {t: i + 1 for i, t in enumerate(EVENT_TYPES)}
MASK_TYPE = len(EVENT_TYPES) + 1  # used by masked-event pretraining only
# The clock token: "now", appended after a user's events when churn is scored on a timer
# rather than at an event. Its gap is the user's idle time; every other field is absent.
NOW_TYPE = MASK_TYPE + 1
_STATUS = {"ok": 2, "failed": 3}
# Novelty codes: absent / seen earlier in the window / first occurrence in the window.
# Only fields the stream keeps in its per-user state may appear here (not session_id).
SEEN, NEW = 2, 3
NOVELTY_FIELDS: tuple[str, ...] = (
    "device_id",
    "ip",
    "country",
    "instrument_id",
    "item_id",
    "seller_id",
    "order_id",
)

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class FeatureSpec:
    """How events become codes; stored in the bundle manifest so scoring matches training."""

    version: int = 3  # 3: the clock token
    category_buckets: int = 64
    seller_buckets: int = 64
    payment_buckets: int = 16
    price_buckets: int = 16
    amount_buckets: int = 16
    gap_buckets: int = 20
    log_scale: float = 1.5  # buckets per unit of log1p(value)
    # Events older than this before the decision are left out, as the stream's per-user
    # state forgets them (its max_age must be at least this).
    max_age_ms: int = 30 * DAY_MS

    @property
    def cat_features(self) -> tuple[str, ...]:
        return (
            "type",
            "status",
            "category",
            "seller",
            "payment_method",
            "price",
            "amount",
            "gap",
            "hour",
            "rating",
            *(f"new_{f}" for f in NOVELTY_FIELDS),
        )

    @property
    def num_features(self) -> tuple[str, ...]:
        return (
            "log_price",
            "log_amount",
            "log_gap",
            "log_quantity",
            "distinct_devices",
            "distinct_ips",
            "distinct_countries",
            "distinct_instruments",
            "failed_so_far",
            "log_age",
        )

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Embedding table sizes per categorical feature, padding and missing included."""
        fixed = (
            NOW_TYPE + 1,
            4,
            self.category_buckets + 2,
            self.seller_buckets + 2,
            self.payment_buckets + 2,
            self.price_buckets + 2,
            self.amount_buckets + 2,
            self.gap_buckets + 2,
            25,
            7,
        )
        return fixed + (4,) * len(NOVELTY_FIELDS)

    @property
    def n_cat(self) -> int:
        return len(self.cat_features)

    @property
    def n_num(self) -> int:
        return len(self.num_features)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown feature spec fields: {sorted(unknown)}")
        return cls(**dict(data))


# Per-event columns produced by tokenize_events (before window features).
_COL_TYPE, _COL_STATUS, _COL_CAT, _COL_SELLER, _COL_PAY, _COL_PRICE, _COL_AMOUNT = range(7)
_COL_HOUR, _COL_RATING = 7, 8
_N_STATIC = 9
# Novelty columns hold stable hashes of the raw value (0 = absent).
_N_IDS = len(NOVELTY_FIELDS)


@dataclass
class EventTable:
    """Per-event codes of a list of events, in order; slices feed ``encode_window``."""

    ts: Int64Array  # (n,) epoch ms
    static: Int64Array  # (n, _N_STATIC) categorical codes
    ids: Int64Array  # (n, _N_IDS) value hashes for novelty, 0 = absent
    nums: Float32Array  # (n, 3) log1p of price, amount, quantity

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def rows(self, start: int, end: int) -> EventTable:
        """Events ``start:end`` as a table of views (nothing is copied)."""
        part = slice(start, end)
        return EventTable(self.ts[part], self.static[part], self.ids[part], self.nums[part])


def stable_hash(value: str) -> int:
    """A hash that is the same in every process (unlike ``hash()``), never 0."""
    return zlib.crc32(value.encode("utf-8")) + 1


def _bucket(value: str | None, n: int) -> int:
    if value is None or value == "":
        return MISSING
    return 2 + zlib.crc32(value.encode("utf-8")) % n


def _log_bucket(value: Any, n: int, scale: float) -> int:
    if value is None:
        return MISSING
    x = max(float(value), 0.0)
    return 2 + min(n - 1, int(math.log1p(x) * scale))


def _opt_str(event: Mapping[str, Any], field: str) -> str | None:
    value = event.get(field)
    return None if value is None else str(value)


def tokenize_events(events: Sequence[Mapping[str, Any]], spec: FeatureSpec) -> EventTable:
    """Per-event codes for ``events`` (field names of docs/contract.md, ``ts`` in epoch ms)."""
    n = len(events)
    ts = np.empty(n, dtype=np.int64)
    static = np.empty((n, _N_STATIC), dtype=np.int64)
    ids = np.zeros((n, _N_IDS), dtype=np.int64)
    nums = np.zeros((n, 3), dtype=np.float32)
    for i, ev in enumerate(events):
        t = int(ev["ts"])
        ts[i] = t
        price, amount, qty = ev.get("price"), ev.get("amount"), ev.get("quantity")
        rating = ev.get("rating")
        static[i] = (
            TYPE_INDEX.get(str(ev.get("type")), MISSING),
            _STATUS.get(str(ev.get("status")), MISSING),
            _bucket(_opt_str(ev, "category"), spec.category_buckets),
            _bucket(_opt_str(ev, "seller_id"), spec.seller_buckets),
            _bucket(_opt_str(ev, "payment_method"), spec.payment_buckets),
            _log_bucket(price, spec.price_buckets, spec.log_scale),
            _log_bucket(amount, spec.amount_buckets, spec.log_scale),
            1 + (t // HOUR_MS) % 24,
            1 + int(rating) if isinstance(rating, int) and 1 <= rating <= 5 else MISSING,
        )
        for j, field in enumerate(NOVELTY_FIELDS):
            value = ev.get(field)
            if value is not None and value != "":
                ids[i, j] = stable_hash(str(value))
        nums[i] = (
            math.log1p(max(float(price), 0.0)) if price is not None else 0.0,
            math.log1p(max(float(amount), 0.0)) if amount is not None else 0.0,
            math.log1p(max(float(qty), 0.0)) if qty is not None else 0.0,
        )
    return EventTable(ts=ts, static=static, ids=ids, nums=nums)


def encode_window(
    table: EventTable, start: int, end: int, spec: FeatureSpec, T: int
) -> tuple[Int64Array, Float32Array, BoolArray]:
    """Encode events ``table[start:end]`` (at most T of them, the decision event last).

    Rows are right-aligned: the decision event is always at position T-1 and padding
    (code 0, mask False) fills the front. Window features use only events in the slice,
    and events more than ``spec.max_age_ms`` older than the decision event are left out.
    A batch of one for ``encode_tables``: training slices and the stream share one encoder.
    """
    cat, num, mask = encode_tables([table.rows(max(start, 0), end)], spec, T)
    return cat[0], num[0], mask[0]


def encode_tables(
    tables: Sequence[EventTable], spec: FeatureSpec, T: int
) -> tuple[Int64Array, Float32Array, BoolArray]:
    """Whole tables (decision event last), many at once: each one's last T events are
    right-aligned into packed rows and encoded by ``encode_packed``.

    The stream scores hundreds of windows per micro-batch; doing the window features for
    all of them in a few array operations instead of a loop of small ones is several times
    faster.
    """
    if not 1 <= T <= MAX_T:
        raise ValueError(f"T must be in 1..{MAX_T}, got {T}")
    B = len(tables)
    ints = np.zeros((B, T, PACKED_INTS), dtype=np.int64)
    floats = np.zeros((B, T, 3), dtype=np.float32)
    valid = np.zeros((B, T), dtype=np.bool_)
    for b, table in enumerate(tables):
        n = min(len(table), T)
        if n <= 0:
            raise ValueError("cannot encode an empty sequence")
        ints[b, T - n :, 0] = table.ts[-n:]
        ints[b, T - n :, 1 : 1 + _N_STATIC] = table.static[-n:]
        ints[b, T - n :, 1 + _N_STATIC :] = table.ids[-n:]
        floats[b, T - n :] = table.nums[-n:]
        valid[b, T - n :] = True
    return encode_packed(ints, floats, valid, spec)


# One event's codes in a single row: ts, the static codes, then the novelty hashes.
PACKED_INTS = 1 + _N_STATIC + _N_IDS


def pack_table(table: EventTable) -> tuple[Int64Array, Float32Array]:
    """An event table as (n, PACKED_INTS) int64 and (n, 3) float32 rows for ``encode_packed``."""
    ints = np.concatenate([table.ts[:, None], table.static, table.ids], axis=1)
    return ints, table.nums


def clock_row(now_ms: int) -> tuple[Int64Array, Float32Array]:
    """The clock token as one packed row (ints, floats), to follow a window's events."""
    ints = np.zeros(PACKED_INTS, dtype=np.int64)
    ints[0] = now_ms
    ints[1 : 1 + _N_STATIC] = MISSING
    ints[1 + _COL_TYPE] = NOW_TYPE
    ints[1 + _COL_HOUR] = 1 + (now_ms // HOUR_MS) % 24
    return ints, np.zeros(3, dtype=np.float32)


def encode_packed(
    ints: Int64Array, floats: Float32Array, valid: BoolArray, spec: FeatureSpec
) -> tuple[Int64Array, Float32Array, BoolArray]:
    """Window features of right-aligned packed rows: ints (B, T, PACKED_INTS), floats
    (B, T, 3), valid (B, T) true on each window's events (a suffix, decision event last).
    The one encoder: every other ``encode_*`` ends here."""
    ts = ints[:, :, 0]
    static = ints[:, :, 1 : 1 + _N_STATIC]
    # Events older than max_age before the decision are left out (always a prefix).
    valid = valid & (ts >= ts[:, -1:] - spec.max_age_ms)
    log_gap, gap_code = _gaps(ts, valid, spec)
    codes, first = _novelty(ints[:, :, 1 + _N_STATIC :], valid)
    cat = np.zeros((*valid.shape, spec.n_cat), dtype=np.int64)
    cat[:, :, :_COL_HOUR] = static[:, :, :_COL_HOUR]
    cat[:, :, _COL_HOUR] = gap_code
    cat[:, :, _COL_HOUR + 1 : _N_STATIC + 1] = static[:, :, _COL_HOUR:]
    cat[:, :, _N_STATIC + 1 :] = codes
    num = _numbers(ts, static, floats, valid, log_gap, first, spec)
    cat[~valid] = 0
    num[~valid] = 0.0
    return cat, num, valid


def _gaps(ts: Int64Array, valid: BoolArray, spec: FeatureSpec) -> tuple[FloatArray, Int64Array]:
    """log1p of seconds since the previous event in the window, and its bucket code; the
    first event's previous one lies outside the window (MISSING)."""
    B, T = valid.shape
    first_pos = valid & ~np.concatenate([np.zeros((B, 1), np.bool_), valid[:, :-1]], axis=1)
    gap_s = np.zeros((B, T), dtype=np.float64)
    gap_s[:, 1:] = np.maximum(np.diff(ts, axis=1), 0) / 1000.0
    gap_s[first_pos | ~valid] = 0.0
    log_gap = np.log1p(gap_s)
    gap_code = 2 + np.minimum(spec.gap_buckets - 1, (log_gap * spec.log_scale).astype(np.int64))
    gap_code[first_pos] = MISSING
    return log_gap, gap_code


def _novelty(ids: Int64Array, valid: BoolArray) -> tuple[Int64Array, Int64Array]:
    """Novelty codes among valid events only, and which cells are first occurrences.

    A value is new where it first occurs in its window's column: a stable sort of each
    column puts equal values together in time order, so the first of each run is the
    first occurrence (several times faster than comparing every pair of rows)."""
    B, T, C = ids.shape
    vids = np.where(valid[:, :, None], ids, 0)
    present = vids != 0
    columns = vids.transpose(0, 2, 1).reshape(B * C, T)
    order = np.argsort(columns, axis=1, kind="stable")
    ranked = np.take_along_axis(columns, order, axis=1)
    run_starts = np.ones(ranked.shape, dtype=np.bool_)
    run_starts[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    first_here = np.empty_like(run_starts)
    np.put_along_axis(first_here, order, run_starts, axis=1)
    seen = ~first_here.reshape(B, C, T).transpose(0, 2, 1)
    codes = np.where(present, np.where(seen, SEEN, NEW), MISSING).astype(np.int64)
    return codes, (present & ~seen).astype(np.int64)


def _numbers(
    ts: Int64Array,
    static: Int64Array,
    raw: Float32Array,
    valid: BoolArray,
    log_gap: FloatArray,
    first: Int64Array,
    spec: FeatureSpec,
) -> Float32Array:
    """The numeric features: the event's own numbers, its gap, running distinct devices,
    IPs, countries and instruments, failed outcomes so far, and its age at the decision."""
    num = np.zeros((*valid.shape, spec.n_num), dtype=np.float32)
    distinct = np.log1p(np.cumsum(first[:, :, :4], axis=1)).astype(np.float32)
    failed = np.cumsum((static[:, :, _COL_STATUS] == _STATUS["failed"]) & valid, axis=1)
    age_s = np.maximum(ts[:, -1:] - ts, 0) / 1000.0
    num[:, :, 0] = raw[:, :, 0]
    num[:, :, 1] = raw[:, :, 1]
    num[:, :, 2] = log_gap.astype(np.float32) / 10.0
    num[:, :, 3] = raw[:, :, 2]
    num[:, :, 4:8] = distinct
    num[:, :, 8] = np.log1p(failed).astype(np.float32)
    num[:, :, 9] = (np.log1p(age_s) / 10.0).astype(np.float32)
    return num


def encode_sequence(
    events: Sequence[Mapping[str, Any]], spec: FeatureSpec, T: int
) -> tuple[Int64Array, Float32Array, BoolArray]:
    """Encode a user's last ``T`` events (oldest first, decision event last).

    Returns ``cat`` (T, n_cat) int64, ``num`` (T, n_num) float32 and ``mask`` (T,) bool.
    """
    cat, num, mask = encode_batch([events], spec, T)
    return cat[0], num[0], mask[0]


def encode_batch(
    sequences: Sequence[Sequence[Mapping[str, Any]]], spec: FeatureSpec, T: int
) -> tuple[Int64Array, Float32Array, BoolArray]:
    """``encode_sequence`` over several users: (B, T, n_cat), (B, T, n_num), (B, T)."""
    tables = [tokenize_events(events[-T:] if T > 0 else events, spec) for events in sequences]
    return encode_tables(tables, spec, T)
