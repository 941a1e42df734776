"""The day loop: every actor's events for one day, then that day closes in time order."""

from __future__ import annotations

import random
from collections.abc import Iterator

from stream.simulate import behaviour, churn, fraud
from stream.simulate.brushing import Brushing, Farm, setup
from stream.simulate.config import SimConfig
from stream.simulate.context import Context
from stream.simulate.emitter import Emitter, Row
from stream.simulate.world import User, World


class Engine:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        rng = random.Random(config.seed)
        self.world = World(config, rng)
        self.ctx = Context(config, rng, self.world, Emitter(config.start_ms, config.days))
        self.farms: list[Farm] = setup(self.ctx)
        self.world.build_catalogue()
        base = list(self.world.users)
        self.fraud_users: list[User] = fraud.assign(self.ctx, base)
        honest = [u for u in base if u.role == "honest"]
        self.churners: list[User] = churn.assign(self.ctx, honest)
        self.brushing = Brushing(self.ctx, self.farms)
        mean = sum(config.weekday_weights) / 7.0
        self.weekday = [w / mean for w in config.weekday_weights]
        self.fake_orders = 0

    def days(self) -> Iterator[list[Row]]:
        """Each day's events in time order; only open days (and scheduled follow-ups) are
        held in memory."""
        for day in range(self.config.days):
            self._simulate(day)
            yield self.ctx.em.close_day(day)

    def _simulate(self, day: int) -> None:
        ctx, cfg, rng = self.ctx, self.config, self.ctx.rng
        ctx.purchases_today = 0
        start = ctx.day_start(day)
        factor = self.weekday[(cfg.start.weekday() + day) % 7]
        for user in self.world.users:
            if day < user.active_from:
                continue
            behaviour.daily_changes(ctx, user, day)
            level = churn.engagement(user, day, start)
            if level <= 0.0:
                continue
            visits = ctx.poisson(user.rate * factor * level)
            if cfg.profile == "rare" and day == user.active_from:
                visits = max(1, visits)  # a cohort member's first purchase visit
            bad = 0
            for _ in range(visits):
                mood = churn.experience(ctx, user, level)
                bad += mood < level
                behaviour.honest_session(ctx, user, ctx.session_start(day), day, mood)
            if churn.dropped(ctx, user, day, visits, bad):
                self.churners.append(user)
        for seller in self.world.sellers:
            if rng.random() < cfg.flash_sale_rate:
                behaviour.flash_sale(ctx, seller, day)
        for user in self.fraud_users:
            if day in user.attack_days:
                fraud.run(ctx, user, day)
        self.fake_orders += self.brushing.run_day(day, ctx.purchases_today)
