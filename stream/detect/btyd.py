"""Buy-till-you-die: the BG/NBD model's predictions (Fader, Hardie and Lee 2005), in plain
Python so that the stream can score with it; fitting lives in ``model.btyd``.

A customer visits as a Poisson process with rate lambda ~ Gamma(r, alpha) while alive, and
after each visit drops out for good with probability p ~ Beta(a, b). From a history of
``x`` repeat visits, the last at ``t_x`` and the first at 0, seen up to ``T`` (time in
days), the model gives the probability that the customer is still alive and the
probability of no visit in the next ``horizon`` days: while alive nobody drops out without
a visit, so that is 1 - P(alive) * (1 - E[exp(-lambda * horizon)]), with lambda's
posterior Gamma(r + x, alpha + T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class BGNBD:
    r: float
    alpha: float  # days
    a: float
    b: float

    @classmethod
    def prior(cls, horizon_days: float) -> BGNBD:
        """Unfitted parameters for a shop whose horizon is ``horizon_days``: about one visit
        per third of a horizon, and a one-in-four chance of leaving after a visit. The
        stream's churn rule; a bundle carries fitted ones."""
        return cls(r=0.5, alpha=horizon_days / 6.0, a=1.0, b=3.0)

    def to_json(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    @classmethod
    def from_json(cls, d: dict[str, float]) -> BGNBD:
        return cls(float(d["r"]), float(d["alpha"]), float(d["a"]), float(d["b"]))

    def p_alive(self, x: int, t_x: float, T: float) -> float:
        if x <= 0:
            return 1.0  # BG/NBD drops out only after a repeat visit
        log_odds = math.log(self.a / (self.b + x - 1)) + (self.r + x) * math.log(
            (self.alpha + T) / (self.alpha + t_x)
        )
        return 1.0 / (1.0 + math.exp(min(log_odds, 700.0)))

    def p_no_visit(self, x: int, t_x: float, T: float, horizon: float) -> float:
        """Probability of no visit in (T, T + horizon]: the churn score."""
        stay: float = ((self.alpha + T) / (self.alpha + T + horizon)) ** (self.r + x)
        return 1.0 - self.p_alive(x, t_x, T) * (1.0 - stay)

    def expected_visits(self, x: int, T: float, horizon: float) -> float:
        """Visits expected in the next ``horizon`` days if alive (the posterior mean rate)."""
        return (self.r + x) / (self.alpha + T) * horizon
