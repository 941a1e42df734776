"""Property-based fuzzing of the pipeline's input handling, without a broker.

docs/contract.md, sections 1 and 2: every input message is either accepted or becomes
exactly one dead letter whose error names the field, a bad message never stops the worker,
and nothing is dropped silently. "Accepted" here also means deliverable: the states it
changed, the seller records and the alerts it caused all serialise, as the worker will do
right after the pipeline returns.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import orjson
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from stream.core.alerts import to_alert
from stream.core.dlq import dead_letter
from stream.core.event_time import DEFAULT_MAX_SKEW_MS, EventTimeGuard
from stream.core.schema import EVENT_TYPES, MAX_ATTRS_BYTES, MAX_MESSAGE_BYTES, Event, Rejected
from stream.core.state import SellerState, UserState
from stream.core.timeutil import DAY_MS, MAX_EPOCH_MS, MINUTE_MS, parse_ts
from stream.detect.churn import ChurnConfig
from stream.detect.pipeline import Effects, MemoryStates, Record, UserPipeline
from stream.detect.processor import DetectorConfig
from stream.detect.seller_pipeline import SellerPipeline, encode_seller_record, encode_watermark
from tests.events import T0

# Whole-file budget: well under 30 s on a slow two-core machine.
_BASE = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz(examples: int) -> settings:
    return settings(_BASE, max_examples=examples)


WALL: Final = T0  # the guard's wall clock; generated event times sit around it
SKEW: Final = DEFAULT_MAX_SKEW_MS
TOPIC: Final = "events"
FIELDS: Final = frozenset(Event.model_fields)
REQUIRED: Final = frozenset(n for n, f in Event.model_fields.items() if f.is_required())
ID_FIELDS: Final = ("event_id", "user_id")
OPT_STR_FIELDS: Final = (
    "session_id",
    "item_id",
    "seller_id",
    "category",
    "order_id",
    "device_id",
    "payment_method",
    "instrument_id",
)
# Every rejection reason the user side may give; "processing_error" (an unexpected
# exception turned into a dead letter) is deliberately absent: bad input must be named.
USER_REASONS: Final = frozenset(
    {
        "empty",
        "oversize",
        "not_utf8",
        "invalid_json",
        "not_object",
        "missing_field",
        "unknown_type",
        "invalid_field",
        "bad_key",
        "future",
        "late",
    }
)
# What stream.core.schema, the key check and the guard write: "value: ..." (the message as
# a whole), "key: ..." (the Kafka key) or "field '<name>': ..." (one contract field).
NAMED = re.compile(r"(?:(?P<part>value|key)|field '(?P<field>[a-z_]+)'): ")
DLQ_KEYS: Final = {"error", "source_topic", "partition", "offset", "key", "raw", "received_at"}


def named(message: str) -> str:
    """The part of the message or the contract field an error names; fails if none."""
    m = NAMED.match(message)
    assert m is not None, f"error names no field: {message!r}"
    if m["field"] is not None:
        assert m["field"] in FIELDS, f"error names no contract field: {message!r}"
        return m["field"]
    return m["part"]


# ---------------------------------------------------------------------------- checks


def check_user_effects(
    fx: Effects, records: Sequence[Record], states: MemoryStates[UserState]
) -> None:
    """Each record accounted exactly once, dead letters well formed, effects deliverable."""
    assert fx.added + fx.duplicates + len(fx.dead_letters) == len(records)
    ids = {id(r) for r in records}
    rejected = [id(r) for r, _ in fx.dead_letters]
    assert len(set(rejected)) == len(rejected), "a record with two dead letters"
    assert set(rejected) <= ids, "a dead letter for a record that was not in the batch"
    for record, rejection in fx.dead_letters:
        assert rejection.reason in USER_REASONS, rejection.message
        named(rejection.message)
        check_dead_letter(record, rejection)
    deliverable(fx, states)


def deliverable(fx: Effects, states: MemoryStates[Any]) -> None:
    for table in states.by_partition.values():
        for state in table.values():
            state.encode()
    for _, row in fx.seller_records:
        encode_seller_record(row)
    for _, det in fx.alerts:
        orjson.dumps(to_alert(det, fx.model_version))


def check_dead_letter(record: Record, rejection: Rejected) -> None:
    """The record on events.dlq (contract section 2) for this rejection."""
    out = orjson.loads(
        dead_letter(rejection, TOPIC, record.partition, record.offset, record.key, record.value)
    )
    assert set(out) >= DLQ_KEYS, out
    assert out["error"] == rejection.message
    assert (out["source_topic"], out["partition"], out["offset"]) == (
        TOPIC,
        record.partition,
        record.offset,
    )
    parse_ts(out["received_at"])
    try:
        text = record.value.decode("utf-8")
    except UnicodeDecodeError:
        assert out["raw_encoding"] == "base64"
        assert base64.b64decode(out["raw"], validate=True) == record.value
    else:
        assert "raw_encoding" not in out and out["raw"] == text
    if record.key is None:
        assert out["key"] is None
    else:
        assert isinstance(out["key"], str)


def user_side(guard: bool = True) -> tuple[UserPipeline, MemoryStates[UserState]]:
    pipeline = UserPipeline(
        DetectorConfig(),
        ChurnConfig(),
        guard=EventTimeGuard(SKEW, lambda: WALL) if guard else None,
    )
    return pipeline, MemoryStates(UserState)


def run_user(records: Sequence[Record], guard: bool = True) -> Effects:
    pipeline, states = user_side(guard)
    fx = pipeline.run(records, states, None)
    check_user_effects(fx, records, states)
    return fx


# ------------------------------------------------------------------ JSON and events


def encode(value: Any, ascii_only: bool = False) -> bytes:
    """JSON text as a producer might write it: any integer size, NaN tokens allowed (the
    parser must refuse them as values, not crash), escaped or raw non-ASCII."""
    return json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":")).encode()


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["", "ok", "failed", "login", "EUR", "DE", "1.2.3.4", "2026-11-18T10:00:00Z"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Unknown fields and attrs: what orjson can write back (64-bit integers, finite floats).
plain_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
plain_values = st.recursive(
    plain_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def deep_junk(draw: st.DrawFn) -> Any:
    """Nested lists and objects, deeper than recursive() goes, within the parser's limit."""
    value: Any = draw(plain_scalars)
    for _ in range(draw(st.integers(1, 60))):
        value = [value] if draw(st.booleans()) else {draw(st.text(max_size=3)): value}
    return value


