"""Churn: a clock, not an event, decides. Every user seen is scored on a timer, from their
first event on; in backtests the clock is event time.

The rule is the buy-till-you-die model BG/NBD (``stream.detect.btyd``) on the user's whole
history as the state summarises it: visits (frequency), the time from the first to the
last event (tenure and recency) and the time since then. A bundle may replace its
parameters by ones fitted on the shop's data, or the scores by the sequence model's
(``stream.detect.model_churn``). The score is the probability of no activity within the
horizon.

Alerts go to a retention team, so they come at a rate it can work: at each tick the users
over the threshold are ranked by probability times value at risk (the spend expected
within the horizon, plus one), and at most the tick's share of a daily budget per 1,000
users alert, each once per inactivity episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.core.alerts import RULES_MODEL_VERSION, Detection, Reason
from stream.core.state import EID, TS, UserState
from stream.core.timeutil import DAY_MS
from stream.detect.btyd import BGNBD


@dataclass(frozen=True)
class ChurnConfig:
    horizon_days: float = 30.0  # "churned" means no activity for this long
    interval_ms: int = DAY_MS  # how often users are evaluated
    # The least probability that alerts: more likely gone than not; the budget ranks above it.
    threshold: float = 0.5
    # Alerts per 1,000 users per day at most (None: every user over the threshold).
    budget_per_1000: float | None = 10.0


@dataclass(frozen=True)
class History:
    """What the churn scores read from a user's state, in BG/NBD's terms (days)."""

    x: int  # repeat visits
    t_x: float  # last activity, days after the first
    T: float  # now, days after the first
    spend_per_visit: float

    @classmethod
    def of(cls, state: UserState, now_ms: int) -> History:
        visits = max(1, state.visits)
        return cls(
            visits - 1,
            (state.max_ts - state.first_ts) / DAY_MS,
            (max(now_ms, state.max_ts) - state.first_ts) / DAY_MS,
            state.spend / visits,
        )


def churn_score(
    state: UserState, now_ms: int, cfg: ChurnConfig, params: BGNBD | None = None
) -> float | None:
    """Probability of no activity within the horizon after ``now_ms``; None only for a
    state without events."""
    if not state.events:
        return None
    h = History.of(state, now_ms)
    model = params or BGNBD.prior(cfg.horizon_days)
    return model.p_no_visit(h.x, h.t_x, h.T, cfg.horizon_days)


def value_at_risk(
    state: UserState, now_ms: int, cfg: ChurnConfig, params: BGNBD | None = None
) -> float:
    """Spend expected within the horizon if the user stays."""
    h = History.of(state, now_ms)
    model = params or BGNBD.prior(cfg.horizon_days)
    return h.spend_per_visit * model.expected_visits(h.x, h.T, cfg.horizon_days)


@dataclass(frozen=True)
class Scorer:
    """Which detector scored churn, for the alert: its name, its lead reason and the model
    version to report (None: the bundle's)."""

    detector: str
    model_version: str | None = RULES_MODEL_VERSION
    lead: tuple[Reason, ...] = ()


RULES = Scorer("rules")


def churn_detection(
    user_id: str,
    state: UserState,
    now_ms: int,
    score: float,
    cfg: ChurnConfig,
    threshold: float | None = None,
    lead: tuple[Reason, ...] = (),
    scorer: Scorer = RULES,
    value: float = 0.0,
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
        *scorer.lead,
        Reason(
            "churn.inactive",
            f"no activity for {idle_days:.1f} days; probability {score:.2f} of none "
            f"in the next {cfg.horizon_days:g} days",
        ),
        Reason(
            "churn.history",
            f"{state.visits} visits, {state.total} events since first seen "
            f"{(state.max_ts - state.first_ts) / DAY_MS:.1f} days before the last",
        ),
        Reason("churn.value", f"{value:.2f} expected spend at risk within the horizon"),
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
        detector=scorer.detector,
        model_version=scorer.model_version,
    )


@dataclass
class ChurnBudget:
    """The alerts each tick may raise per partition: the tick's share of the daily budget
    for the partition's users, with the fraction carried to the next tick so that small
    partitions alert too. Carries live in memory: a restart starts them at zero."""

    cfg: ChurnConfig
    carry: dict[int, float] = field(default_factory=dict)

    def allowance(self, partition: int, users: int) -> int | None:
        per_day = self.cfg.budget_per_1000
        if per_day is None:
            return None
        due = self.carry.get(partition, 0.0) + per_day * users / 1000.0 * (
            self.cfg.interval_ms / DAY_MS
        )
        whole = int(due)
        self.carry[partition] = due - whole
        return whole


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
