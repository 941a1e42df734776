from __future__ import annotations

import base64

import orjson
import pytest

from stream.core.alerts import Detection, Reason, alert_id, to_alert
from stream.core.dlq import dead_letter
from stream.core.schema import Rejected

DET = Detection(
    kind="fraud",
    subject_type="user",
    subject_id="u1",
    score=0.7,
    threshold=0.5,
    event_id="e9",
    event_ts=1795947303123,
    reasons=(Reason("r", "why"),),
    evidence_event_ids=("e7", "e9"),
    user_id="u1",
)


def test_alert_has_contract_fields_and_deterministic_id() -> None:
    first, again = to_alert(DET, "rules-v1"), to_alert(DET, "rules-v1")
    assert first["alert_id"] == again["alert_id"] == alert_id("fraud", "user", "u1", "e9")
    assert first["subject"] == {"type": "user", "id": "u1"}
    assert first["event_ts"] == "2026-11-29T10:15:03.123Z"
    assert first["emitted_at"].endswith("Z")
    assert first["reasons"] == [{"code": "r", "detail": "why"}]
    assert first["evidence_event_ids"] == ["e7", "e9"]
    assert first["model_version"] == "rules-v1"
    assert alert_id("fraud", "user", "u1", "e8") != first["alert_id"]
    assert alert_id("brushing", "user", "u1", "e9") != first["alert_id"]


def test_alert_without_reasons_is_refused() -> None:
    empty = Detection(**{**DET.__dict__, "reasons": ()})
    with pytest.raises(ValueError, match="reason"):
        to_alert(empty, "v")


def test_dead_letter_keeps_text_and_base64() -> None:
    rec = orjson.loads(
        dead_letter(Rejected("invalid_json", "value: bad"), "events", 3, 42, b"u1", b"{oops")
    )
    assert rec["error"] == "value: bad" and rec["source_topic"] == "events"
    assert (rec["partition"], rec["offset"], rec["key"], rec["raw"]) == (3, 42, "u1", "{oops")
    assert "raw_encoding" not in rec and rec["received_at"].endswith("Z")
    binary = orjson.loads(
        dead_letter(Rejected("not_utf8", "value: x"), "events", 0, 1, None, b"\xff\x00")
    )
    assert binary["raw_encoding"] == "base64" and binary["key"] is None
    assert base64.b64decode(binary["raw"]) == b"\xff\x00"