@st.composite
def rfc3339(draw: st.DrawFn, ms: int) -> tuple[str, int]:
    """``ms`` written as RFC 3339 with an offset, and the epoch ms that text stands for
    (a fraction shorter than milliseconds truncates)."""
    offset = draw(st.sampled_from([0, 0, 60, -300, 330, 845, -(23 * 60 + 59), 23 * 60 + 59]))
    digits = draw(st.sampled_from([0, 1, 2, 3, 3, 6, 9]))
    sep = draw(st.sampled_from("TTt "))
    local = datetime.fromtimestamp(ms // 1000, timezone(timedelta(minutes=offset)))
    frac = f"{ms % 1000:03d}000000"[:digits]
    text = local.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (f".{frac}" if digits else "")
    if offset == 0 and draw(st.booleans()):
        text += draw(st.sampled_from("Zz"))
    else:
        sign, minutes = ("+" if offset >= 0 else "-"), abs(offset)
        text += f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return text, ms // 1000 * 1000 + (int(frac.ljust(3, "0")[:3]) if digits else 0)


@st.composite
def timestamps(draw: st.DrawFn, span: int = 30 * DAY_MS) -> tuple[int | str, int]:
    """A contract-valid ts the guard admits (at most the skew ahead of the wall clock)."""
    ms = draw(st.integers(WALL - span, WALL + SKEW))
    if draw(st.booleans()):
        return ms, ms
    return draw(rfc3339(ms))


ids = st.text(min_size=1, max_size=128)
opt_strs = st.text(max_size=256)
money = st.floats(0, 1e12, allow_nan=False) | st.integers(0, 10**12)
currencies = st.from_regex(r"[A-Z]{3}", fullmatch=True)
countries = st.from_regex(r"[A-Z]{2}", fullmatch=True)
ips = st.ip_addresses().map(str)
small_attrs = st.dictionaries(st.text(max_size=10), plain_values, max_size=5).filter(
    lambda a: len(orjson.dumps(a)) <= MAX_ATTRS_BYTES
)
OPTIONAL: Final[dict[str, st.SearchStrategy[Any]]] = {
    **dict.fromkeys(OPT_STR_FIELDS, opt_strs),
    "price": money,
    "amount": money,
    "quantity": st.integers(1, 2**63 - 1),
    "currency": currencies,
    "ip": ips,
    "country": countries,
    "status": st.sampled_from(["ok", "failed"]),
    "rating": st.integers(1, 5),
    "attrs": small_attrs,
}
assert set(OPTIONAL) | REQUIRED == FIELDS  # a new contract field needs a strategy here


@dataclass
class Valid:
    event: dict[str, Any]
    ts_ms: int  # what the event's ts stands for


@st.composite
def valid_events(draw: st.DrawFn, user: str | None = None, span: int = 30 * DAY_MS) -> Valid:
    ts, ms = draw(timestamps(span))
    event: dict[str, Any] = {
        "event_id": draw(ids),
        "ts": ts,
        "user_id": user if user is not None else draw(ids),
        "type": draw(st.sampled_from(EVENT_TYPES)),
    }
    for name in draw(st.sets(st.sampled_from(sorted(OPTIONAL)), max_size=6)):
        event[name] = draw(OPTIONAL[name])
    return Valid(event, ms)


def user_record(event: dict[str, Any], raw: bytes, offset: int = 0, partition: int = 0) -> Record:
    user = event.get("user_id")
    key = user.encode() if isinstance(user, str) else None
    return Record(key, raw, partition, offset)


# ------------------------------------------------------ 1. arbitrary bytes and keys


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    """A valid event's bytes with a few bytes flipped, inserted or cut."""
    raw = bytearray(encode(draw(valid_events()).event))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(raw)))
        op = draw(st.sampled_from(["flip", "insert", "cut"]))
        if op == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif at < len(raw):
            if op == "flip":
                raw[at] = draw(st.integers(0, 255))
            else:
                del raw[at : at + draw(st.integers(1, 8))]
    return bytes(raw)


