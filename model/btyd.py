"""The buy-till-you-die baseline: BG/NBD fitted on the training days, and the churn
baselines (recency, BG/NBD) and per-history-length metrics at the corpus's churn points.

BG/NBD is fitted here with numpy and scipy by maximum likelihood (Fader, Hardie and Lee
2005, equation 6) rather than through a library: ``lifetimes`` is unmaintained, and
``btyd`` or ``pymc-marketing`` would bring PyMC for one closed-form likelihood. The
predictions are ``stream.detect.btyd``'s, the ones the stream scores with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from model.calibrate import ranking_metrics
from model.dataset import Corpus, Examples
from stream.core.ranking import HISTORY_BUCKETS, history_bucket
from stream.core.state import VISIT_GAP_MS
from stream.core.timeutil import DAY_MS
from stream.detect.btyd import BGNBD


@dataclass
class Histories:
    """BG/NBD's summary at each churn point: repeat visits, last and current time (days
    after the first event), and events seen."""

    x: npt.NDArray[np.int64]
    t_x: npt.NDArray[np.float64]
    T: npt.NDArray[np.float64]
    events: npt.NDArray[np.int64]
    idle_days: npt.NDArray[np.float64]


def visit_starts(times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Cumulative visits after each event (a visit starts after ``VISIT_GAP_MS`` of silence,
    as the stream counts them)."""
    new = np.ones(len(times), np.int64)
    if len(times) > 1:
        new[1:] = (np.diff(times) > VISIT_GAP_MS).astype(np.int64)
    return np.cumsum(new)


def histories(corpus: Corpus, ex: Examples) -> Histories:
    """The summary at each of ``ex``'s points, from the events before it."""
    n = len(ex)
    out = Histories(
        np.zeros(n, np.int64), np.zeros(n), np.zeros(n), np.zeros(n, np.int64), np.zeros(n)
    )
    cache: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = {}
    for i in range(n):
        u, end = int(ex.user[i]), int(ex.end[i])
        if u not in cache:
            times = np.fromiter((int(e["ts"]) for e in corpus.events[u]), np.int64)
            cache[u] = (times, visit_starts(times))
        times, visits = cache[u]
        first, last, now = int(times[0]), int(times[end - 1]), int(ex.ts[i])
        out.x[i] = visits[end - 1] - 1
        out.t_x[i] = (last - first) / DAY_MS
        out.T[i] = (max(now, last) - first) / DAY_MS
        out.events[i] = end
        out.idle_days[i] = (now - last) / DAY_MS
    return out


def calibration_histories(corpus: Corpus, end_ms: int) -> Histories:
    """Every user's summary at ``end_ms`` from their events before it (the fitting data)."""
    rows = []
    for evs in corpus.events:
        times = np.fromiter((int(e["ts"]) for e in evs), np.int64)
        k = int(np.searchsorted(times, end_ms, side="left"))
        if k == 0:
            continue
        visits = visit_starts(times[:k])
        first, last = int(times[0]), int(times[k - 1])
        rows.append((visits[-1] - 1, (last - first) / DAY_MS, (end_ms - first) / DAY_MS, k))
    arr = np.array(rows, np.float64).reshape(-1, 4)
    return Histories(
        arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], arr[:, 3].astype(np.int64),
        arr[:, 2] - arr[:, 1],
    )  # fmt: skip


def neg_log_likelihood(log_params: npt.NDArray[np.float64], h: Histories) -> float:
    from scipy.special import betaln, gammaln  # type: ignore[import-untyped]

    r, alpha, a, b = np.exp(log_params)
    x, t_x, T = h.x.astype(np.float64), h.t_x, h.T
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    term1 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        term2 = np.where(
            x > 0,
            betaln(a + 1, b + np.maximum(x, 1) - 1) - betaln(a, b)
            - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )  # fmt: skip
    ll = common + np.logaddexp(term1, term2)
    return float(-ll.sum())


def fit_bgnbd(h: Histories, horizon_days: float) -> BGNBD:
    """Maximum-likelihood BG/NBD parameters, started from the stream's prior."""
    from scipy.optimize import minimize  # type: ignore[import-untyped]

    prior = BGNBD.prior(horizon_days)
    start = np.log([prior.r, prior.alpha, prior.a, prior.b])
    res = minimize(
        neg_log_likelihood, start, args=(h,), method="Nelder-Mead",
        options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-8},
    )  # fmt: skip
    r, alpha, a, b = (float(v) for v in np.exp(res.x))
    return BGNBD(r, alpha, a, b)


def bgnbd_scores(params: BGNBD, h: Histories, horizon_days: float) -> npt.NDArray[np.float64]:
    return np.array(
        [
            params.p_no_visit(int(x), float(tx), float(t), horizon_days)
            for x, tx, t in zip(h.x, h.t_x, h.T, strict=True)
        ]
    )


def by_bucket(
    scores: dict[str, npt.NDArray[Any]], y: npt.NDArray[Any], visits: npt.NDArray[np.int64]
) -> dict[str, dict[str, dict[str, float | None]]]:
    """ROC AUC and PR-AUC per detector, per history bucket (visits) and overall."""
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    buckets = np.array([history_bucket(int(n)) for n in visits])
    for label in [b[0] for b in HISTORY_BUCKETS] + ["overall"]:
        sel = np.ones(len(y), bool) if label == "overall" else buckets == label
        if not sel.any():
            continue
        out[label] = {
            who: {
                k: (None if v != v else v)  # NaN (a bucket without both classes): null
                for k, v in ranking_metrics(s[sel], y[sel]).items()
                if k in ("pr_auc", "roc_auc", "n", "positives")
            }
            for who, s in scores.items()
        }
    return out
