"""``fraudstream report``: a backtest's results as one self-contained HTML page.

From a run's alerts and scores (``backtest --alerts-out --scores-out``), optionally the
rules' run over the same events, and the labels: per kind, a table of alert precision,
cases found and PR-AUC, then precision-recall curves of the model against the rules,
alert volume over event time, score distributions of positives and negatives, detection
delays and the alerts' top reasons. Charts are inline SVG (``stream.offline.svg``); the
page loads nothing from anywhere, so it can be mailed or archived as it is."""

from __future__ import annotations

import argparse
import statistics
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from stream.core.cliutil import CommandError, add_option
from stream.core.timeutil import DAY_MS, HOUR_MS
from stream.offline.evaluate import Labels, read_jsonl
from stream.offline.report_data import KINDS, KindResult, Run, human_duration, kind_result
from stream.offline.svg import Series, bar_chart, histogram, line_chart

SCORE_BINS = [i / 20 for i in range(21)]
# Delay buckets (upper bound in seconds, label): readable at every time scale.
DELAY_BUCKETS = (
    (60, "under 1 min"),
    (600, "1-10 min"),
    (3600, "10 min-1 h"),
    (6 * 3600, "1-6 h"),
    (86400, "6-24 h"),
    (3 * 86400, "1-3 days"),
    (float("inf"), "3 days or more"),
)
STYLE = """
body { font-family: sans-serif; margin: 24px; color: #212529; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #dee2e6; }
table { border-collapse: collapse; margin: 8px 0 12px; }
td, th { border: 1px solid #dee2e6; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.note { color: #495057; font-size: 13px; max-width: 960px; }
"""


def render(runs: list[Run], labels: Labels, title: str) -> str:
    """The whole page; ``runs[0]`` is the run under study, the rest are baselines."""
    sections = [_kind_section(kind, [kind_result(kind, r, labels) for r in runs]) for kind in KINDS]
    inputs = ", ".join(f"{escape(r.name)} ({len(r.alerts):,} alerts)" for r in runs)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class='note'>Runs: {inputs}. Generated "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Precision counts alerts on labelled "
        "positives; found counts labelled users or sellers with at least one such alert; "
        "PR-AUC ranks every scoring decision. Delays run from a case's first labelled "
        "event to its first right alert, in event time.</p>" + "".join(sections) + "</body></html>"
    )


def _kind_section(kind: str, results: list[KindResult]) -> str:
    main = results[0]
    charts = [
        _pr_chart(kind, results),
        _volume_chart(kind, results),
        _score_chart(main),
        _delay_chart(main),
        bar_chart(main.reasons.most_common(12), f"{kind}: top reasons ({main.run})", "alerts"),
    ]
    patterns = ", ".join(f"{escape(p)} {n:,}" for p, n in main.patterns.most_common()) or "none"
    return (
        f"<h2>{kind}</h2>{_table(results)}"
        f"<p class='note'>Patterns of {escape(main.run)}'s alerts: {patterns}. "
        f"Ranked unit: {main.unit}.</p>"
        f"<div class='charts'>{''.join(charts)}</div>"
    )