values = (
    st.binary(max_size=200)
    | corrupted()
    | valid_events().map(lambda v: encode(v.event))
    | st.sampled_from([b"", b"null", b"[]", b"{}", b'"x"', b"\xef\xbb\xbf{}", b"\xed\xa0\x80"])
    | st.integers(MAX_MESSAGE_BYTES - 8, MAX_MESSAGE_BYTES + 8).map(lambda n: b" " * n)
)
keys = st.none() | st.binary(max_size=20) | ids.map(str.encode)
# Valid events under their own key too, so that the batch also moves state and clocks.
keyed = valid_events().map(lambda v: (v.event["user_id"].encode(), encode(v.event)))


@fuzz(120)
@given(st.lists(st.tuples(keys, values) | keyed, min_size=1, max_size=6))
def test_arbitrary_bytes_and_keys_are_accepted_or_one_dead_letter_naming_the_field(
    messages: list[tuple[bytes | None, bytes]],
) -> None:
    run_user([Record(k, v, 0, i) for i, (k, v) in enumerate(messages)])


# ---------------------------------------------------------------- 2. arbitrary JSON


contract_keys = st.sampled_from(sorted(FIELDS))
objects = st.dictionaries(contract_keys | st.text(max_size=10), json_values, max_size=10)


@st.composite
def near_events(draw: st.DrawFn) -> dict[str, Any]:
    """An object with every required key but arbitrary values, and random other keys."""
    base = {name: draw(json_values) for name in sorted(REQUIRED)}
    return {**draw(objects), **base}


@fuzz(120)
@given(
    st.lists(
        st.tuples(json_values | objects | near_events(), st.booleans()), min_size=1, max_size=5
    )
)
def test_arbitrary_json_is_accepted_or_one_dead_letter_naming_the_field(
    messages: list[tuple[Any, bool]],
) -> None:
    records = []
    for i, (value, ascii_only) in enumerate(messages):
        raw = encode(value, ascii_only)
        records.append(user_record(value if isinstance(value, dict) else {}, raw, i))
    run_user(records)


# ------------------------------------------------- 3. valid events, one field mutated

REMOVE: Final = object()
ACCEPT, REJECT, EITHER = "accept", "reject", "either"
Mutation = tuple[object, str]  # the new value (or REMOVE) and what must happen


def definitely(verdict: str) -> Callable[[Any], Mutation]:
    return lambda value: (value, verdict)


def not_matching(pattern: str) -> st.SearchStrategy[str]:
    return st.text(max_size=6).filter(lambda s: re.fullmatch(pattern, s) is None)


def _not_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return True
    return False


