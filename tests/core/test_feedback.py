"""Analyst verdicts: validation naming the field, stable ids, labels for retraining."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.core.feedback import apply_to_labels, parse_feedback, read_feedback
from stream.core.schema import Rejected


def verdict(**fields: Any) -> dict[str, Any]:
    base = {"kind": "fraud", "verdict": "confirmed", "analyst": "ana", "at": 1_795_000_000_000}
    return {**base, **fields}


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({k: v for k, v in verdict(event_id="e1").items() if k != "analyst"}, "'analyst'"),
        (verdict(event_id="e1", kind="spam"), "'kind'"),
        (verdict(event_id="e1", verdict="maybe"), "'verdict'"),
        (verdict(event_id="e1", at="last week"), "'at'"),
        (verdict(event_id=""), "'event_id'"),
        (verdict(), "names no subject"),
        (verdict(event_id="e1", note="x" * 2000), "'note'"),
    ],
)
def test_bad_verdicts_are_rejected_naming_the_field(record: dict[str, Any], field: str) -> None:
    with pytest.raises(Rejected, match=field):
        parse_feedback(orjson.dumps(record))


def test_not_json_or_not_an_object() -> None:
    with pytest.raises(Rejected, match="invalid JSON"):
        parse_feedback(b"{oops")
    with pytest.raises(Rejected, match="JSON object"):
        parse_feedback(b"[1]")


def test_ids_are_stable_and_the_given_one_wins() -> None:
    a = parse_feedback(orjson.dumps(verdict(event_id="e1", at="2026-11-18T10:00:00Z")))
    b = parse_feedback(orjson.dumps(verdict(event_id="e1", at=a.at)))
    assert a.id == b.id and a.id.startswith("fb-")
    assert parse_feedback(orjson.dumps(verdict(event_id="e2"))).id != a.id
    assert parse_feedback(orjson.dumps(verdict(event_id="e1", feedback_id="case-7"))).id == "case-7"


def test_verdicts_add_and_remove_labels_latest_first() -> None:
    labels = [{"kind": "fraud", "event_id": "old"}, {"kind": "fraud", "event_id": "fp"}]
    verdicts = [
        parse_feedback(orjson.dumps(v))
        for v in (
            verdict(event_id="new"),
            verdict(event_id="fp", verdict="false_positive"),
            verdict(kind="brushing", seller_id="s1"),
            verdict(kind="churn", user_id="u1"),  # no last-activity time: no label
            verdict(event_id="flip", at=1),
            verdict(event_id="flip", verdict="false_positive", at=2),
        )
    ]
    out = apply_to_labels(labels, verdicts)
    assert {(x["kind"], x.get("event_id") or x.get("seller_id")) for x in out} == {
        ("fraud", "old"),
        ("fraud", "new"),
        ("brushing", "s1"),
    }


def test_a_kept_file_reads_back_one_verdict_per_id(tmp_path: Path) -> None:
    line = orjson.dumps(verdict(event_id="e1", feedback_id="x")) + b"\n"
    path = tmp_path / "feedback.jsonl"
    path.write_bytes(line + line + b"\n" + orjson.dumps(verdict(user_id="u")) + b"\n")
    assert len(read_feedback(path)) == 2
    path.write_bytes(b'{"kind": "fraud"}\n')
    with pytest.raises(ValueError, match=r"feedback\.jsonl:1: field 'verdict'"):
        read_feedback(path)
