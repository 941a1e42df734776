"""Churn: users whose engagement decays until they stop, and users who pause and return
(the hard negatives). A churner's label is the time of their last event, known at the end."""

from __future__ import annotations

from stream.core.timeutil import DAY_MS
from stream.simulate.context import Context
from stream.simulate.world import User

CHURN = "churn"
PAUSE = "pause"


def assign(ctx: Context, candidates: list[User]) -> list[User]:
    """Mark ``churn_rate`` of users as churners and ``pause_rate`` as pausers.

    A churner fades over a few days then stops early enough that the run shows the silence;
    a pauser goes quiet for 3-8 days and comes back before the end. Runs too short to show
    either get none of that kind.
    """
    rng, cfg = ctx.rng, ctx.config
    n_churn = round(cfg.churn_rate * cfg.users) if cfg.days >= 4 else 0
    n_pause = round(cfg.pause_rate * cfg.users) if cfg.days >= 6 else 0
    chosen = rng.sample(candidates, min(len(candidates), n_churn + n_pause))
    churners = chosen[:n_churn]
    for user in churners:
        user.role = CHURN
        # Decay starts on any day that leaves room for it and lasts 2 days to a third of
        # the run; the user is gone at least two days before the run ends. Departures all
        # through the run put some in a time split's validation and test days too.
        latest_stop = cfg.days - 2
        decay_start = rng.randint(0, max(0, cfg.days - 4))
        length = rng.randint(2, max(2, cfg.days // 3))
        stop_day = min(decay_start + length, latest_stop)
        decay_start = min(decay_start, stop_day - 1)
        user.decay_start_ms = ctx.day_start(decay_start) + rng.randrange(DAY_MS)
        user.stop_ms = max(
            user.decay_start_ms + DAY_MS // 2, ctx.day_start(stop_day) + rng.randrange(DAY_MS // 2)
        )
        # Fading users make each visit count less, not just fewer of them.
        user.rate *= rng.uniform(1.0, 1.6)
    for user in chosen[n_churn:]:
        user.role = PAUSE
        length = rng.randint(3, min(8, cfg.days - 3))
        begin = rng.randint(1, cfg.days - length - 2)
        user.pause = (begin, begin + length)
    return churners


def engagement(user: User, day: int, day_start_ms: int) -> float:
    """Activity multiplier for ``day`` (starting at ``day_start_ms``): 1 for ordinary users,
    fading from 1 towards 0.1 over a churner's decay, 0 after the stop or during a pause."""
    if user.stop_ms >= 0:
        if day_start_ms + DAY_MS <= user.decay_start_ms:
            return 1.0
        if day_start_ms >= user.stop_ms:
            return 0.0
        span = user.stop_ms - user.decay_start_ms
        progress = (day_start_ms + DAY_MS // 2 - user.decay_start_ms) / span
        return max(0.1, min(1.0, 1.0 - 0.9 * progress))
    first, end = user.pause
    return 0.0 if first <= day < end else 1.0
