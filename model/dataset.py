"""Training examples from an events file and a labels file (docs/contract.md, section 4).

Every example is a window of one user's events ending at a scoring point, with a target
per kind or -1 where that kind does not apply there:

- fraud: every decision event (checkout, payment, purchase, login, account_update,
  review); positive when its event id carries a fraud label.
- brushing: every purchase; positive when the purchase is labelled, or, where the labels
  only name brushing sellers, when its seller is one.
- churn: the user at each tick of the stream's churn clock (a day by default) from their
  first event on, scored on the events before it plus a clock token that carries the idle
  time. Negative when the user is seen again within the horizon; positive when the
  horizon passes with no activity. A point belongs to the split of its window's last
  event, and both are read from events inside that split only. Where the rest of the
  horizon lies beyond the split, churn labels decide (positive for a labelled churner
  past their last activity); without churn labels such a point is censored (-1).

The split is by days: earlier days train, then validation, then test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from model.features import (
    KINDS,
    PACKED_INTS,
    EventTable,
    FeatureSpec,
    clock_row,
    encode_packed,
    pack_table,
    tokenize_events,
)
from stream.core.schema import DECISION_TYPES
from stream.core.timeutil import DAY_MS

FRAUD, BRUSHING, CHURN = range(3)
# As the stream: every user is scored from their first event on.
CHURN_MIN_EVENTS = 1


@dataclass
class Labels:
    fraud_events: set[str] = field(default_factory=set)
    brushing_events: set[str] = field(default_factory=set)
    brushing_sellers: set[str] = field(default_factory=set)
    churn_users: dict[str, int] = field(default_factory=dict)

    def has(self, kind: str) -> bool:
        if kind == "fraud":
            return bool(self.fraud_events)
        if kind == "brushing":
            return bool(self.brushing_events or self.brushing_sellers)
        return bool(self.churn_users)


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield lineno, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: invalid JSON: {exc}") from None


def read_labels(path: Path) -> Labels:
    labels = Labels()
    for lineno, row in _jsonl(path):
        kind = row.get("kind") if isinstance(row, dict) else None
        if kind == "fraud" and "event_id" in row:
            labels.fraud_events.add(str(row["event_id"]))
        elif kind == "brushing" and "event_id" in row:
            labels.brushing_events.add(str(row["event_id"]))
        elif kind == "brushing" and "seller_id" in row:
            labels.brushing_sellers.add(str(row["seller_id"]))
        elif kind == "churn" and "user_id" in row:
            labels.churn_users[str(row["user_id"])] = _label_ts(row.get("ts"))
        else:
            raise ValueError(f"{path}:{lineno}: not a label row of docs/contract.md, section 4")
    return labels


def read_events(path: Path) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Events grouped by user and sorted by time; also the count rejected.

    Each line goes through the stream's own validation and storage (``parse_event``,
    ``event_row``, ``row_to_dict``), so training sees exactly the fields and values the
    worker hands to ``encode_sequence``. Lines the stream would dead-letter are skipped.
    """
    from stream.core.schema import Rejected, parse_event
    from stream.core.state import event_row, row_to_dict

    users: dict[str, list[dict[str, Any]]] = defaultdict(list)
    rejected = 0
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                event = parse_event(line.rstrip(b"\r\n"))
            except Rejected:
                rejected += 1
                continue
            users[event.user_id].append(row_to_dict(event_row(event)))
    for evs in users.values():
        evs.sort(key=lambda e: (e["ts"], str(e.get("event_id", ""))))
    return dict(users), rejected


def _label_ts(value: Any) -> int:
    from stream.core.timeutil import parse_ts

    return parse_ts(value) if value is not None else 0


@dataclass
class Split:
    train_end: int  # epoch ms, exclusive
    val_end: int
    data_end: int  # last event time (inclusive)

    def part(self, ts: int) -> int:
        return 0 if ts < self.train_end else 1 if ts < self.val_end else 2

    def horizon_end(self, part: int) -> int:
        return (self.train_end, self.val_end, self.data_end + 1)[part]


