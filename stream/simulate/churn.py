"""Churn: users whose engagement decays until they stop, users who come once and never
return, users who pause and return (the hard negatives), and in the rare-buyer profile
users who leave for good after a visit, mostly after a bad one. A churner's label is the
time of their last event, known at the end."""

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
    if cfg.profile == "rare":
        return rare_cohort(ctx, candidates)
    n_churn = round(cfg.churn_rate * cfg.users) if cfg.days >= 4 else 0
    n_pause = round(cfg.pause_rate * cfg.users) if cfg.days >= 6 else 0
    n_once = round(cfg.one_time_rate * cfg.users) if cfg.days >= 4 else 0
    chosen = rng.sample(candidates, min(len(candidates), n_churn + n_pause + n_once))
    churners = chosen[:n_churn]
    late_joiners(ctx, [u for u in candidates if u.role == "honest" and u not in chosen])
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
    for user in chosen[n_churn + n_pause :]:
        # One visit on a day that leaves the silence visible, then gone.
        user.role = CHURN
        user.active_from = rng.randint(0, cfg.days - 3)
        user.rate = max(user.rate, 2.0)  # so that the one day has a visit
        user.stop_ms = ctx.day_start(user.active_from + 1)
        user.decay_start_ms = user.stop_ms - 1
        churners.append(user)
    for user in chosen[n_churn : n_churn + n_pause]:
        user.role = PAUSE
        length = rng.randint(3, min(8, cfg.days - 3))
        begin = rng.randint(1, cfg.days - length - 2)
        user.pause = (begin, begin + length)
    return churners


def late_joiners(ctx: Context, users: list[User]) -> None:
    """``newcomer_rate`` of users join on a later day: short histories at any time."""
    rng, cfg = ctx.rng, ctx.config
    if cfg.days < 2:
        return
    for user in rng.sample(users, min(len(users), round(cfg.newcomer_rate * cfg.users))):
        user.active_from = rng.randint(1, cfg.days - 1)


# Rare buyers leave after a bad visit with this probability (after a good one, with their
# personal dropout): customers mostly leave over an experience that shows in what they do.
LEAVE_AFTER_BAD = 0.6


def rare_cohort(ctx: Context, users: list[User]) -> list[User]:
    """The rare-buyer cohort: each user joins in the first eight weeks with a first visit.
    Some visits go badly (a personal rate, Beta(1.5, 8): about one in six); after a good
    visit a user leaves for good with a personal probability (Beta(1, 6): about one in
    seven), after a bad one with ``LEAVE_AFTER_BAD``. ``dropped`` marks them churners as
    they leave. So leaving is not a coin flip independent of behaviour: a leaver's last
    visit was usually shallow, rarely bought, and what it bought came back refunded or
    badly reviewed, as real leavers' last experiences are."""
    rng, cfg = ctx.rng, ctx.config
    for user in users:
        user.active_from = rng.randrange(min(56, cfg.days))
        user.dropout = rng.betavariate(1.0, 6.0)
        user.bad_rate = rng.betavariate(1.5, 8.0)
    return []


def experience(ctx: Context, user: User, level: float) -> float:
    """The engagement of one visit: ``level`` as it is outside the rare-buyer profile; a
    rare buyer's bad visit is 0.1-0.5 (``behaviour.honest_session``: fewer views, rarely a
    purchase, refunds and unhappy reviews of what it buys)."""
    if ctx.config.profile != "rare" or user.bad_rate <= 0.0:
        return level
    return ctx.rng.uniform(0.1, 0.5) if ctx.rng.random() < user.bad_rate else level


def dropped(ctx: Context, user: User, day: int, visits: int, bad: int = 0) -> bool:
    """Rare buyers: after ``visits`` visits on ``day``, ``bad`` of them bad ones, does the
    user leave for good?"""
    if not visits or (user.dropout <= 0.0 and not bad):
        return False
    stay = (1.0 - user.dropout) ** (visits - bad) * (1.0 - LEAVE_AFTER_BAD) ** bad
    if ctx.rng.random() >= 1.0 - stay:
        return False
    user.role = CHURN
    user.stop_ms = ctx.day_start(day + 1)
    user.decay_start_ms = user.stop_ms - 1
    return True


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