BAD_TS: Final = [
    "2026-11-18T10:00:00",  # no offset
    "2026-11-18",
    "2026-11-18T10:00Z",
    "2026-02-30T10:00:00Z",
    "2026-11-18T24:00:00Z",
    "2026-11-18T10:60:00Z",
    "2026-11-18T10:00:60Z",
    "2026-11-18T10:00:00+24:00",
    "2026-11-18T10:00:00+0100",
    "2026-11-18T10:00:00.Z",
    "2026-11-18T10:00:00.1234567890Z",
    "2026-11-18X10:00:00Z",
    "٢٠٢٦-11-18T10:00:00Z",
    " 2026-11-18T10:00:00Z",
    "2026-11-18T10:00:00Z\n",
    "1795000000000",
    "",
    # well formed, outside what epoch milliseconds cover (1970 to 9999)
    "1969-12-31T23:59:59.999Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
]


NEAR_MISSES: Final = {
    "currency": ["eur", "EU", "EURO", "EUR\n", " EUR", "ÉUR", "123"],
    "country": ["de", "DEU", "D", "DE\n", " DE", "ÉU", "12"],
}


def mutations(name: str) -> st.SearchStrategy[Mutation]:
    """Ways to change one field; each says whether the result must be accepted, must be
    rejected, or may go either way (an arbitrary JSON value of another type)."""
    required = name in REQUIRED
    common = st.one_of(
        st.just((REMOVE, REJECT if required else ACCEPT)),
        st.just((None, REJECT if required else ACCEPT)),
        json_values.map(definitely(EITHER)),
        deep_junk().map(definitely(REJECT if name != "attrs" else EITHER)),
        st.booleans().map(definitely(REJECT)),
    )
    if name in ID_FIELDS:
        specific = st.one_of(
            ids.map(definitely(ACCEPT)),
            st.just(("", REJECT)),
            st.text(min_size=129, max_size=300).map(definitely(REJECT)),
            st.integers().map(definitely(REJECT)),
        )
    elif name in OPT_STR_FIELDS:
        specific = st.one_of(
            opt_strs.map(definitely(ACCEPT)),
            st.text(min_size=257, max_size=400).map(definitely(REJECT)),
            st.integers().map(definitely(REJECT)),
        )
    elif name == "ts":
        specific = st.one_of(
            timestamps().map(lambda t: (t[0], ACCEPT)),
            st.sampled_from(BAD_TS).map(definitely(REJECT)),
            st.text(max_size=30).map(definitely(REJECT)),
            (st.integers(max_value=-1) | st.integers(min_value=MAX_EPOCH_MS + 1)).map(
                definitely(REJECT)
            ),
            st.floats().map(definitely(REJECT)),
            # Within range but more than the skew ahead of the wall clock: the guard's.
            st.integers(WALL + SKEW + 1, MAX_EPOCH_MS).map(definitely(REJECT)),
        )
    elif name == "type":
        specific = st.one_of(
            st.sampled_from(EVENT_TYPES).map(definitely(ACCEPT)),
            st.text(max_size=20).filter(lambda s: s not in EVENT_TYPES).map(definitely(REJECT)),
            st.sampled_from(["Login", "PAYMENT", "page-view", " login"]).map(definitely(REJECT)),
        )
    elif name in ("price", "amount"):
        specific = st.one_of(
            money.map(definitely(ACCEPT)),
            st.floats(max_value=-1e-300).map(definitely(REJECT)),
            st.integers(max_value=-1).map(definitely(REJECT)),
            st.sampled_from([float("nan"), float("inf"), "1.0", [1.0]]).map(definitely(REJECT)),
        )
    elif name == "quantity":
        specific = st.one_of(
            OPTIONAL["quantity"].map(definitely(ACCEPT)),
            st.integers(max_value=0).map(definitely(REJECT)),
            # Beyond 64 bits: no stored row could hold it.
            st.integers(min_value=2**63).map(definitely(REJECT)),
            st.sampled_from([1.5, 2.0, "3", float("nan")]).map(definitely(REJECT)),
        )
    elif name in ("currency", "country"):
        size = 3 if name == "currency" else 2
        specific = st.one_of(
            OPTIONAL[name].map(definitely(ACCEPT)),
            not_matching(f"[A-Z]{{{size}}}").map(definitely(REJECT)),
            st.sampled_from(NEAR_MISSES[name]).map(definitely(REJECT)),
        )
    elif name == "ip":
        specific = st.one_of(
            ips.map(definitely(ACCEPT)),
            st.text(max_size=40).filter(_not_ip).map(definitely(REJECT)),
            st.sampled_from(["1.2.3.256", "1.2.3", "::g", " 1.2.3.4", "1.2.3.4\n", "::1/128"]).map(
                definitely(REJECT)
            ),
        )
    elif name == "status":
        specific = st.one_of(
            OPTIONAL["status"].map(definitely(ACCEPT)),
            st.text(max_size=10)
            .filter(lambda s: s not in ("ok", "failed"))
            .map(definitely(REJECT)),
            st.sampled_from(["OK", "Failed", "ok "]).map(definitely(REJECT)),
        )
    elif name == "rating":
        specific = st.one_of(
            OPTIONAL["rating"].map(definitely(ACCEPT)),
            (st.integers(max_value=0) | st.integers(min_value=6)).map(definitely(REJECT)),
            st.sampled_from([3.0, "5", 4.5]).map(definitely(REJECT)),
        )
    elif name == "attrs":
        specific = st.one_of(
            small_attrs.map(definitely(ACCEPT)),
            st.dictionaries(st.text(max_size=3), deep_junk(), max_size=2).map(definitely(ACCEPT)),
            # Over 4 KiB serialized, still well under the message limit.
            st.integers(MAX_ATTRS_BYTES, 3 * MAX_ATTRS_BYTES).map(
                lambda n: ({"x": "y" * n}, REJECT)
            ),
            st.sampled_from([[], "{}", 1, [{"a": 1}]]).map(definitely(REJECT)),
            # Integers no serializer of the project can write (beyond 64 bits).
            st.sampled_from([2**64, -(2**63) - 1, 10**30]).map(lambda n: ({"n": n}, REJECT)),
        )
    else:
        raise AssertionError(f"no mutations for field {name!r}")
    # A huge string takes the message over 64 KiB: rejected as a whole ("value").
    huge = st.integers(MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES + 4096).map(lambda n: ("h" * n, REJECT))
    return st.one_of(common, specific, huge)


