"""The churn baselines of the build: BG/NBD fitted by maximum likelihood, the history
buckets, and the training sample when most points are positive."""

from __future__ import annotations

import numpy as np

from model.btyd import Histories, by_bucket, fit_bgnbd
from model.selection import train_sample
from stream.core.ranking import history_bucket, roc_auc
from stream.detect.btyd import BGNBD


def simulate_bgnbd(truth: BGNBD, n: int, T: float, rng: np.random.Generator) -> Histories:
    """Customers drawn from BG/NBD itself, observed for ``T`` days from their first visit."""
    xs, txs = [], []
    for _ in range(n):
        lam, p = rng.gamma(truth.r, 1.0 / truth.alpha), rng.beta(truth.a, truth.b)
        t, last, x = 0.0, 0.0, 0
        while True:
            t += rng.exponential(1.0 / lam)
            if t > T:
                break
            x, last = x + 1, t
            if rng.random() < p:
                break
        xs.append(x)
        txs.append(last)
    Ts = np.full(n, T)
    return Histories(np.array(xs), np.array(txs), Ts, np.zeros(n, np.int64), Ts - txs)


def test_fit_recovers_the_parameters_it_was_drawn_from() -> None:
    truth = BGNBD(r=0.8, alpha=20.0, a=1.0, b=4.0)
    h = simulate_bgnbd(truth, 4000, 365.0, np.random.default_rng(0))
    fit = fit_bgnbd(h, 30.0)
    assert abs(fit.r / fit.alpha - truth.r / truth.alpha) < 0.2 * truth.r / truth.alpha
    assert abs(fit.a / (fit.a + fit.b) - 0.2) < 0.07  # the mean dropout per visit


def test_buckets_and_roc_auc() -> None:
    assert [history_bucket(n) for n in (0, 1, 2, 4, 5, 19, 20, 500)] == [
        "0", "1", "2-4", "2-4", "5-19", "5-19", "20+", "20+",
    ]  # fmt: skip
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert roc_auc([0.5, 0.5], [False, True]) == 0.5 and roc_auc([1.0], [True]) is None
    y = np.array([0, 1, 0, 1, 1, 0], np.float32)
    table = by_bucket(
        {"a": np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.4])}, y, np.array([1, 1, 3, 3, 25, 25])
    )
    assert set(table) == {"1", "2-4", "20+", "overall"}
    assert table["1"]["a"]["roc_auc"] == 1.0 and table["20+"]["a"]["n"] == 2


def test_positives_that_would_fill_the_cap_are_sampled_down() -> None:
    rng = np.random.default_rng(0)
    y = np.full((10_000, 3), -1.0, np.float32)
    y[:9000, 2] = 1.0  # churn points, mostly positive
    y[9000:, 2] = 0.0
    y[9990:, 0] = 1.0  # a handful of fraud positives
    idx = train_sample(y, 1000, rng)
    assert len(idx) == 1000
    assert (y[idx, 0] > 0).sum() == 10  # a rare kind keeps every positive
    assert ((y[idx] > 0).any(1)).sum() == 500  # positives fill half, negatives the rest
