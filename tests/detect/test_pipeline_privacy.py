"""The pipeline pseudonymises at its parse step: same alerts, no raw ids in state or alerts."""

from __future__ import annotations

from typing import Any

import orjson

from stream.core.alerts import to_alert
from stream.core.privacy import Pseudonymiser
from stream.core.state import UserState
from stream.detect.churn import ChurnConfig
from stream.detect.pipeline import MemoryStates, Record, UserPipeline
from stream.detect.processor import DetectorConfig
from tests.detect.test_rules import history, takeover
from tests.events import card_testing

KEY = b"k" * 32


def _pipeline_alerts(events: list[dict[str, Any]], p: Pseudonymiser | None) -> list[Any]:
    pipeline = UserPipeline(DetectorConfig(), ChurnConfig(), check_keys=False, pseudonyms=p)
    states: MemoryStates[UserState] = MemoryStates(UserState)
    records = [Record(None, orjson.dumps(e), 0, i) for i, e in enumerate(events)]
    fx = pipeline.run(records, states, None)
    assert not fx.dead_letters
    for state in states.by_partition[0].values():
        text = state.encode()
        for raw in (b"evil", b"203.0.113.9", b"new-card", b"card-c-0", b"10.0.0.1"):
            assert p is None or raw not in text
    return [to_alert(d, fx.model_version) for _, d in fx.alerts]


def test_the_pipeline_raises_the_same_alerts_and_quotes_only_pseudonyms() -> None:
    events = history("v1") + takeover("v1", 1500.0) + card_testing("c")
    plain = _pipeline_alerts(events, None)
    hidden = _pipeline_alerts(events, Pseudonymiser(KEY))
    assert [a["alert_id"] for a in hidden] == [a["alert_id"] for a in plain]
    assert len(plain) == 2
    text = orjson.dumps(hidden).decode()
    assert "evil" in orjson.dumps(plain).decode()  # the rule quotes the device it saw...
    assert "evil" not in text and "card-c-" not in text  # ...now only its pseudonym
    assert Pseudonymiser(KEY).pseudonym("device_id", "evil") in text
