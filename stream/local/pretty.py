"""Alerts as one readable line each, for a person at a terminal (``alerts tail --pretty``
and ``fraudstream up``): time, kind (coloured on a terminal), score and the summary."""

from __future__ import annotations

import time
from typing import Any

# ANSI colours by kind: fraud stands out most, churn least.
COLOURS = {"fraud": "\x1b[1;31m", "brushing": "\x1b[1;35m", "churn": "\x1b[36m"}
RESET, DIM = "\x1b[0m", "\x1b[2m"


def pretty_line(alert: dict[str, Any], colour: bool) -> str:
    """One line: event time, kind, score, then the alert's summary (or, for alerts written
    before summaries existed, its subject and first reason)."""
    kind = str(alert.get("kind", "?"))
    summary = alert.get("summary")
    if not summary:
        subject = alert.get("subject") or {}
        reasons = alert.get("reasons") or [{}]
        summary = f"{subject.get('type')} {subject.get('id')}: {reasons[0].get('detail', '')}"
    when = str(alert.get("event_ts", ""))[:19].replace("T", " ")
    score = alert.get("score")
    shown = f"{score:.2f}" if isinstance(score, int | float) else "  ? "
    label = f"{kind.upper():<8}"
    if colour:
        label = f"{COLOURS.get(kind, '')}{label}{RESET}"
        when = f"{DIM}{when}{RESET}"
    return f"{when}  {label} {shown}  {summary}"


class ChurnTally:
    """Churn alerts collected between summary lines: how many, and the likeliest few."""

    SHOWN = 3

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.since = time.monotonic()

    def add(self, alert: dict[str, Any]) -> None:
        self.alerts.append(alert)

    def due(self, every_s: float) -> bool:
        return bool(self.alerts) and time.monotonic() - self.since >= every_s

    def line(self, colour: bool) -> str:
        """One line for the alerts so far (then forgets them)."""
        alerts, seconds = self.alerts, time.monotonic() - self.since
        self.alerts, self.since = [], time.monotonic()
        top = sorted(alerts, key=lambda a: -float(a.get("score", 0.0)))[: self.SHOWN]
        named = ", ".join(f"{a['subject']['id']} ({a.get('score', 0.0):.2f})" for a in top)
        last = max(str(a.get("event_ts", "")) for a in alerts)[:10]
        who = "customer" if len(alerts) == 1 else "customers"
        label = f"{'CHURN':<8}"
        if colour:
            label = f"{COLOURS['churn']}{label}{RESET}"
        return (
            f"{' ' * 19}  {label}       {len(alerts)} {who} at risk of churning in the "
            f"last {seconds:.0f} s (event time up to {last}); likeliest: {named}; "
            "`fraudstream alerts tail --kind churn` lists them"
        )
