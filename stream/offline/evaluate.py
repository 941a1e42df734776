"""``fraudstream evaluate``: detection metrics per kind, as JSON.

- precision: share of alerts that are right (fraud: the triggering event is labelled fraud;
  brushing: the seller is labelled a brushing seller; churn: the user is a labelled churner
  and the alert is about their final inactivity);
- recall: share of cases with at least one right alert (fraud: users owning a labelled
  decision event; brushing: labelled sellers; churn: labelled users);
- PR-AUC and recall at precision 0.9 from the score rows (fraud: per decision event;
  brushing: per purchase and, separately, per seller by its highest score; churn: per user
  by the last evaluation, positive for a labelled churner whose last activity is not after
  it);
- churn per history length: ROC AUC and PR-AUC of the last evaluation per user, by the
  visits seen before it (1, 2-4, 5-19, 20+; a visit starts after 30 minutes of silence, so
  in a purchase log it is a purchase) and overall; with ``--events``, beside ranking
  by recency and by BG/NBD fitted on the same histories (no labels used);
- alerts per 1,000 users per day, over the users and days the score rows cover;
- detection delay (median and p90): seconds (and in words: "4.8 days"), and decision
  events, from a case's first labelled event to its first right alert.

``users`` counts the users with score rows; with ``--events`` the report also counts the
file's users and says why some have none (no event before ``--until``, say).
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from stream.core.cliutil import CommandError, add_option
from stream.core.ranking import average_precision, history_bucket, recall_at_precision, roc_auc
from stream.core.timeutil import DAY_S, parse_ts


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise CommandError(f"{path}:{n}: invalid JSON: {exc}") from None


class Labels:
    def __init__(self, rows: Iterator[dict[str, Any]]) -> None:
        self.fraud_events: set[str] = set()
        self.fake_orders: set[str] = set()
        self.brushing_sellers: set[str] = set()
        self.churn_users: dict[str, int] = {}
        for row in rows:
            kind = row.get("kind")
            if kind == "fraud":
                self.fraud_events.add(row["event_id"])
            elif kind == "brushing" and "seller_id" in row:
                self.brushing_sellers.add(row["seller_id"])
            elif kind == "brushing":
                self.fake_orders.add(row["event_id"])
            elif kind == "churn":
                self.churn_users[row["user_id"]] = parse_ts(row["ts"])


def _ranking(scores: list[float], labels: list[bool]) -> dict[str, Any]:
    return {
        "n": len(scores),
        "positives": sum(labels),
        "pr_auc": _r(average_precision(scores, labels)),
        "roc_auc": _r(roc_auc(scores, labels)),
        "recall_at_precision_0_9": _r(recall_at_precision(scores, labels, 0.9)),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def human_duration(seconds: float | None) -> str | None:
    """A delay as people say it: "45 s", "12.5 min", "3.2 h", "4.8 days"."""
    if seconds is None:
        return None
    for unit, size in (("days", DAY_S), ("h", 3600.0), ("min", 60.0)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _delays(pairs: list[tuple[float, int]]) -> dict[str, Any]:
    if not pairs:
        return {
            "median_seconds": None, "p90_seconds": None, "median": None, "p90": None,
            "median_events": None,
        }  # fmt: skip
    secs = sorted(p[0] for p in pairs)
    median, p90 = statistics.median(secs), secs[min(len(secs) - 1, int(0.9 * len(secs)))]
    return {
        "median_seconds": round(median, 1),
        "p90_seconds": round(p90, 1),
        "median": human_duration(median),
        "p90": human_duration(p90),
        "median_events": statistics.median(p[1] for p in pairs),
    }


def evaluate(
    labels: Labels,
    alerts: list[dict[str, Any]],
    scores: list[dict[str, Any]],
    events: Path | None = None,
    horizon_days: float = 30.0,
) -> dict[str, Any]:
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in scores:
        row["_ts"] = parse_ts(row["ts"])
        by_kind[row["kind"]].append(row)
    users = {r["user_id"] for r in scores if r.get("user_id")}
    times = [r["_ts"] for r in scores]
    days = (max(times) - min(times)) / 1000 / DAY_S if times else 0.0
    volume = len(users) * max(days, 1.0) / 1000.0
    kinds = {"fraud": _fraud, "brushing": _brushing, "churn": _churn}
    out: dict[str, Any] = {"users": len(users), "days": round(days, 2)}
    histories = None
    if events is not None:
        from stream.offline.churn_baselines import read_histories, user_count_note

        histories = read_histories(events)
        out.update(user_count_note(histories, users))
    for kind, fn in kinds.items():
        mine = [a for a in alerts if a.get("kind") == kind]
        result = fn(labels, mine, by_kind[kind])
        result["alerts"] = len(mine)
        result["alerts_per_1000_users_per_day"] = round(len(mine) / volume, 3) if volume else None
        out[kind] = result
    out["churn"]["by_history"] = _churn_by_history(
        labels, by_kind["churn"], histories, horizon_days
    )
    return out


def _churn_by_history(
    labels: Labels,
    rows: list[dict[str, Any]],
    histories: Any,
    horizon_days: float,
) -> dict[str, Any]:
    """The last churn evaluation per user, by history bucket, beside the baselines."""
    from stream.offline.churn_baselines import buckets_table

    last: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: r["_ts"]):
        last[r["subject"]["id"]] = r
    users = sorted(last)
    at = {u: last[u]["_ts"] for u in users}
    scores = {"detector": [float(last[u]["score"]) for u in users]}
    if histories is not None:
        scores.update(histories.baselines(at, horizon_days))
        visits = [histories.summary(u, at[u])[0] + 1 for u in users]
    else:
        visits = [int(last[u].get("history_visits", 0)) for u in users]
    truth = [gone(labels, u, at[u]) for u in users]
    table = buckets_table([history_bucket(n) for n in visits], scores, truth, _ranking)
    if histories is not None and histories.params is not None:
        table["btyd_params"] = histories.params
    return table


def _precision_recall(right: int, total: int, found: int, cases: int) -> dict[str, float | None]:
    return {
        "precision": round(right / total, 4) if total else None,
        "recall": round(found / cases, 4) if cases else None,
        "cases": cases,
    }


def _fraud(
    labels: Labels, alerts: list[dict[str, Any]], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    rows.sort(key=lambda r: r["_ts"])
    first: dict[str, tuple[int, int]] = {}  # user -> (ts, index among the user's rows)
    seen: dict[str, int] = defaultdict(int)
    position: dict[str, int] = {}
    for r in rows:
        user = r["user_id"]
        position[r["event_id"]] = seen[user]
        seen[user] += 1
        if r["event_id"] in labels.fraud_events and user not in first:
            first[user] = (r["_ts"], position[r["event_id"]])
    right = [a for a in alerts if a["event_id"] in labels.fraud_events]
    detected: dict[str, dict[str, Any]] = {}
    for a in sorted(right, key=lambda a: parse_ts(a["event_ts"])):
        detected.setdefault(a["user_id"], a)
    delays = [
        (
            (parse_ts(a["event_ts"]) - first[u][0]) / 1000,
            position.get(a["event_id"], 0) - first[u][1],
        )
        for u, a in detected.items()
        if u in first
    ]
    result: dict[str, Any] = _precision_recall(
        len(right), len(alerts), len(set(detected) & set(first)), len(first)
    )
    result["per_decision"] = _ranking(
        [r["score"] for r in rows], [r["event_id"] in labels.fraud_events for r in rows]
    )
    result["delay"] = _delays(delays)
    return result


def _brushing(
    labels: Labels, alerts: list[dict[str, Any]], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    orders = [r for r in rows if r["subject"]["type"] == "user"]
    best: dict[str, float] = {}
    first_fake: dict[str, int] = {}
    for r in sorted(rows, key=lambda r: r["_ts"]):
        if r["subject"]["type"] == "seller":
            sid = r["subject"]["id"]
            best[sid] = max(best.get(sid, 0.0), r["score"])
        elif r["event_id"] in labels.fake_orders and r.get("seller_id"):
            first_fake.setdefault(r["seller_id"], r["_ts"])
    right = [a for a in alerts if a["subject"]["id"] in labels.brushing_sellers]
    detected: dict[str, int] = {}
    for a in right:
        sid, ts = a["subject"]["id"], parse_ts(a["event_ts"])
        detected[sid] = min(ts, detected.get(sid, ts))
    delays = [((ts - first_fake[s]) / 1000, 0) for s, ts in detected.items() if s in first_fake]
    result: dict[str, Any] = _precision_recall(
        len(right), len(alerts), len(detected), len(labels.brushing_sellers)
    )
    result["per_order"] = _ranking(
        [r["score"] for r in orders], [r["event_id"] in labels.fake_orders for r in orders]
    )
    sellers = sorted(best)
    result["per_seller"] = _ranking(
        [best[s] for s in sellers], [s in labels.brushing_sellers for s in sellers]
    )
    result["delay"] = {k: v for k, v in _delays(delays).items() if k != "median_events"}
    return result


def _churn(
    labels: Labels, alerts: list[dict[str, Any]], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    churners = labels.churn_users
    right = [a for a in alerts if a["subject"]["id"] in churners
             and parse_ts(a["event_ts"]) >= churners[a["subject"]["id"]]]  # fmt: skip
    found = {a["subject"]["id"] for a in right}
    last, flagged = churn_evaluations(rows, alerts, churners)
    delays = [((ts - churners[u]) / 1000, 0) for u, ts in flagged.items()]
    result: dict[str, Any] = _precision_recall(len(right), len(alerts), len(found), len(churners))
    users = sorted(last)
    truth = [gone(labels, u, last[u]["_ts"]) for u in users]
    result["per_user"] = _ranking([last[u]["score"] for u in users], truth)
    result["delay"] = {k: v for k, v in _delays(delays).items() if k != "median_events"}
    return result


def churn_evaluations(
    rows: list[dict[str, Any]], alerts: list[dict[str, Any]], churners: dict[str, int]
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Each user's last churn evaluation, and for each churner the time of the first
    evaluation after their last activity that scored them at the alerts' threshold."""
    last: dict[str, dict[str, Any]] = {}
    flagged: dict[str, int] = {}
    threshold = min((a["threshold"] for a in alerts), default=None)
    for r in sorted(rows, key=lambda r: r["_ts"]):
        uid = r["subject"]["id"]
        last[uid] = r
        if (
            threshold is not None
            and r["score"] >= threshold
            and uid in churners
            and r["_ts"] >= churners[uid]
            and uid not in flagged
        ):
            flagged[uid] = r["_ts"]
    return last, flagged


