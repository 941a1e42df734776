"""Churn: a clock, not an event, decides. Users whose inactivity has grown long for their
own habits are scored on a timer; in backtests the clock is event time.

The rule: the score rises with the current gap since the user's last event, measured in
units of the user's typical gap between sessions (events more than ``session_gap_ms``
apart), and with a decline of activity in the second half of the user's window.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from stream.core.alerts import Detection, Reason
from stream.core.state import EID, TS, UserState
from stream.core.timeutil import DAY_MS, MINUTE_MS


@dataclass(frozen=True)
class ChurnConfig:
    horizon_days: float = 30.0  # "churned" means no activity for this long
    interval_ms: int = DAY_MS  # how often users are evaluated
    session_gap_ms: int = 30 * MINUTE_MS
    min_events: int = 5  # too little history says nothing about habits
    threshold: float = 0.9


def churn_score(state: UserState, now_ms: int, cfg: ChurnConfig) -> float | None:
    """Probability-like churn score at ``now_ms``; None when the user has too little history."""
    if len(state.events) < cfg.min_events or now_ms < state.max_ts:
        return None
    times = [r[TS] for r in state.events]
    gaps = [b - a for a, b in itertools.pairwise(times) if b - a > cfg.session_gap_ms]
    typical = max(sorted(gaps)[len(gaps) // 2] if gaps else DAY_MS, cfg.session_gap_ms)
    idle = (now_ms - state.max_ts) / typical
    half = times[0] + (times[-1] - times[0]) / 2
    late = sum(1 for t in times if t >= half)
    decline = 1.0 - late / max(1, len(times) - late)  # > 0 when activity fell off
    z = 1.2 * (idle - 3.0) + 1.5 * max(0.0, decline)
    return 1.0 / (1.0 + math.exp(-z))


def churn_detection(
    user_id: str,
    state: UserState,
    now_ms: int,
    score: float,
    cfg: ChurnConfig,
    threshold: float | None = None,
    lead: tuple[Reason, ...] = (),
) -> Detection | None:
    """One alert per user per inactivity episode: the id names the user's last event.

    ``threshold`` replaces the rule's (a model's score); ``lead`` reasons go first."""
    threshold = cfg.threshold if threshold is None else threshold
    if score < threshold or state.cooldowns.get("churn") == state.max_ts:
        return None
    state.cooldowns["churn"] = state.max_ts
    last = state.events[-1]
    idle_days = (now_ms - state.max_ts) / DAY_MS
    reasons = (
        *lead,
        Reason("churn.inactive", f"no activity for {idle_days:.1f} days"),
        Reason("churn.history", f"{state.total} events since first seen"),
    )
    return Detection(
        kind="churn",
        subject_type="user",
        subject_id=user_id,
        score=score,
        threshold=threshold,
        event_id=last[EID],
        event_ts=last[TS],
        reasons=reasons,
        evidence_event_ids=tuple(r[EID] for r in state.events[-5:]),
        user_id=user_id,
        window=f"last:{last[EID]}",
    )


class ChurnClock:
    """Event-time clocks that tick every ``interval_ms``, aligned to multiples of it.

    ``crossed(key, ts)`` returns the ticks that an event at ``ts`` passes, to be evaluated
    before the event is applied. The backtest keeps one clock; the worker keeps one per
    partition, so a user (whose events all live in one partition) is evaluated at the same
    ticks, with the same state, in both.
    """

    def __init__(self, interval_ms: int) -> None:
        self.interval = interval_ms
        self._next: dict[int, int] = {}

    def crossed(self, key: int, ts: int) -> list[int]:
        upcoming = self._next.get(key)
        if upcoming is None:
            self._next[key] = (ts // self.interval + 1) * self.interval
            return []
        ticks = []
        while ts >= upcoming:
            ticks.append(upcoming)
            upcoming += self.interval
        self._next[key] = upcoming
        return ticks
