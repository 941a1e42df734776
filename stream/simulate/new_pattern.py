"""A fraud pattern that starts part-way through a simulated run: gift-card cash-out.

From a given day on, some honest accounts are taken over without any of the signs the
rules and the initial model know (no new device or country, no account update, no failed
payments): the account logs in from its own device and address and, within minutes, buys
several high-value gift cards, each paid with a payment instrument it never used before.
A model trained on the days before has never seen it; analysts' verdicts on some cases
are what a retrain learns it from (``fraudstream retrain``, docs/learning.md).

``add_new_pattern`` rewrites a generated events file and labels file in place: the
pattern's events are merged in event-time order, and its purchases are labelled fraud.
Their event ids start with ``gc-``, so a scenario can measure the pattern apart.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stream.core.timeutil import DAY_MS, MINUTE_MS, parse_ts

PREFIX = "gc-"
HOUR = 60 * MINUTE_MS


@dataclass(frozen=True)
class PatternConfig:
    from_day: int  # first day (0 = the run's first) of the pattern
    cases: int = 40  # accounts cashed out
    purchases: tuple[int, int] = (3, 6)  # gift cards bought per case, at least and at most
    seed: int = 0


def add_new_pattern(events: Path, labels: Path, cfg: PatternConfig) -> dict[str, Any]:
    rows = [orjson.loads(line) for line in events.read_bytes().splitlines() if line.strip()]
    times = {id(r): parse_ts(r["ts"]) for r in rows}  # the file keeps its own ts format
    rows.sort(key=lambda r: times[id(r)])
    start = times[id(rows[0])] - times[id(rows[0])] % DAY_MS + cfg.from_day * DAY_MS
    end = times[id(rows[-1])]
    if start >= end:
        raise ValueError(f"from_day {cfg.from_day}: the run ends before that day")
    rng = random.Random(cfg.seed)
    victims = _honest_accounts(rows, times, start, rng, cfg.cases, labels)
    sellers = sorted({r["seller_id"] for r in rows if r.get("seller_id")})
    added: list[dict[str, Any]] = []
    fraud: list[str] = []
    for n, (user, usual) in enumerate(victims):
        at = rng.randrange(start, end - HOUR)
        case = _cash_out(n, user, usual, at, rng, sellers, cfg)
        added.extend(case)
        fraud.extend(e["event_id"] for e in case if e["type"] in ("payment", "purchase"))
        times.update((id(e), e["ts"]) for e in case)
    merged = sorted(rows + added, key=lambda r: times[id(r)])
    events.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in merged))
    with open(labels, "ab") as out:
        out.write(b"".join(orjson.dumps({"kind": "fraud", "event_id": e}) + b"\n" for e in fraud))
    return {"cases": len(victims), "events": len(added), "fraud_events": len(fraud)}


def _honest_accounts(
    rows: list[dict[str, Any]],
    times: dict[int, int],
    start: int,
    rng: random.Random,
    n: int,
    labels: Path,
) -> list[tuple[str, dict[str, Any]]]:
    """Accounts active before ``start`` with a device, address and country of their own,
    and no labelled fraud: their usual login fields."""
    bad = {orjson.loads(x).get("event_id") for x in labels.read_bytes().splitlines() if x.strip()}
    flagged = {r["user_id"] for r in rows if r["event_id"] in bad}
    usual: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        if times[id(r)] >= start:
            break
        counts[r["user_id"]] += 1
        if r["type"] == "login" and r.get("device_id") and r.get("ip") and r.get("country"):
            usual[r["user_id"]] = {k: r[k] for k in ("device_id", "ip", "country")}
    pool = sorted(u for u in usual if u not in flagged and counts[u] >= 5)
    return [(u, usual[u]) for u in rng.sample(pool, min(n, len(pool)))]


def _cash_out(
    n: int,
    user: str,
    usual: dict[str, Any],
    at: int,
    rng: random.Random,
    sellers: list[str],
    cfg: PatternConfig,
) -> list[dict[str, Any]]:
    base = {"user_id": user, **usual}
    seq = 0

    def ev(type_: str, ts: int, **fields: Any) -> dict[str, Any]:
        nonlocal seq
        seq += 1
        return {"event_id": f"{PREFIX}{n}-{seq}", "ts": ts, "type": type_, **base, **fields}

    out = [ev("login", at, status="ok")]
    t = at
    for i in range(rng.randint(*cfg.purchases)):
        t += rng.randint(40, 150) * 1000
        amount = round(rng.uniform(150.0, 500.0), 2)
        order = f"{PREFIX}{n}-o{i}"
        card = f"{PREFIX}card-{n}-{i}"
        fields = {"seller_id": rng.choice(sellers), "item_id": f"giftcard-{int(amount)}",
                  "category": "gift_cards", "order_id": order, "currency": "USD",
                  "instrument_id": card, "payment_method": "card"}  # fmt: skip
        out.append(ev("payment", t, amount=amount, status="ok", **fields))
        out.append(ev("purchase", t + 2000, amount=amount, price=amount, quantity=1, **fields))
        t += 2000
    return out
