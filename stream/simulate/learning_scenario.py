"""The learning scenario: a fraud pattern the model has not seen, analysts' verdicts on some
of its cases, a retrain that promotes a challenger, and the figures before and after.

    python -m stream.simulate.learning_scenario --out DIR [--users 2000] [--days 14]

1. Simulated traffic; from ``--pattern-day`` on, gift-card cash-out (``new_pattern``).
2. The champion: built on the days before the pattern.
3. Analysts confirm a share of the pattern's cases (``--confirmed-share``), and judge the
   fraud alerts the champion raised (``--reviewed-share``: confirmed or false positive, by
   alert id); a verdicts file, as the worker keeps it. The pattern's labels are otherwise
   unknown to the retrain, which trains on the days before the holdout and judges alert
   precision on the alerts with a verdict.
4. ``fraudstream retrain`` with the champion, the history and the verdicts, judged on the
   last ``--holdout-days``.
5. Both bundles on the holdout days: recall of the new pattern (cases with a fraud alert on
   one of their events), precision of the other fraud alerts, and the drift gauges (PSI
   of the latest decisions against each bundle's reference).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from model.sequence_model import SequenceModel
from stream.core.ranking import average_precision
from stream.core.timeutil import DAY_MS, format_ts, now_ms, parse_ts
from stream.offline.backtest import run_backtest
from stream.offline.retrain import RetrainJob, retrain_once
from stream.simulate.config import SimConfig
from stream.simulate.new_pattern import PREFIX, PatternConfig, add_new_pattern
from stream.simulate.writer import generate_files


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def measure(
    events: Path,
    bundle: Path,
    since_ms: int,
    labels: list[dict[str, Any]],
    window: int,
    alerts_out: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """New-pattern recall, old-pattern fraud recall, alert precision and PR-AUC, and drift
    on the days from ``since_ms``, for one bundle (its fraud alerts over the whole run
    appended to ``alerts_out``)."""
    model = SequenceModel(bundle, "onnx", drift_window=window)
    fraud = {x["event_id"] for x in labels if x["kind"] == "fraud" and "event_id" in x}
    with tempfile.TemporaryDirectory() as tmp:
        run_backtest(events, Path(tmp) / "a.jsonl", Path(tmp) / "s.jsonl", model=model)
        alerts = [a for a in _lines(Path(tmp) / "a.jsonl") if a["kind"] == "fraud"]
        scores = [s for s in _lines(Path(tmp) / "s.jsonl") if s["kind"] == "fraud"]
    if alerts_out is not None:
        alerts_out.extend(alerts)
    late = [a for a in alerts if parse_ts(a["event_ts"]) >= since_ms]
    # The old patterns' ranking on the same days, the new pattern's events left out.
    ranked = [(s["score"], s["event_id"] in fraud) for s in scores if parse_ts(s["ts"]) >= since_ms
              and not s["event_id"].startswith(PREFIX)]  # fmt: skip
    old_ap = average_precision([v for v, _ in ranked], [y for _, y in ranked])
    rows = [e for e in _lines(events) if parse_ts(e["ts"]) >= since_ms]
    cases = {e["event_id"].split("-")[1] for e in rows if e["event_id"].startswith(PREFIX)}
    caught = {a["event_id"].split("-")[1] for a in late if a["event_id"].startswith(PREFIX)}
    old = [a for a in late if not a["event_id"].startswith(PREFIX)]
    # Old patterns' recall: their fraud users on these days with an alert on a fraud event.
    old_users = {e["user_id"] for e in rows
                 if e["event_id"] in fraud and not e["event_id"].startswith(PREFIX)}  # fmt: skip
    old_caught = {a.get("user_id") for a in old if a["event_id"] in fraud} & old_users
    drift = model.drift
    return {
        "new_pattern_recall": round(len(caught) / len(cases), 3) if cases else None,
        "new_pattern_cases": len(cases),
        "new_pattern_top_score": _case_tops(scores, since_ms),
        "fraud_threshold": model.threshold("fraud"),
        "old_pattern_recall": (round(len(old_caught) / len(old_users), 3) if old_users else None),
        "old_pattern_users": len(old_users),
        "old_pattern_precision": (
            round(sum(a["event_id"] in fraud for a in old) / len(old), 3) if old else None
        ),
        "old_pattern_alerts": len(old),
        "old_pattern_pr_auc": None if old_ap is None else round(old_ap, 3),
        "feature_psi": {k: round(v, 3) for k, v in drift.feature_psi().items()} if drift else {},
        "score_psi": {k: round(v, 3) for k, v in drift.score_psi().items()} if drift else {},
    }


def _case_tops(scores: list[dict[str, Any]], since_ms: int) -> dict[str, float] | None:
    """Where the new pattern's cases score, against the alert threshold: each case's
    highest fraud score on the days from ``since_ms``, their least, median and most."""
    top: dict[str, float] = {}
    for row in scores:
        if row["event_id"].startswith(PREFIX) and parse_ts(row["ts"]) >= since_ms:
            case = row["event_id"].split("-")[1]
            top[case] = max(top.get(case, 0.0), float(row["score"]))
    tops = sorted(top.values())
    if not tops:
        return None
    return {"min": round(tops[0], 3), "median": round(tops[len(tops) // 2], 3),
            "max": round(tops[-1], 3)}  # fmt: skip


def run(
    out: Path,
    users: int,
    days: int,
    pattern_day: int,
    seed: int,
    recipe: str,
    holdout_days: int = 2,
    fraud_rate: float = SimConfig.fraud_rate,
    confirmed_share: float = 0.5,
    reviewed_share: float = 1.0,
) -> dict[str, Any]:
    from model.build import run_build
    from model.config import PRESETS

    out.mkdir(parents=True, exist_ok=True)
    events, labels_path = out / "events.jsonl", out / "labels.jsonl"
    start = datetime(2026, 9, 1, tzinfo=UTC)
    sim = SimConfig(users=users, days=days, seed=seed, start=start, fraud_rate=fraud_rate)
    generate_files(events, labels_path, sim)
    add_new_pattern(
        events, labels_path, PatternConfig(pattern_day, max(10, users // 15), seed=seed)
    )
    rows, labels = _lines(events), _lines(labels_path)
    t0 = int(start.timestamp() * 1000)
    pattern_from, holdout_from = t0 + pattern_day * DAY_MS, t0 + (days - holdout_days) * DAY_MS
    # What the retrain may know: the labels of the old patterns, verdicts on a share of the
    # new pattern's cases, and the analysts' verdicts on the champion's alerts (below).
    known = [x for x in labels if not str(x.get("event_id", "")).startswith(PREFIX)]
    _write(out / "known_labels.jsonl", known)
    before = out / "before_pattern.jsonl"
    _write(before, [r for r in rows if parse_ts(r["ts"]) < pattern_from])
    champion = out / "bundle"
    shutil.rmtree(champion, ignore_errors=True)
    run_build(before, out / "known_labels.jsonl", champion, PRESETS[recipe], progress=False,
              log=lambda m: print(m, file=sys.stderr))  # fmt: skip
    window = 2000
    raised: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "champion_before": measure(events, champion, holdout_from, labels, window, raised)
    }
    verdicts = _verdicts(rows, confirmed_share) + _reviews(raised, labels, reviewed_share)
    _write(out / "feedback.jsonl", verdicts)
    job = RetrainJob(events, [out / "known_labels.jsonl"], [out / "feedback.jsonl"], champion,
                     holdout_days)  # fmt: skip
    report["retrain"], _ = retrain_once(job, log=lambda m: print(m, file=sys.stderr))
    report["after"] = measure(events, champion, holdout_from, labels, window)
    report["setup"] = {"users": users, "days": days, "pattern_from": format_ts(pattern_from),
                       "holdout_from": format_ts(holdout_from), "verdicts": len(verdicts),
                       "events": len(rows), "recipe": recipe, "fraud_rate": fraud_rate,
                       "confirmed_share": confirmed_share,
                       "reviewed_share": reviewed_share}  # fmt: skip
    (out / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return report


def _verdicts(rows: list[dict[str, Any]], share: float) -> list[dict[str, Any]]:
    """Analysts confirm the payments and purchases of ``share`` of the new-pattern cases,
    evenly spread (0.5: every other case)."""
    out = []
    for r in rows:
        eid = r["event_id"]
        if not eid.startswith(PREFIX) or r["type"] not in ("payment", "purchase"):
            continue
        case = int(eid.split("-")[1])
        if int((case + 1) * share) != int(case * share):
            at = format_ts(now_ms())
            out.append({"kind": "fraud", "verdict": "confirmed", "analyst": "scenario",
                        "at": at, "event_id": eid, "user_id": r["user_id"]})  # fmt: skip
    return out


def _reviews(
    alerts: list[dict[str, Any]], labels: list[dict[str, Any]], share: float
) -> list[dict[str, Any]]:
    """Analysts judge ``share`` of the champion's fraud alerts (evenly spread): confirmed
    where the event is fraud, a false positive where it is not."""
    fraud = {x["event_id"] for x in labels if x["kind"] == "fraud" and "event_id" in x}
    out = []
    for n, a in enumerate(sorted(alerts, key=lambda a: a["alert_id"])):
        if int((n + 1) * share) == int(n * share):
            continue
        verdict = "confirmed" if a["event_id"] in fraud else "false_positive"
        out.append({"kind": "fraud", "verdict": verdict, "analyst": "scenario",
                    "at": format_ts(now_ms()), "alert_id": a["alert_id"],
                    "event_id": a["event_id"], "user_id": a.get("user_id")})  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--pattern-day", type=int, default=7)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--recipe", default="tiny", choices=["tiny", "default"])
    p.add_argument("--holdout-days", type=int, default=2)
    p.add_argument("--fraud-rate", type=float, default=SimConfig.fraud_rate)
    p.add_argument("--confirmed-share", type=float, default=0.5)
    p.add_argument("--reviewed-share", type=float, default=1.0)
    args = p.parse_args(argv)
    report = run(args.out, args.users, args.days, args.pattern_day, args.seed, args.recipe,
                 args.holdout_days, args.fraud_rate, args.confirmed_share,
                 args.reviewed_share)  # fmt: skip
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
