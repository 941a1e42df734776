from __future__ import annotations

import gc

import orjson

from stream.core.schema import Event
from stream.core.state import (
    EID,
    FLAGS,
    KNOWN_PER_KIND,
    NEW_COUNTRY,
    NEW_DEVICE,
    StateLimits,
    UserState,
    row_to_dict,
)
from tests.events import T0, ev

LIMITS = StateLimits(max_events=5, max_age_ms=3_600_000, allowed_lateness_ms=60_000)


def add(state: UserState, **kw: object) -> str:
    return state.add(Event.model_validate(ev(**kw)), LIMITS)  # type: ignore[arg-type]


def ids(state: UserState) -> list[str]:
    return [r[EID] for r in state.events]


def test_count_bound_keeps_newest() -> None:
    state = UserState()
    for i in range(8):
        assert add(state, ts=T0 + i, event_id=f"e{i}") == "added"
    assert ids(state) == ["e3", "e4", "e5", "e6", "e7"]
    assert state.total == 8


def test_age_bound_in_event_time() -> None:
    state = UserState()
    add(state, ts=T0, event_id="old")
    add(state, ts=T0 + 1000, event_id="mid")
    add(state, ts=T0 + 3_600_000 + 500, event_id="new")
    assert ids(state) == ["mid", "new"]


def test_late_events_within_lateness_are_placed_in_order() -> None:
    state = UserState()
    add(state, ts=T0 + 50_000, event_id="b")
    assert add(state, ts=T0 + 10_000, event_id="a") == "added"
    add(state, ts=T0 + 60_000, event_id="c")
    assert ids(state) == ["a", "b", "c"]
    assert [r["event_id"] for r in map(row_to_dict, state.upto(T0 + 55_000))] == ["a", "b"]


def test_too_late_event_is_refused() -> None:
    state = UserState()
    add(state, ts=T0 + 120_000, event_id="b")
    assert add(state, ts=T0, event_id="a") == "late"
    assert ids(state) == ["b"]


def test_redelivered_event_behind_the_lateness_is_a_duplicate_not_late() -> None:
    state = UserState()
    add(state, ts=T0, event_id="a")
    add(state, ts=T0 + 120_000, event_id="b")  # the state moved on past the lateness
    assert add(state, ts=T0, event_id="a") == "duplicate"
    assert add(state, ts=T0 + 1, event_id="new-but-late") == "late"
    assert ids(state) == ["a", "b"]


def test_repeated_event_id_is_ignored() -> None:
    state = UserState()
    assert add(state, ts=T0, event_id="a") == "added"
    before = state.encode()
    assert add(state, ts=T0 + 5, event_id="a") == "duplicate"
    assert state.encode() == before


def test_novelty_flags_only_after_history() -> None:
    state = UserState()
    add(state, ts=T0, event_id="first", device_id="d1", country="DE")
    add(state, ts=T0 + 1, event_id="same", device_id="d1", country="DE")
    add(state, ts=T0 + 2, event_id="new", device_id="d2", country="BR")
    flags = {r[EID]: r[FLAGS] for r in state.events}
    assert flags["first"] == 0 and flags["same"] == 0
    assert flags["new"] & NEW_DEVICE and flags["new"] & NEW_COUNTRY


def test_encoding_round_trips_and_is_compact() -> None:
    state = UserState()
    events = [
        ev(
            ts=T0 + i,
            event_id=f"evt-{i}",
            type_="payment",
            amount=9.99,
            instrument_id="tok-1",
            status="ok",
            currency="EUR",
            ip="10.0.0.1",
        )
        for i in range(5)
    ]
    for event in events:
        state.add(Event.model_validate(event), LIMITS)
    raw = state.encode()
    again = UserState.decode(raw)
    assert again.events == state.events and again.total == state.total
    assert b"instrument_id" not in raw  # positional rows, no repeated field names
    assert len(raw) < len(orjson.dumps(events))
    assert row_to_dict(again.events[0])["type"] == "payment"


def test_known_values_keep_the_latest_per_kind() -> None:
    state = UserState()
    for i in range(KNOWN_PER_KIND + 3):
        add(state, ts=T0 + i, event_id=f"e{i}", device_id=f"d{i}", country="DE")
    devices = state.known[0]
    assert len(devices) == KNOWN_PER_KIND and devices[-1] == f"d{KNOWN_PER_KIND + 2}"
    assert devices[0] == "d3" and state.known[2] == ("DE",)
    add(state, ts=T0 + 99, event_id="old", device_id="d0")  # forgotten: new again
    assert state.events[-1][FLAGS] & NEW_DEVICE


def test_a_decoded_state_leaves_no_tracked_rows_after_one_collection() -> None:
    """Stored events and known values are tuples of atoms, which the collector stops
    tracking: a cache of decoded states adds about three tracked objects per user to the
    older generations, not one per stored event (stream.runtime.gc_pauses)."""
    state = UserState()
    for i in range(5):
        add(state, ts=T0 + i, event_id=f"e{i}", device_id=f"d{i}", ip="10.0.0.1", amount=1.5)
    again = UserState.decode(state.encode())
    assert again.events == state.events and again.known == state.known
    gc.collect()
    assert not any(gc.is_tracked(row) for row in again.events)
    assert not any(gc.is_tracked(values) for values in again.known)
