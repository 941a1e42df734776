"""Readable alert lines (``alerts tail --pretty``, ``up``) and the churn summary."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from stream.cli import build_parser
from stream.local.pretty import COLOURS, RESET, ChurnTally, pretty_line
from stream.local.tail import render_alert


def alert(kind: str, subject: str, score: float, **fields: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "subject": {"type": "seller" if kind == "brushing" else "user", "id": subject},
        "score": score,
        "event_ts": "2026-12-03T12:12:42.097Z",
        "reasons": [{"code": "x", "detail": "first reason"}],
        **fields,
    }


def test_one_line_with_time_kind_score_and_summary() -> None:
    line = pretty_line(alert("fraud", "u1", 0.953, summary="Card testing: user u1 - ..."), False)
    assert line == "2026-12-03 12:12:42  FRAUD    0.95  Card testing: user u1 - ..."
    assert "\x1b" not in line and "\n" not in line


def test_colour_by_kind_on_a_terminal() -> None:
    fraud = pretty_line(alert("fraud", "u1", 0.9, summary="s"), True)
    brushing = pretty_line(alert("brushing", "s1", 0.9, summary="s"), True)
    assert COLOURS["fraud"] + "FRAUD" in fraud and RESET in fraud
    assert COLOURS["brushing"] + "BRUSHING" in brushing


def test_alerts_without_a_summary_show_subject_and_first_reason() -> None:
    line = pretty_line(alert("churn", "u7", 0.91), False)
    assert line.endswith("CHURN    0.91  user u7: first reason")


def test_churn_tally_sums_up_and_names_the_likeliest() -> None:
    tally = ChurnTally()
    assert not tally.due(0.0)  # nothing to say
    for i, score in enumerate((0.91, 0.99, 0.95, 0.92)):
        tally.add(alert("churn", f"u{i}", score))
    assert tally.due(0.0) and not tally.due(3600.0)
    line = tally.line(False)
    assert "4 customers at risk of churning" in line
    assert "likeliest: u1 (0.99), u2 (0.95), u3 (0.92)" in line
    assert not tally.due(0.0)  # forgotten once said


def test_tail_prints_json_unless_pretty_and_never_drops_what_it_cannot_read() -> None:
    value = orjson.dumps(alert("fraud", "u1", 0.9, summary="Card testing: user u1"))
    assert render_alert(value, pretty=False, colour=False) == value.decode()
    assert render_alert(value, pretty=True, colour=False).endswith("0.90  Card testing: user u1")
    assert render_alert(b"{not json", pretty=True, colour=False) == "{not json"


def test_pretty_flag_defaults_to_the_terminal_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert build_parser().parse_args(["alerts", "tail"]).pretty is None  # decided by isatty
    assert build_parser().parse_args(["alerts", "tail", "--pretty"]).pretty is True
    assert build_parser().parse_args(["alerts", "tail", "--no-pretty"]).pretty is False
    monkeypatch.setenv("FRAUDSTREAM_PRETTY", "false")
    assert build_parser().parse_args(["alerts", "tail"]).pretty is False
    assert build_parser().parse_args(["alerts", "tail", "--pretty"]).pretty is True
