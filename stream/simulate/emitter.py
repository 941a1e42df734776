"""Where generated events go: per-day buckets, so that memory holds about one day at a time.

Events are generated in any order within a day and sorted when the day closes. Anything
scheduled later (a session running past midnight, a review a week after the purchase) goes
into the bucket of its own day, which must not be closed yet.
"""

from __future__ import annotations

from typing import Any

from stream.core.timeutil import DAY_MS
from stream.simulate.world import User

Event = dict[str, Any]
# (ts in epoch ms, generation sequence for stable ties, event, label kind or None)
Row = tuple[int, int, Event, str | None]


class Emitter:
    def __init__(self, start_ms: int, days: int) -> None:
        self.start_ms = start_ms
        self.end_ms = start_ms + days * DAY_MS
        self.buckets: dict[int, list[Row]] = {}
        self.seq = 0
        self.open_day = 0  # days before this one are closed and written

    def push(self, ts: int, event: Event, label: str | None, user: User) -> bool:
        """Queue one event; False when it falls outside the run or after the user stopped."""
        if ts >= self.end_ms or 0 <= user.stop_ms <= ts:
            return False
        day = (ts - self.start_ms) // DAY_MS
        if day < self.open_day:
            raise RuntimeError(f"event at day {day} generated after that day was written")
        self.seq += 1
        bucket = self.buckets.get(day)
        if bucket is None:
            bucket = self.buckets[day] = []
        bucket.append((ts, self.seq, event, label))
        return True

    def close_day(self, day: int) -> list[Row]:
        """Remove and return one day's events in time order."""
        rows = self.buckets.pop(day, [])
        rows.sort()  # (ts, seq) is unique, so events are never compared
        self.open_day = day + 1
        return rows


class Session:
    """One visit: a user on one device and network, its events spaced by the given gaps."""

    __slots__ = ("country", "device", "em", "ip", "label", "session_id", "t", "user")

    def __init__(
        self,
        em: Emitter,
        user: User,
        session_id: str,
        t: int,
        device: str,
        ip: str,
        country: str,
        label: str | None = None,
    ) -> None:
        self.em = em
        self.user = user
        self.session_id = session_id
        self.t = t
        self.device = device
        self.ip = ip
        self.country = country
        self.label = label

    def add(self, kind: str, gap_ms: int, fields: dict[str, Any] | None = None) -> bool:
        """Append an event ``gap_ms`` after the previous one; False if it was dropped."""
        self.t += gap_ms
        event: Event = {
            "event_id": "",  # assigned in time order when written
            "ts": self.t,
            "user_id": self.user.user_id,
            "type": kind,
            "session_id": self.session_id,
            "device_id": self.device,
            "ip": self.ip,
            "country": self.country,
        }
        if fields:
            event.update(fields)
        return self.em.push(self.t, event, self.label, self.user)
