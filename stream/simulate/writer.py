"""Finished events: ids and timestamps in time order, labels, and the JSON Lines files."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from stream.core.timeutil import MINUTE_MS
from stream.simulate.brushing import BRUSHING
from stream.simulate.config import SimConfig
from stream.simulate.emitter import Event
from stream.simulate.engine import Engine

LabelRecord = dict[str, str]


class TimestampFormatter:
    """Epoch ms to ``2026-11-29T10:15:03.123Z``; the prefix down to the minute is cached
    because events arrive in time order."""

    def __init__(self) -> None:
        self._minute = -1
        self._prefix = ""

    def __call__(self, ms: int) -> str:
        minute, rest = divmod(ms, MINUTE_MS)
        if minute != self._minute:
            self._minute = minute
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))
        return f"{self._prefix}{rest // 1000:02d}.{rest % 1000:03d}Z"


class Simulation:
    """A simulated marketplace as a stream of finished events with their labels.

    Iterating yields ``(event, labels)`` in ``ts`` order. Event ids are assigned in that
    order, so they reveal nothing about which actor produced an event. A brushing seller's
    label comes with its first fake order; churn labels, known only once the run is over,
    come from :meth:`closing_labels` after the iteration ends.
    """

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.engine = Engine(config)
        self.prefix = config.event_id_prefix
        self.events = 0
        self.purchases = 0
        self.fake_orders = 0
        self.fraud_events = 0
        self.fraud_users: set[str] = set()
        self.user_ids: set[str] = set()
        self.brushing_sellers: set[str] = set()
        self._last_seen: dict[str, str] = {}

    def days(self) -> Iterator[list[tuple[Event, list[LabelRecord]]]]:
        """One day at a time: the cheap way to consume the stream in bulk."""
        fmt = TimestampFormatter()
        prefix, last_seen = self.prefix, self._last_seen
        users = self.user_ids
        for rows in self.engine.days():
            out: list[tuple[Event, list[LabelRecord]]] = []
            for ts, _, event, label in rows:
                self.events += 1
                event_id = event["event_id"] = f"{prefix}{self.events}"
                stamp = event["ts"] = fmt(ts)
                user_id = event["user_id"]
                users.add(user_id)
                last_seen[user_id] = stamp  # churners are known only at the end
                if event["type"] == "purchase":
                    self.purchases += 1
                out.append((event, self._labels(event, event_id, label) if label else []))
            yield out

    def _labels(self, event: Event, event_id: str, label: str) -> list[LabelRecord]:
        if label == BRUSHING:
            self.fake_orders += 1
            labels = [{"kind": BRUSHING, "event_id": event_id}]
            seller_id = event["seller_id"]
            if seller_id not in self.brushing_sellers:
                self.brushing_sellers.add(seller_id)
                labels.append({"kind": BRUSHING, "seller_id": seller_id})
            return labels
        self.fraud_events += 1
        self.fraud_users.add(event["user_id"])
        return [{"kind": label, "event_id": event_id}]

    def __iter__(self) -> Iterator[tuple[Event, list[LabelRecord]]]:
        for day in self.days():
            yield from day

    def closing_labels(self) -> list[LabelRecord]:
        """Churn labels: each churner's last activity (call after the iteration ended)."""
        churners = {u.user_id for u in self.engine.churners}
        gone = [(u, ts) for u, ts in self._last_seen.items() if u in churners]
        return [
            {"kind": "churn", "user_id": user_id, "ts": ts}
            for user_id, ts in sorted(gone, key=lambda kv: kv[1])
        ]


def iter_events(config: SimConfig) -> Iterator[tuple[Event, list[LabelRecord]]]:
    """Events in ``ts`` order with their per-event labels, generated lazily (for live
    traffic); memory stays bounded by about one simulated day."""
    return iter(Simulation(config))


@dataclass(frozen=True)
class GenerateStats:
    events: int
    labels: int
    users: int
    purchases: int
    fake_orders: int
    fraud_events: int
    fraud_users: int
    brushing_sellers: int
    churn_users: int
    events_bytes: int
    seconds: float
    events_per_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def generate_files(out: Path, labels_out: Path, config: SimConfig) -> GenerateStats:
    """Write events (sorted by ``ts``) and labels as JSON Lines, streaming day by day."""
    started = time.perf_counter()
    sim = Simulation(config)
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    n_labels = 0
    # Each line goes straight to the buffered file: holding a day of serialized lines
    # costs several times their size in allocator slack.
    with (
        open(out, "wb", buffering=1 << 20) as events_f,
        open(labels_out, "wb", buffering=1 << 20) as labels_f,
    ):
        write, write_label = events_f.write, labels_f.write
        for day in sim.days():
            for event, labels in day:
                write(dumps(event, option=newline))
                for label in labels:
                    n_labels += 1
                    write_label(dumps(label, option=newline))
        closing = sim.closing_labels()
        for label in closing:
            n_labels += 1
            write_label(dumps(label, option=newline))
        size = events_f.tell()
    seconds = time.perf_counter() - started
    return GenerateStats(
        events=sim.events,
        labels=n_labels,
        users=len(sim.user_ids),
        purchases=sim.purchases,
        fake_orders=sim.fake_orders,
        fraud_events=sim.fraud_events,
        fraud_users=len(sim.fraud_users),
        brushing_sellers=len(sim.brushing_sellers),
        churn_users=len(closing),
        events_bytes=size,
        seconds=round(seconds, 3),
        events_per_s=round(sim.events / seconds, 1) if seconds > 0 else 0.0,
    )