def day_split(first_ts: int, last_ts: int, val_frac: float, test_frac: float) -> Split:
    first_day, n_days = first_ts // DAY_MS, last_ts // DAY_MS - first_ts // DAY_MS + 1
    n_test = max(1, round(n_days * test_frac))
    n_val = max(1, round(n_days * val_frac))
    if n_days < n_test + n_val + 1:
        raise ValueError(f"{n_days} days of events are too few for a train/val/test split by day")
    train_end = (first_day + n_days - n_test - n_val) * DAY_MS
    return Split(train_end, train_end + n_val * DAY_MS, last_ts)


@dataclass
class Examples:
    """Index of scoring points; windows are materialised on demand by ``encode``."""

    user: npt.NDArray[np.int32]
    end: npt.NDArray[np.int32]  # window is table[end - T : end]
    ts: npt.NDArray[np.int64]
    part: npt.NDArray[np.int8]  # 0 train, 1 validation, 2 test
    y: npt.NDArray[np.float32]  # (n, 3), -1 where the kind does not apply
    clock: npt.NDArray[np.bool_]  # a churn point: the window ends with a clock token at ts

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def subset(self, idx: npt.NDArray[np.int64]) -> Examples:
        return Examples(
            self.user[idx], self.end[idx], self.ts[idx], self.part[idx], self.y[idx],
            self.clock[idx],
        )  # fmt: skip


@dataclass
class Corpus:
    events_path: Path
    user_ids: list[str]
    tables: list[EventTable]
    events: list[list[dict[str, Any]]]
    examples: Examples
    split: Split
    kinds: dict[str, bool]  # kind -> the labels file has labels of this kind
    # user index -> the last activity of a labelled churner (who never came back after it)
    churned_at: dict[int, int] = field(default_factory=dict)


def _targets(evs: list[dict[str, Any]], labels: Labels) -> Iterator[tuple[int, list[float]]]:
    """Fraud and brushing targets at the user's events."""
    seller_only = not labels.brushing_events
    for i, ev in enumerate(evs):
        y = [-1.0, -1.0, -1.0]
        etype = ev.get("type")
        if etype in DECISION_TYPES:
            y[FRAUD] = float(str(ev.get("event_id")) in labels.fraud_events)
        if etype == "purchase":
            eid, seller = str(ev.get("event_id")), str(ev.get("seller_id"))
            y[BRUSHING] = float(
                eid in labels.brushing_events or (seller_only and seller in labels.brushing_sellers)
            )
        if max(y) >= 0:
            yield i, y


