"""Churn baselines for ``fraudstream evaluate``: each user's history from the events file,
ranked by recency and by BG/NBD fitted on those histories (``model.btyd``; no labels are
used), and the table per history bucket."""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stream.core.ranking import HISTORY_BUCKETS
from stream.core.schema import Rejected, parse_event
from stream.core.state import VISIT_GAP_MS
from stream.core.timeutil import DAY_MS


@dataclass
class Histories:
    """Event times per user, sorted."""

    times: dict[str, list[int]]
    params: dict[str, float] | None = field(default=None)

    def summary(self, user: str, at_ms: int) -> tuple[int, float, float, float]:
        """(repeat visits, last event, now, idle), days after the first event, at ``at_ms``."""
        times = self.times.get(user, [])[: bisect.bisect_right(self.times.get(user, []), at_ms)]
        if not times:
            return 0, 0.0, 0.0, 0.0
        visits = 1 + sum(1 for a, b in itertools.pairwise(times) if b - a > VISIT_GAP_MS)
        first, last = times[0], times[-1]
        now = max(at_ms, last)
        return visits - 1, (last - first) / DAY_MS, (now - first) / DAY_MS, (now - last) / DAY_MS

    def baselines(self, at: dict[str, int], horizon_days: float) -> dict[str, list[float]]:
        """Recency (days idle) and BG/NBD's probability of no visit within the horizon, for
        each user of ``at`` (sorted) as of their time there."""
        import numpy as np

        from model.btyd import Histories as Fit
        from model.btyd import bgnbd_scores, fit_bgnbd

        users = sorted(at)
        rows = np.array([self.summary(u, at[u]) for u in users], np.float64).reshape(-1, 4)
        fit = Fit(
            rows[:, 0].astype(np.int64), rows[:, 1], rows[:, 2], np.zeros(len(users), np.int64),
            rows[:, 3],
        )  # fmt: skip
        params = fit_bgnbd(fit, horizon_days)
        self.params = params.to_json()
        return {
            "recency": [float(v) for v in rows[:, 3]],
            "btyd": [float(v) for v in bgnbd_scores(params, fit, horizon_days)],
        }


def read_histories(path: Path) -> Histories:
    """Every valid event's time, per user (lines the stream would refuse are skipped)."""
    times: dict[str, list[int]] = defaultdict(list)
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                event = parse_event(line.rstrip(b"\r\n"))
            except (Rejected, orjson.JSONDecodeError):
                continue
            times[event.user_id].append(event.ts)
    for values in times.values():
        values.sort()
    return Histories(dict(times))


def user_count_note(histories: Histories, scored: set[str]) -> dict[str, Any]:
    """The events file's user count beside the scored one, and why they differ."""
    out: dict[str, Any] = {"users_in_events": len(histories.times)}
    missing = set(histories.times) - scored
    if missing:
        first = min(min(histories.times[u]) for u in missing)
        out["users_note"] = (
            f"{len(missing)} users of the events file have no score row: none of their "
            f"events lies in the evaluated span (the first of them at epoch ms {first}; "
            "a backtest with --until stops before it), or no scores file was given"
        )
    return out


def buckets_table(
    buckets: list[str],
    scores: dict[str, list[float]],
    truth: list[bool],
    ranking: Callable[[list[float], list[bool]], dict[str, Any]],
) -> dict[str, Any]:
    """``ranking`` of each scorer per history bucket and overall."""
    out: dict[str, Any] = {}
    for label in [b[0] for b in HISTORY_BUCKETS] + ["overall"]:
        idx = [i for i, b in enumerate(buckets) if label in ("overall", b)]
        if idx:
            out[label] = {
                who: ranking([s[i] for i in idx], [truth[i] for i in idx])
                for who, s in scores.items()
            }
    return out
