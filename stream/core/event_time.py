"""Event-time guard: refuses events dated too far ahead, before they reach any state.

Without it one event dated decades ahead becomes its user's newest event, and every later
event of that user is then "older than the allowed lateness": one message blinds detection
for an account (and moves the partition's churn clock to that far future).

Policy, per input partition:

- The partition's watermark is the latest event time accepted on it. An accepted event
  moves it forward, never back; a rejected one never moves it.
- An event is *future*, and rejected, when its ``ts`` is more than ``max_skew_ms`` ahead of
  every reference the guard trusts: the partition's watermark and, in live mode, the wall
  clock. The bound is inclusive: exactly ``max_skew_ms`` ahead is accepted.
- A partition's first event (no watermark yet) is judged by the wall clock alone; without
  a wall clock it is accepted and starts the watermark.
- An event at or behind the watermark is never future, however the wall clock moved: a
  redelivered duplicate of an accepted event is judged as it was, provided the watermark it
  raised was kept (``export``/``restore`` around a restart).

Modes: ``wall_clock`` given (the worker on live traffic) or None (simulated traffic that runs
ahead of real time, such as ``fraudstream up``, and files replayed in event time). Without a
wall clock an event can only be judged against its partition's past, so a partition whose
traffic pauses for longer than ``max_skew_ms`` of event time refuses everything after the
pause: choose ``max_skew_ms`` above the longest quiet spell of a partition in that mode.
Being far in the past is not this guard's business: lateness is per user, in the state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Final

from stream.core.schema import Rejected
from stream.core.timeutil import HOUR_MS, format_ts

DEFAULT_MAX_SKEW_MS: Final = HOUR_MS
WallClock = Callable[[], int]  # now, in epoch milliseconds
FUTURE: Final = "future"  # the rejection reason (a metric label)


class EventTimeGuard:
    """Per-partition event-time watermarks and the future-event check (see module doc)."""

    def __init__(
        self, max_skew_ms: int = DEFAULT_MAX_SKEW_MS, wall_clock: WallClock | None = None
    ) -> None:
        if max_skew_ms < 0:
            raise ValueError(f"max_skew_ms must be >= 0, got {max_skew_ms}")
        self.max_skew_ms = max_skew_ms
        self.wall_clock = wall_clock
        self._watermarks: dict[int, int] = {}

    def admit(self, partition: int, ts: int) -> None:
        """Accept ``ts`` on ``partition`` (moving its watermark forward) or raise
        ``Rejected("future", ...)``, leaving everything as it was."""
        mark = self._watermarks.get(partition)
        if mark is not None and ts <= mark + self.max_skew_ms:
            if ts > mark:  # the common case in one lookup: per-event work stays tiny
                self._watermarks[partition] = ts
            return
        self.check(partition, ts)
        self.advance(partition, ts)

    def check(self, partition: int, ts: int) -> None:
        """Raise ``Rejected("future", ...)`` if ``ts`` is too far ahead; change nothing."""
        mark = self._watermarks.get(partition)
        if mark is not None and ts <= mark + self.max_skew_ms:
            return  # the common case, decided without reading the wall clock
        now = self.wall_clock() if self.wall_clock is not None else None
        if now is None and mark is None:
            return  # nothing to judge by: the first event starts the watermark
        if now is not None and ts <= now + self.max_skew_ms:
            return
        raise Rejected(FUTURE, self._reason(partition, ts, mark, now))

    def advance(self, partition: int, ts: int) -> None:
        """Record an accepted event: the watermark becomes ``ts`` if that is later."""
        mark = self._watermarks.get(partition)
        if mark is None or ts > mark:
            self._watermarks[partition] = ts

    def watermark(self, partition: int) -> int | None:
        return self._watermarks.get(partition)

    def export(self) -> dict[int, int]:
        """The watermarks, partition -> epoch ms, for the worker to persist."""
        return dict(self._watermarks)

    def restore(self, watermarks: Mapping[int, int] | Mapping[str, int]) -> None:
        """Merge persisted watermarks (keys as ints or as the strings JSON makes of them).
        A watermark never moves back, so each partition keeps the later of the two."""
        for key, ts in watermarks.items():
            self.advance(int(key), int(ts))

    def forget(self, partitions: Iterable[int]) -> None:
        """Drop the watermarks of partitions this process no longer holds (revoked): when
        one comes back, its persisted watermark is restored, not a stale one kept here."""
        for partition in partitions:
            self._watermarks.pop(partition, None)

    def _reason(self, partition: int, ts: int, mark: int | None, now: int | None) -> str:
        refs = []
        if mark is not None:
            refs.append(f"partition {partition}'s latest event time {format_ts(mark)}")
        if now is not None:
            refs.append(f"the wall clock {format_ts(now)}")
        return (
            f"field 'ts': {format_ts(ts)} is more than {self.max_skew_ms} ms "
            f"(the allowed clock skew) ahead of {' and of '.join(refs)}"
        )