def churn_points(
    times: npt.NDArray[np.int64],
    churned_at: int | None,
    labelled: bool,
    split: Split,
    horizon_ms: int,
    interval_ms: int = DAY_MS,
    min_events: int = CHURN_MIN_EVENTS,
) -> Iterator[tuple[int, int, int, float]]:
    """Churn points of one user: (tick, events before it, split part, target).

    Ticks are the stream's churn clock (multiples of ``interval_ms``) from the user's
    ``min_events``-th event while they have been idle at most one horizon. A point counts
    in the split of its window's last event, so one window (and one churner's "gone for
    good") never appears in two splits: a model cannot pass a test by remembering users.
    ``churned_at`` is the last activity of a labelled churner; ``labelled`` says whether
    the labels name churners at all."""
    if len(times) < min_events:
        return
    first = (int(times[min_events - 1]) // interval_ms + 1) * interval_ms
    last = int(times[-1])
    for tick in range(first, split.data_end + 1, interval_ms):
        n = int(np.searchsorted(times, tick, side="left"))
        if tick - int(times[n - 1]) > horizon_ms:
            break  # idle longer than the horizon: churned by any definition, nothing to learn
        part = split.part(int(times[n - 1]))
        end = min(tick + horizon_ms, split.horizon_end(part))
        if n < len(times) and int(times[n]) < end:
            target = 0.0  # seen again within the horizon, inside the split
        elif tick + horizon_ms < split.horizon_end(part):
            target = 1.0  # the whole horizon passed inside the split with no activity
        elif labelled:
            # The rest of the horizon lies beyond the split: the labels, which name every
            # user who left for good, decide. Dropping these points instead would keep only
            # the churners among users idle at a split's end, and teach that idling is leaving.
            target = float(churned_at is not None and last < tick)
        else:
            continue  # censored
        yield tick, n, part, target


def build_corpus(
    events_path: Path,
    labels_path: Path,
    spec: FeatureSpec,
    *,
    horizon_days: float = 30.0,
    interval_ms: int = DAY_MS,
    val_frac: float = 0.1,
    test_frac: float = 0.2,
) -> Corpus:
    users, _ = read_events(events_path)
    labels = read_labels(labels_path)
    if not users:
        raise ValueError(f"{events_path} holds no usable events")
    all_ts = [e["ts"] for evs in users.values() for e in (evs[0], evs[-1])]
    split = day_split(min(all_ts), max(all_ts), val_frac, test_frac)
    horizon_ms = int(horizon_days * DAY_MS)
    cols: dict[str, list[Any]] = {"user": [], "end": [], "ts": [], "part": [], "y": [], "clock": []}
    user_ids = sorted(users)
    for u, uid in enumerate(user_ids):
        evs = users[uid]
        for i, y in _targets(evs, labels):
            cols["user"].append(u)
            cols["end"].append(i + 1)
            cols["ts"].append(int(evs[i]["ts"]))
            cols["part"].append(split.part(int(evs[i]["ts"])))
            cols["y"].append(y)
            cols["clock"].append(False)
        times = np.fromiter((int(e["ts"]) for e in evs), np.int64, len(evs))
        for tick, n, part, target in churn_points(
            times,
            labels.churn_users.get(uid),
            bool(labels.churn_users),
            split,
            horizon_ms,
            interval_ms,
        ):
            cols["user"].append(u)
            cols["end"].append(n)
            cols["ts"].append(tick)
            cols["part"].append(part)
            cols["y"].append([-1.0, -1.0, target])
            cols["clock"].append(True)
    ex = Examples(
        np.asarray(cols["user"], np.int32),
        np.asarray(cols["end"], np.int32),
        np.asarray(cols["ts"], np.int64),
        np.asarray(cols["part"], np.int8),
        np.asarray(cols["y"], np.float32).reshape(-1, 3),
        np.asarray(cols["clock"], np.bool_),
    )
    tables = [tokenize_events(users[uid], spec) for uid in user_ids]
    kinds = {k: labels.has(k) for k in KINDS}
    events = [users[uid] for uid in user_ids]
    churned_at = {
        u: labels.churn_users[uid] for u, uid in enumerate(user_ids) if uid in labels.churn_users
    }
    return Corpus(events_path, user_ids, tables, events, ex, split, kinds, churned_at)


def encode(
    corpus: Corpus, ex: Examples, spec: FeatureSpec, T: int, chunk: int = 4096
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Materialise windows, with the stream's own ``encode_packed``; codes are stored as
    int16 to keep a million windows in memory. A churn point's window is its last T - 1
    events and the clock token."""
    n = len(ex)
    cat = np.zeros((n, T, spec.n_cat), dtype=np.int16)
    num = np.zeros((n, T, spec.n_num), dtype=np.float32)
    mask = np.zeros((n, T), dtype=np.bool_)
    packed = [pack_table(t) for t in corpus.tables]
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        ints = np.zeros((hi - lo, T, PACKED_INTS), np.int64)
        floats = np.zeros((hi - lo, T, 3), np.float32)
        valid = np.zeros((hi - lo, T), np.bool_)
        for b, i in enumerate(range(lo, hi)):
            rows, extra = packed[ex.user[i]], int(ex.clock[i])
            end = int(ex.end[i])
            k = min(end, T - extra)
            ints[b, T - extra - k : T - extra] = rows[0][end - k : end]
            floats[b, T - extra - k : T - extra] = rows[1][end - k : end]
            valid[b, T - extra - k :] = True
            if extra:
                ints[b, -1], floats[b, -1] = clock_row(int(ex.ts[i]))
        c, x, m = encode_packed(ints, floats, valid, spec)
        cat[lo:hi], num[lo:hi], mask[lo:hi] = c, x, m
    return cat, num, mask