@fuzz(400)
@given(st.data())
def test_one_mutated_field_is_accepted_or_one_dead_letter_naming_that_field(
    data: st.DataObject,
) -> None:
    valid = data.draw(valid_events(), "event")
    name = data.draw(st.sampled_from(sorted(FIELDS)), "field")
    value, verdict = data.draw(mutations(name), "mutation")
    event = dict(valid.event)
    if value is REMOVE:
        event.pop(name, None)
    else:
        event[name] = value
    raw = encode(event, data.draw(st.booleans(), "ascii"))
    # The key follows the user_id a producer sets; a broken user_id keeps the old key.
    user = event.get("user_id")
    key = (user if isinstance(user, str) and user else valid.event["user_id"]).encode()
    fx = run_user([Record(key, raw, 0, 0)])
    if fx.dead_letters:
        message = fx.dead_letters[0][1].message
        note(f"dead letter: {message}")
        assert verdict != ACCEPT, f"a valid change of {name!r} was refused: {message}"
        expected = "value" if len(raw) > MAX_MESSAGE_BYTES else name
        assert named(message) == expected, message
    else:
        assert verdict != REJECT, f"{name}={value!r} was accepted"
        assert fx.added == 1
        if name != "ts":
            assert fx.watermarks == {0: valid.ts_ms}  # the ts meant what it said


@fuzz(100)
@given(
    valid_events(),
    st.text(max_size=12).filter(lambda k: k not in FIELDS),
    json_values | deep_junk(),
)
def test_unknown_fields_are_ignored(valid: Valid, name: str, junk: Any) -> None:
    event = {**valid.event, name: junk}
    fx = run_user([user_record(event, encode(event))])
    assert fx.added == 1 and not fx.dead_letters, fx.dead_letters


# ---------------------------------------------------- 4. batches: accounted once each


@st.composite
def batches(draw: st.DrawFn) -> list[Record]:
    """Events of a few users over two partitions, with redeliveries and junk mixed in.
    Valid events span a day: none leaves the window (30 days) before its redelivery."""
    users = draw(st.lists(ids, min_size=1, max_size=3, unique=True))
    records: list[Record] = []
    sent: list[Record] = []
    for i in range(draw(st.integers(1, 14))):
        roll = draw(st.integers(0, 9))
        if roll < 5:
            user = draw(st.sampled_from(users))
            valid = draw(valid_events(user, span=DAY_MS))
            partition = users.index(user) % 2
            record = Record(user.encode(), encode(valid.event), partition, i)
            sent.append(record)
        elif roll < 7 and sent:  # a redelivery: same message, later offset
            again = draw(st.sampled_from(sent))
            record = Record(again.key, again.value, again.partition, i)
        else:
            record = Record(draw(keys), draw(values), draw(st.integers(0, 1)), i)
        records.append(record)
    return records


