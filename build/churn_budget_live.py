"""Churn alerts of a live `fraudstream up` against the daily budget: reads the `events` and
`alerts.churn` topics of the broker `up` ran on, and prints alerts per 1,000 users per
simulated day (users: those seen so far; a day: event time, the churn clock's).

    fraudstream broker start --data-dir D --port P
    fraudstream up --data-dir D --port P --rate 1500 --duration 300
    python build/churn_budget_live.py --broker 127.0.0.1:P [--budget 10]

Each alert is placed on the tick that raised it (daily, at midnight of event time): its
last event's time plus the idle time its `churn.inactive` reason states. The users a tick
shares its budget among are those seen before it.
"""

from __future__ import annotations

import argparse
import bisect
import re
from collections import defaultdict
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from stream.core.timeutil import DAY_MS, parse_ts


def read_topic(broker: str, topic: str) -> list[tuple[int, dict[str, Any]]]:
    """Every message of ``topic``: (broker timestamp in ms, value)."""
    consumer = Consumer({"bootstrap.servers": broker, "group.id": f"budget-{topic}",
                         "enable.auto.commit": False})  # fmt: skip
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    parts = [TopicPartition(topic, p, 0) for p in meta.partitions]
    ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in parts}
    consumer.assign(parts)
    out: list[tuple[int, dict[str, Any]]] = []
    left = {p: e for p, e in ends.items() if e > 0}
    while left:
        for msg in consumer.consume(5000, timeout=2.0):
            value, part, offset = msg.value(), msg.partition(), msg.offset()
            if msg.error() or value is None or part is None or offset is None:
                continue
            out.append((msg.timestamp()[1], orjson.loads(value)))
            if offset + 1 >= ends[part]:
                left.pop(part, None)
    consumer.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--broker", required=True)
    ap.add_argument("--budget", type=float, default=10.0)
    args = ap.parse_args()
    events = sorted(read_topic(args.broker, "events"), key=lambda m: m[0])
    alerts = [a for _, a in read_topic(args.broker, "alerts.churn")]
    ts = [parse_ts(str(e["ts"])) for _, e in events]
    start_day = min(ts) // DAY_MS
    first_seen: dict[str, int] = {}
    for t, (_, e) in zip(ts, events, strict=True):
        first_seen[str(e["user_id"])] = min(t, first_seen.get(str(e["user_id"]), t))
    seen = sorted(first_seen.values())
    per_day: dict[int, int] = defaultdict(int)
    for a in alerts:
        per_day[tick_of(a) // DAY_MS - start_day] += 1
    days = (max(ts) - min(ts)) / DAY_MS
    print(
        f"{len(events)} events, {len(first_seen)} users, {days:.1f} simulated days, "
        f"{len(alerts)} churn alerts (budget {args.budget:g} per 1,000 users per day)"
    )
    print("tick (day)  users seen  alerts  per 1,000 users")
    ticks = range(1, int(days) + 1)
    allowed = 0.0
    for d in ticks:
        users = bisect.bisect_left(seen, (start_day + d) * DAY_MS)
        allowed += args.budget * users / 1000.0
        rate = per_day.get(d, 0) / users * 1000 if users else 0.0
        print(f"{d:>10}  {users:>10}  {per_day.get(d, 0):>6}  {rate:>15.2f}")
    print(
        f"over {len(ticks)} ticks: {sum(per_day.values())} alerts, the budget allowed "
        f"{allowed:.0f} ({sum(per_day.values()) / allowed * args.budget:.2f} per 1,000 users "
        "per day)"
    )


def tick_of(alert: dict[str, Any]) -> int:
    """The churn tick that raised ``alert``: its last event plus the idle time it states."""
    reasons = alert.get("reasons") or []
    detail = next(str(r["detail"]) for r in reasons if r["code"] == "churn.inactive")
    match = re.match(r"no activity for ([0-9.]+) days", detail)
    if match is None:
        raise ValueError(f"reasons: no idle time in {detail!r}")
    at = parse_ts(str(alert["event_ts"])) + float(match.group(1)) * DAY_MS
    return round(at / DAY_MS) * DAY_MS


if __name__ == "__main__":
    main()
