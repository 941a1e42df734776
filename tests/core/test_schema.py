from __future__ import annotations

import random

import orjson
import pytest

from stream.core.schema import Rejected, parse_event
from stream.core.timeutil import format_ts, parse_ts

GOOD = {
    "event_id": "e1",
    "ts": "2026-11-29T10:15:03.123Z",
    "user_id": "u1",
    "type": "payment",
    "amount": 12.5,
    "currency": "EUR",
    "ip": "2001:db8::1",
    "country": "DE",
    "status": "failed",
    "attrs": {"coupon": "X"},
    "unknown_field": [1, 2],
}


def test_accepts_contract_event_and_normalises_ts() -> None:
    event = parse_event(orjson.dumps(GOOD))
    assert event.ts == 1795947303123
    assert event.amount == 12.5 and event.ip == "2001:db8::1"
    assert parse_event(orjson.dumps({**GOOD, "ts": 1795947303123})).ts == event.ts
    offset = {**GOOD, "ts": "2026-11-29T11:15:03.123+01:00"}
    assert parse_event(orjson.dumps(offset)).ts == event.ts


def with_(**changes: object) -> bytes:
    return orjson.dumps({**GOOD, **changes})


def without(field: str) -> bytes:
    return orjson.dumps({k: v for k, v in GOOD.items() if k != field})


@pytest.mark.parametrize(
    ("raw", "reason", "needle"),
    [
        (b"{not json", "invalid_json", "invalid JSON"),
        (b"\xff\xfe\x00", "not_utf8", "UTF-8"),
        (b"[1, 2]", "not_object", "JSON object"),
        (b"x" * (64 * 1024 + 1), "oversize", "exceeds 65536"),
        (without("event_id"), "missing_field", "'event_id'"),
        (without("ts"), "missing_field", "'ts'"),
        (without("user_id"), "missing_field", "'user_id'"),
        (with_(type="teleport"), "unknown_type", "'type'"),
        (with_(ts="2026-11-29T10:15:03"), "invalid_field", "'ts'"),
        (with_(ts=True), "invalid_field", "'ts'"),
        (with_(user_id=""), "invalid_field", "'user_id'"),
        (with_(event_id="e" * 129), "invalid_field", "'event_id'"),
        (with_(amount=-1), "invalid_field", "'amount'"),
        (with_(price="3.10"), "invalid_field", "'price'"),
        (with_(quantity=0), "invalid_field", "'quantity'"),
        (with_(ip="999.1.1.1"), "invalid_field", "'ip'"),
        (with_(ip="999.1.1.1"), "invalid_field", "'ip'"),  # again, from the cache
        (with_(ts="2026-02-30T10:15:03.123Z"), "invalid_field", "'ts'"),
        (with_(ts="2026-11-29T25:15:03.123Z"), "invalid_field", "'ts'"),
        (with_(currency="eur"), "invalid_field", "'currency'"),
        (with_(country="DEU"), "invalid_field", "'country'"),
        (with_(status="maybe"), "invalid_field", "'status'"),
        (with_(rating=6), "invalid_field", "'rating'"),
        (with_(attrs={"blob": "z" * 5000}), "invalid_field", "'attrs'"),
        (with_(attrs=[1]), "invalid_field", "'attrs'"),
    ],
)
def test_rejections_name_the_field(raw: bytes, reason: str, needle: str) -> None:
    with pytest.raises(Rejected) as info:
        parse_event(raw)
    assert info.value.reason == reason
    assert needle in info.value.message


def test_tombstone_is_rejected() -> None:
    with pytest.raises(Rejected, match="no value"):
        parse_event(None)


def test_canonical_timestamps_parse_as_the_general_path() -> None:
    """The fast path for ``...T10:15:03.123Z`` gives what the general RFC 3339 path gives
    for the same instant written with an offset."""
    rng = random.Random(5)
    for _ in range(2000):
        ms = rng.randrange(0, 253_402_300_799_999)
        text = format_ts(ms)
        assert parse_ts(text) == ms
        assert parse_ts(text.replace("Z", "+00:00")) == ms
    assert parse_ts("1970-01-01T00:00:00.000Z") == 0
    assert parse_ts("2024-02-29T23:59:59.999Z") == parse_ts("2024-03-01T00:59:59.999+01:00")
    for bad in ("2023-02-29T00:00:00.000Z", "2026-11-29T10:60:03.123Z", "2026-13-01T00:00:00.000Z"):
        with pytest.raises(ValueError):
            parse_ts(bad)


def raw_with(field: str, json_text: bytes) -> bytes:
    """GOOD with ``field`` set to JSON text that orjson cannot write (integers over 64 bits)."""
    rest = orjson.dumps({k: v for k, v in GOOD.items() if k != field})
    return rest[:-1] + b',"' + field.encode() + b'":' + json_text + b"}"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        # Valid JSON the state (or the attrs size check) could not serialise: before, a
        # quantity over 64 bits was accepted and failed the user state's write, and such an
        # integer in attrs escaped parse_event as a TypeError naming no field.
        (raw_with("quantity", b"18446744073709551616"), "'quantity'"),
        (raw_with("quantity", b"9223372036854775808"), "'quantity'"),
        (raw_with("attrs", b'{"n":18446744073709551616}'), "'attrs'"),
        (raw_with("attrs", b'{"n":-9223372036854775809}'), "'attrs'"),
        # Well-formed times outside what epoch milliseconds cover: before, accepted as
        # negative or over-range ms, which format_ts cannot write into an alert.
        (with_(ts="1969-12-31T23:59:59.999Z"), "'ts'"),
        (with_(ts="0001-01-01T00:00:00+01:00"), "'ts'"),
        (with_(ts="9999-12-31T23:59:59-01:00"), "'ts'"),
    ],
)
def test_values_no_stored_row_or_alert_can_hold_are_rejected_naming_the_field(
    raw: bytes, needle: str
) -> None:
    with pytest.raises(Rejected) as info:
        parse_event(raw)
    assert info.value.reason == "invalid_field"
    assert info.value.message.startswith(f"field {needle}: "), info.value.message


def test_timestamps_keep_to_the_epoch_ms_range_in_every_form() -> None:
    assert parse_ts("9999-12-31T23:59:59.999Z") == 253_402_300_799_999
    assert parse_ts("1970-01-01T01:00:00+01:00") == 0
    for bad in ("1969-12-31T23:59:59.999Z", "1970-01-01T00:59:59.999+01:00", -1):
        with pytest.raises(ValueError, match="out"):
            parse_ts(bad)