def _table(results: list[KindResult]) -> str:
    head = "<tr><th>run</th><th>alerts</th><th>precision</th><th>found</th><th>PR-AUC</th>"
    head += "<th>median delay</th><th>p90 delay</th></tr>"
    rows = []
    for r in results:
        precision = f"{r.right / r.alerts:.2f}" if r.alerts else "-"
        auc = f"{r.pr_auc:.3f}" if r.pr_auc is not None else "-"
        delays = sorted(r.delays_s)
        median = human_duration(statistics.median(delays)) if delays else "-"
        p90 = (
            human_duration(delays[min(len(delays) - 1, int(0.9 * len(delays)))]) if delays else "-"
        )
        rows.append(
            f"<tr><td>{escape(r.run)}</td><td>{r.alerts:,}</td><td>{precision}</td>"
            f"<td>{r.found} of {r.cases}</td><td>{auc}</td><td>{median}</td><td>{p90}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _pr_chart(kind: str, results: list[KindResult]) -> str:
    series = []
    for r in results:
        auc = f" (AUC {r.pr_auc:.2f})" if r.pr_auc is not None else " (no positives)"
        series.append(Series(r.run + auc, [(0.0, 1.0), *r.curve()] if r.labels else []))
    return line_chart(
        series, f"{kind}: precision-recall", "recall", "precision", x=(0.0, 1.0), y=(0.0, 1.02),
        legend_lower_left=True,
    )  # fmt: skip


def _volume_chart(kind: str, results: list[KindResult]) -> str:
    """Alerts per day (per hour for runs shorter than two days) of event time."""
    times = [t for r in results for t in r.alert_times]
    if not times:
        return line_chart([], f"{kind}: alerts over event time", "event time", "alerts")
    start, end = min(times), max(times)
    step = DAY_MS if end - start >= 2 * DAY_MS else HOUR_MS
    start -= start % step
    n = (end - start) // step + 1
    series = []
    for r in results:
        counts = [0] * n
        for t in r.alert_times:
            counts[(t - start) // step] += 1
        points = [(float(i), float(c)) for i, c in enumerate(counts)] + [(float(n), counts[-1])]
        series.append(Series(r.run, points, step=True))
    ticks = [
        (float(i), datetime.fromtimestamp((start + i * step) / 1000, UTC).strftime("%m-%d %H:%M"
         if step == HOUR_MS else "%m-%d"))
        for i in range(0, n + 1, max(1, n // 5))
    ]  # fmt: skip
    unit = "day" if step == DAY_MS else "hour"
    return line_chart(
        series, f"{kind}: alerts per {unit}", "event time (UTC)", "alerts", x=(0.0, float(n)),
        xticks=ticks,
    )  # fmt: skip


def _score_chart(r: KindResult) -> str:
    """Each class's share of its scores per bin: positives are rare, so counts would
    hide them."""
    series = []
    for name, want in (("positives", True), ("negatives", False)):
        values = [s for s, y in zip(r.scores, r.labels, strict=True) if y is want]
        counts = histogram(values, SCORE_BINS)
        total = max(1, len(values))
        points = [(SCORE_BINS[i], c / total) for i, c in enumerate(counts)]
        points.append((1.0, points[-1][1]))
        series.append(Series(f"{name} ({len(values):,})", points, step=True))
    return line_chart(
        series, f"{r.kind}: score distribution ({r.run})", "score", "share of class", x=(0.0, 1.0)
    )


def _delay_chart(r: KindResult) -> str:
    counts = [0] * len(DELAY_BUCKETS)
    for d in r.delays_s:
        counts[next(i for i, (bound, _) in enumerate(DELAY_BUCKETS) if d < bound)] += 1
    items = [(label, float(c)) for (_, label), c in zip(DELAY_BUCKETS, counts, strict=True)]
    return bar_chart(items, f"{r.kind}: detection delay ({r.run})", "cases found")


def _run(args: argparse.Namespace) -> int:
    runs = [Run.load(Path(args.alerts), Path(args.scores), args.name)]
    if (args.rules_alerts is None) != (args.rules_scores is None):
        raise CommandError("--rules-alerts and --rules-scores go together")
    if args.rules_alerts is not None:
        runs.append(Run.load(Path(args.rules_alerts), Path(args.rules_scores), args.rules_name))
    labels = Labels(read_jsonl(Path(args.labels)))
    html = render(runs, labels, args.title)
    Path(args.out).write_text(html, encoding="utf-8")
    print(f"report written to {args.out} ({len(html):,} bytes)")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "report", help="a backtest's alerts, scores and labels as one self-contained HTML page"
    )
    add_option(p, "--labels", required=True, help="labels JSON Lines")
    add_option(p, "--alerts", required=True, help="the run's alerts (backtest --alerts-out)")
    add_option(p, "--scores", required=True, help="the run's scores (backtest --scores-out)")
    add_option(p, "--name", help="the run's name in legends (default: its model version)")
    add_option(p, "--rules-alerts", help="the rules' alerts on the same events, to compare")
    add_option(p, "--rules-scores", help="the rules' scores on the same events")
    add_option(p, "--rules-name", default="rules", help="the rules run's name in legends")
    add_option(p, "--title", default="fraudstream backtest report", help="page title")
    add_option(p, "--out", required=True, help="HTML file to write")
    p.set_defaults(func=_run)