def gone(labels: Labels, user: str, at_ms: int) -> bool:
    """A labelled churner whose last activity is not after ``at_ms``: from then on, never
    back. (A churner active after a backtest's ``--until`` came back after it.)"""
    last = labels.churn_users.get(user)
    return last is not None and last <= at_ms


def _run(args: argparse.Namespace) -> int:
    labels = Labels(read_jsonl(Path(args.labels)))
    alerts = list(read_jsonl(Path(args.alerts)))
    scores = list(read_jsonl(Path(args.scores))) if args.scores else []
    events = Path(args.events) if args.events else None
    if events is not None and not events.is_file():
        raise CommandError(f"{events}: no such file")
    report = evaluate(labels, alerts, scores, events, args.horizon_days)
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "evaluate", help="detection metrics of alerts and scores against labels, as JSON",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_option(p, "--labels", required=True, help="labels file (JSON Lines)")
    add_option(p, "--alerts", required=True, help="alerts file (JSON Lines)")
    add_option(p, "--scores", help="scores file from backtest --scores-out")
    add_option(
        p, "--events",
        help="the events file the backtest read: churn baselines (recency, BG/NBD) and "
        "user counts",
    )  # fmt: skip
    add_option(
        p, "--horizon-days", type=float, default=30.0,
        help="churn horizon of the BG/NBD baseline (the bundle's; default 30)",
    )  # fmt: skip
    p.set_defaults(func=_run)
