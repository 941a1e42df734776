"""Pseudonyms of device ids, IPs and instruments: keyed, stable, and kept with the state."""

from __future__ import annotations

import hashlib
import hmac
import logging
import stat
from pathlib import Path

import orjson
import pytest

from stream.core.privacy import (
    GENERATED_KEY_FILE,
    Pseudonymiser,
    PseudonymKeyError,
    load_key,
)
from stream.core.schema import Rejected, parse_event
from tests.events import ev

KEY = b"k" * 32


def test_pseudonyms_replace_the_three_fields_and_keep_equality() -> None:
    p = Pseudonymiser(KEY)
    raw = ev("u", "payment", device_id="dev-1", ip="203.0.113.7", instrument_id="tok-9")
    event = parse_event(orjson.dumps(raw), p.pseudonym)
    for name in ("device_id", "ip", "instrument_id"):
        value = getattr(event, name)
        assert value.startswith("ps:") and len(value) == 27
        assert raw[name] not in value
    again = parse_event(orjson.dumps(raw), p.pseudonym)
    assert again == event  # the same value, the same pseudonym
    assert event.user_id == "u"  # analysts need user and seller ids as they are
    other = parse_event(orjson.dumps(raw), Pseudonymiser(b"x" * 32).pseudonym)
    assert other.device_id != event.device_id  # another key, other pseudonyms
    # Fields are separate namespaces: the same text as a device and as an instrument differ.
    assert p.pseudonym("device_id", "a") != p.pseudonym("instrument_id", "a")


@pytest.mark.parametrize("key", [b"k" * 16, b"k" * 64, b"k" * 65, bytes(range(200))])
def test_pseudonyms_are_hmac_sha256_truncated_to_96_bits(key: bytes) -> None:
    """Pseudonyms stored by any version stay valid: the construction is fixed."""
    p = Pseudonymiser(key)
    for field, value in [("device_id", "dev-1"), ("ip", "203.0.113.7"), ("instrument_id", "")]:
        mac = hmac.new(key, f"{field}\x00{value}".encode(), hashlib.sha256).hexdigest()
        assert p.pseudonym(field, value) == "ps:" + mac[:24]


def test_validation_sees_the_raw_value_and_names_the_field() -> None:
    bad = orjson.dumps(ev("u", "login", ip="1.2.3.999"))
    with pytest.raises(Rejected, match="field 'ip'"):
        parse_event(bad, Pseudonymiser(KEY).pseudonym)
    plain = parse_event(orjson.dumps(ev("u", "login", ip="::1")))
    assert plain.ip == "::1"  # without a pseudonymiser nothing changes


def test_short_or_unreadable_keys_are_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(PseudonymKeyError, match="FRAUDSTREAM_PSEUDONYM_KEY"):
        load_key("short", None, tmp_path)
    with pytest.raises(PseudonymKeyError, match="FRAUDSTREAM_PSEUDONYM_KEY_FILE"):
        load_key(None, tmp_path / "missing", tmp_path)
    (tmp_path / "k").write_bytes(b"0123456789abcdef0123\n")
    assert load_key(None, tmp_path / "k", None) == b"0123456789abcdef0123"


def test_without_a_key_one_is_generated_once_and_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    with caplog.at_level(logging.WARNING, logger="fraudstream"):
        first = load_key(None, None, state)
        second = load_key(None, None, state)
    assert first == second and len(first) >= 32
    assert len([r for r in caplog.records if "no pseudonym key" in r.message]) == 1
    mode = (state / GENERATED_KEY_FILE).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert load_key(None, None, None) != load_key(None, None, None)  # no state: a fresh key
