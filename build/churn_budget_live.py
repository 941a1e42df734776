"""Churn alerts of a live `fraudstream up` against the daily budget: reads the `events` and
`alerts.churn` topics of the broker `up` ran on, and prints alerts per 1,000 users per
simulated day (users: those seen so far; a day: event time, the churn clock's).

    fraudstream broker start --data-dir D --port P
    fraudstream up --data-dir D --port P --rate 1500 --duration 300
    python build/churn_budget_live.py --broker 127.0.0.1:P [--budget 10]

Alerts are placed on the simulated day of the tick that raised them: the worker emits a
tick's alerts right after the event that crossed it, so an alert's wall-clock time maps to
the event time of the events produced at that moment.
"""

from __future__ import annotations

import argparse
import bisect
from collections import defaultdict

import orjson
from confluent_kafka import Consumer, TopicPartition

from stream.core.timeutil import DAY_MS, parse_ts


def read_topic(broker: str, topic: str) -> list[tuple[int, dict[str, object]]]:
    """Every message of ``topic``: (broker timestamp in ms, value)."""
    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"budget-{topic}",
                         "enable.auto.commit": False})  # fmt: skip
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
    ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in parts}
    consumer.assign(parts)
    out: list[tuple[int, dict[str, object]]] = []
    left = {p: e for p, e in ends.items() if e > 0}
    while left:
        for msg in consumer.consume(5000, timeout=2.0):
            if msg.error():
                continue
            out.append((msg.timestamp()[1], orjson.loads(msg.value())))
            if msg.offset() + 1 >= ends[msg.partition()]:
                left.pop(msg.partition(), None)
    consumer.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--broker", required=True)
    ap.add_argument("--budget", type=float, default=10.0)
    args = ap.parse_args()
    events = sorted(read_topic(args.broker, "events"), key=lambda m: m[0])
    alerts = read_topic(args.broker, "alerts.churn")
    wall = [w for w, _ in events]
    ts = [parse_ts(str(e["ts"])) for _, e in events]
    start_day = min(ts) // DAY_MS
    first_seen: dict[str, int] = {}
    for t, (_, e) in zip(ts, events, strict=True):
        first_seen.setdefault(str(e["user_id"]), t)
    seen_days = sorted(t // DAY_MS - start_day for t in first_seen.values())
    per_day: dict[int, int] = defaultdict(int)
    for w, _ in alerts:
        i = min(bisect.bisect_right(wall, w), len(ts)) - 1
        per_day[int(max(ts[: i + 1][-200:]) // DAY_MS - start_day)] += 1
    days = (max(ts) - min(ts)) / DAY_MS
    print(
        f"{len(events)} events, {len(first_seen)} users, {days:.1f} simulated days, "
        f"{len(alerts)} churn alerts (budget {args.budget:g} per 1,000 users per day)"
    )
    print("day  users  alerts  per 1,000 users")
    for d in range(int(days) + 1):
        users = bisect.bisect_right(seen_days, d)
        rate = per_day.get(d, 0) / users * 1000 if users else 0.0
        print(f"{d:>3}  {users:>5}  {per_day.get(d, 0):>6}  {rate:>6.2f}")
    mean_users = sum(bisect.bisect_right(seen_days, d) for d in range(int(days) + 1)) / (
        int(days) + 1
    )
    overall = len(alerts) / (mean_users / 1000.0) / max(days, 1e-9)
    print(f"overall: {overall:.2f} alerts per 1,000 users per simulated day")


if __name__ == "__main__":
    main()
