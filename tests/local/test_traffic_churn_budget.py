"""`fraudstream up`'s live traffic through the pipeline as the worker runs it (eight input
partitions, each with its churn clock): churn alerts come at the configured daily budget
per 1,000 users, and not for users idle a few hours."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import orjson

from stream.core.state import UserState
from stream.core.timeutil import DAY_MS, parse_ts
from stream.detect.churn import ChurnConfig
from stream.detect.pipeline import MemoryStates, Record, UserPipeline
from stream.detect.processor import DetectorConfig
from stream.local.traffic import simulated_traffic

PARTITIONS = 8


@dataclass
class Run:
    alerts: int = 0
    users: int = 0
    days: float = 0.0
    min_idle_days: float = float("inf")


def run(budget: float | None, days: int = 9) -> Run:
    pipeline = UserPipeline(DetectorConfig(), ChurnConfig(budget_per_1000=budget))
    states: MemoryStates[UserState] = MemoryStates(UserState)
    out, first, batch = Run(), None, []
    for n, event in enumerate(simulated_traffic(seed=11)):
        key = event["user_id"].encode()
        batch.append(Record(key, orjson.dumps(event), zlib.crc32(key) % PARTITIONS, n))
        ts = parse_ts(event["ts"])
        first = ts if first is None else first
        done = ts - first > days * DAY_MS
        if len(batch) == 2000 or done:
            fx = pipeline.run(batch, states, None)
            for record, det in fx.alerts:
                if det.kind == "churn":
                    out.alerts += 1
                    tick_ts = parse_ts(orjson.loads(record.value)["ts"])
                    out.min_idle_days = min(out.min_idle_days, (tick_ts - det.event_ts) / DAY_MS)
            batch = []
        if done:
            out.users, out.days = len(states), (ts - first) / DAY_MS
            return out
    raise AssertionError("the traffic ended")


def test_churn_alerts_keep_to_the_daily_budget() -> None:
    budget = 10.0
    limited = run(budget)
    assert limited.days > 8 and limited.users > 1500
    # Shared out per partition, whole alerts at a time (fractions carry to the next tick).
    allowed = budget * limited.users / 1000 * limited.days + PARTITIONS
    # Nobody is over the threshold in the first days (measured: 78 of 171 allowed).
    assert 0.25 * allowed <= limited.alerts <= allowed
    assert limited.min_idle_days >= 1.0  # nobody is a churner after a few idle hours
    unlimited = run(None)
    assert unlimited.alerts > 2 * limited.alerts  # the budget is what holds them back
