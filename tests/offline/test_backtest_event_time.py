"""A backtest of history refuses an event dated far ahead of now, and detection goes on."""

from __future__ import annotations

from pathlib import Path

import orjson

from stream.offline.backtest import run_backtest
from tests.events import T0, card_testing, ev

YEAR_MS = 365 * 24 * 3600 * 1000


def test_a_far_future_event_in_a_file_moves_no_clock(tmp_path: Path) -> None:
    future = ev("m", "page_view", T0 + 30 * YEAR_MS)
    burst = card_testing("m", T0 + 60_000)
    events = [ev("m", "login", T0, status="ok"), future, *burst]
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    stats = run_backtest(path, tmp_path / "a.jsonl", tmp_path / "s.jsonl")
    assert stats.rejected == 1
    assert stats.alerts["fraud"] == 1
    # The closing churn evaluation happens at the last accepted event, not decades ahead.
    assert stats.last_ts is not None and stats.last_ts.startswith("2026-")
    churn = [r for r in map(orjson.loads, (tmp_path / "s.jsonl").read_bytes().splitlines())
             if r["kind"] == "churn"]  # fmt: skip
    assert all(r["ts"].startswith("2026-") for r in churn)