@fuzz(100)
@given(batches())
def test_every_record_of_a_batch_is_accounted_for_exactly_once(records: list[Record]) -> None:
    fx = run_user(records)
    # A redelivered copy of an accepted message is a duplicate: never a dead letter, never
    # added twice.
    rejected = {id(r) for r, _ in fx.dead_letters}
    seen: set[tuple[bytes | None, bytes, int]] = set()
    copies = 0
    for record in records:
        message = (record.key, record.value, record.partition)
        if message in seen:
            assert id(record) not in rejected, "a redelivery of an accepted event was refused"
            copies += 1
        elif id(record) not in rejected:
            seen.add(message)
    assert fx.duplicates >= copies


# ------------------------------------------------------------- 5. the seller side

SELLERS: Final = 2  # input partitions sending watermarks


@st.composite
def seller_rows(draw: st.DrawFn) -> list[Any]:
    """A seller record as the user side writes it (stream.detect.processor)."""
    row: list[Any] = [
        draw(st.integers(WALL - DAY_MS, WALL)),
        draw(ids),
        draw(ids),
        draw(st.sampled_from(["purchase", "review"])),
        draw(st.none() | st.floats(0, 1e6)),
        draw(st.none() | st.integers(1, 5)),
        draw(st.sampled_from([0, 1])),
        draw(st.integers(0, 10**10)),
        draw(st.integers(0, 10**6)),
        draw(st.none() | st.text(max_size=10)),
        draw(st.none() | ips),
        draw(st.none() | st.text(max_size=10)),
        draw(st.none() | st.text(max_size=10)),
    ]
    if draw(st.booleans()):
        row.append(draw(st.floats(0, 1)))
    return row


@st.composite
def mutated_rows(draw: st.DrawFn) -> bytes:
    row = draw(seller_rows())
    at = draw(st.integers(0, len(row)))
    if at == len(row) or draw(st.booleans()):
        row[min(at, len(row) - 1)] = draw(json_values | deep_junk())
    else:
        del row[at:]
    return encode(row)


watermarks = st.one_of(
    st.tuples(st.integers(0, SELLERS - 1), st.integers(WALL - DAY_MS, WALL + DAY_MS)).map(
        lambda m: encode_watermark(*m)
    ),
    st.dictionaries(
        st.sampled_from(["watermark", "partition"]) | st.text(max_size=5), json_values
    ).map(lambda d: b'{"watermark"' + encode(d)[1:] if d else b'{"watermark"}'),
    st.tuples(json_values, json_values).map(
        lambda m: encode({"watermark": m[0], "partition": m[1]})
    ),
)
seller_values = st.one_of(
    st.binary(max_size=100),
    json_values.map(encode),
    seller_rows().map(encode),
    mutated_rows(),
    watermarks,
    st.sampled_from([b"", b"[]", b'{"watermark"', b"[1,2,3]", b"\xff"]),
)
seller_keys = st.none() | st.binary(max_size=12) | ids.map(str.encode)


@fuzz(120)
@given(st.lists(st.tuples(seller_keys, seller_values, st.integers(0, SELLERS - 1)), max_size=10))
def test_seller_side_takes_any_bytes_each_record_handled_once(
    messages: list[tuple[bytes | None, bytes, int]],
) -> None:
    records = [Record(k, v, p, i) for i, (k, v, p) in enumerate(messages)]
    pipeline = SellerPipeline(DetectorConfig(), SELLERS, wait_ms=1000)
    states: MemoryStates[SellerState] = MemoryStates(SellerState)
    first = pipeline.run(records, states, None, now_ms=0)
    last = pipeline.run([], states, None, now_ms=0, flush=True)
    handled = [id(r) for fx in (first, last) for r in fx.handled]
    assert sorted(handled) == sorted(id(r) for r in records), "a record lost or handled twice"
    dead = [id(r) for fx in (first, last) for r, _ in fx.dead_letters]
    assert len(set(dead)) == len(dead)
    assert pipeline.waiting() == 0
    for fx in (first, last):
        for record, rejection in fx.dead_letters:
            assert rejection.reason != "processing_error", rejection.message
            assert named(rejection.message) in ("value", "key"), rejection.message
            check_dead_letter(record, rejection)
        deliverable(fx, states)


# ------------------------------------------ 6. redelivery and arrival order, same alerts

LATENESS: Final = DetectorConfig().limits.allowed_lateness_ms


@dataclass
class Arrival:
    event: dict[str, Any]
    at: float  # arrival key: ts plus a jitter below the allowed lateness


@st.composite
def user_traffic(draw: st.DrawFn) -> list[Arrival]:
    """Card-testing bursts mixed with page views, for a few users, each event with an
    arrival key ts + jitter (0 <= jitter < allowed lateness): sorting by it gives an arrival
    order in which no event is late. A user's payments keep their order: the fraud rules
    judge a payment on the window as it stands when it arrives, so a payment that arrives
    before an earlier one is judged without it (and not judged again)."""
    out: list[Arrival] = []
    for u in range(draw(st.integers(1, 3))):
        user = f"user-{u}"
        start = T0 + draw(st.integers(0, 5 * MINUTE_MS))
        burst = draw(st.integers(2, 6))
        pays = []
        for i in range(burst):
            pays.append(
                {
                    "event_id": f"{user}-pay-{i}",
                    "ts": start + i * draw(st.integers(1, 90_000)),
                    "user_id": user,
                    "type": "payment",
                    "status": draw(st.sampled_from(["failed", "failed", "ok"])),
                    "amount": draw(st.sampled_from([1.0, 2.5, 40.0])),
                    "instrument_id": f"card-{draw(st.integers(0, 4))}",
                    "currency": "EUR",
                }
            )
        pays.sort(key=lambda e: e["ts"])
        jitters = sorted(
            draw(st.lists(st.integers(0, LATENESS - 1), min_size=burst, max_size=burst))
        )
        # Sorted jitters on ts-sorted payments: their arrival keys keep their order.
        out += [Arrival(e, e["ts"] + j + 0.5) for e, j in zip(pays, jitters, strict=True)]
        for i in range(draw(st.integers(0, 4))):
            ts = start + draw(st.integers(-MINUTE_MS, 8 * MINUTE_MS))
            view = {"event_id": f"{user}-view-{i}", "ts": ts, "user_id": user, "type": "page_view"}
            out.append(Arrival(view, ts + draw(st.integers(0, LATENESS - 1))))
    return out


def alert_ids(events: list[dict[str, Any]]) -> list[str]:
    pipeline, states = user_side(guard=False)
    records = [Record(e["user_id"].encode(), orjson.dumps(e), 0, i) for i, e in enumerate(events)]
    fx = pipeline.run(records, states, None)
    check_user_effects(fx, records, states)
    assert not fx.dead_letters, [r.message for _, r in fx.dead_letters]
    return sorted(str(to_alert(d, "rules")["alert_id"]) for _, d in fx.alerts)


@fuzz(120)
@given(user_traffic(), st.data())
def test_redelivery_and_arrival_order_within_the_lateness_give_the_same_alerts(
    traffic: list[Arrival], data: st.DataObject
) -> None:
    in_order = [
        a.event for a in sorted(traffic, key=lambda a: (a.event["ts"], a.event["event_id"]))
    ]
    expected = alert_ids(in_order)
    arrived = [a.event for a in sorted(traffic, key=lambda a: a.at)]
    # At-least-once: any event may come again, anywhere after its first delivery.
    redelivered = list(arrived)
    for event in data.draw(st.lists(st.sampled_from(arrived), max_size=6), "redelivered"):
        first = redelivered.index(event)
        redelivered.insert(data.draw(st.integers(first + 1, len(redelivered)), "at"), event)
    note(f"expected {len(expected)} alerts")
    assert alert_ids(arrived) == expected
    assert alert_ids(redelivered) == expected
    assert alert_ids(in_order + in_order) == expected


def test_the_reorder_property_sees_alerts() -> None:
    """The traffic above does raise card-testing alerts, so equal lists mean something."""
    burst = [
        {"event_id": f"p{i}", "ts": T0 + i * MINUTE_MS, "user_id": "u", "type": "payment",
         "status": "failed", "amount": 1.0, "instrument_id": f"c{i}"}
        for i in range(4)
    ]  # fmt: skip
    assert alert_ids(burst)
