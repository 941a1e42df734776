"""The input event of docs/contract.md, section 1, validated with pydantic v2.

``parse_event`` is the single entry point: bytes in, an ``Event`` out, or a ``Rejected``
exception whose ``reason`` is a short metric label and whose message names the field.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal, get_args

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from stream.core.timeutil import parse_ts

MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_ATTRS_BYTES: Final = 4 * 1024
# Stored rows and seller records are JSON written by orjson, which holds 64-bit integers:
# a larger quantity could be validated but never stored, and would fail the state's write.
MAX_INT64: Final = 2**63 - 1

EventType = Literal[
    "login",
    "logout",
    "page_view",
    "search",
    "item_view",
    "add_to_cart",
    "remove_from_cart",
    "checkout",
    "payment",
    "purchase",
    "refund",
    "review",
    "account_update",
]
EVENT_TYPES: Final[tuple[str, ...]] = get_args(EventType)
# Decision points: the events a detector scores (fraud, brushing) and the model is paid
# for; the other types only update a user's state.
DECISION_TYPES: Final[frozenset[str]] = frozenset(
    {"checkout", "payment", "purchase", "login", "account_update", "review"}
)

# The identifying fields, kept only as keyed pseudonyms (stream.core.privacy): a device id,
# an IP address or an instrument token in, a pseudonym out, given the field's name.
PSEUDONYMISED: Final[tuple[str, ...]] = ("device_id", "ip", "instrument_id")
Pseudonymise = Callable[[str, str], str]

Id = Annotated[str, Field(min_length=1, max_length=128)]
OptStr = Annotated[str | None, Field(default=None, max_length=256)]
Money = Annotated[float | None, Field(default=None, ge=0)]


class Rejected(Exception):
    """An input message that must go to the dead-letter topic."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Event(BaseModel):
    """One validated input event. ``ts`` is normalised to integer epoch milliseconds."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False, frozen=True)

    event_id: Id
    ts: int
    user_id: Id
    type: EventType
    session_id: OptStr = None
    item_id: OptStr = None
    seller_id: OptStr = None
    category: OptStr = None
    order_id: OptStr = None
    price: Money = None
    quantity: Annotated[int | None, Field(default=None, ge=1, le=MAX_INT64)] = None
    amount: Money = None
    currency: Annotated[str | None, Field(default=None, pattern=r"^[A-Z]{3}$")] = None
    device_id: OptStr = None
    ip: OptStr = None
    country: Annotated[str | None, Field(default=None, pattern=r"^[A-Z]{2}$")] = None
    payment_method: OptStr = None
    instrument_id: OptStr = None
    status: Literal["ok", "failed"] | None = None
    rating: Annotated[int | None, Field(default=None, ge=1, le=5)] = None
    attrs: dict[str, Any] | None = None

    @field_validator("ts", mode="before")
    @classmethod
    def _ts(cls, value: object) -> int:
        return parse_ts(value)

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not _is_ip(value):
            raise ValueError(f"{value[:64]!r} is not an IPv4 or IPv6 address")
        return _pseudonymised(value, info)

    @field_validator("device_id", "instrument_id")
    @classmethod
    def _identifying(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _pseudonymised(value, info)

    @field_validator("attrs")
    @classmethod
    def _attrs(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                size = len(orjson.dumps(value))
            except orjson.JSONEncodeError as exc:  # an integer beyond 64 bits, say
                raise ValueError(f"cannot be serialized: {exc}") from None
            if size > MAX_ATTRS_BYTES:
                raise ValueError(f"serialized size {size} bytes exceeds {MAX_ATTRS_BYTES}")
        return value


def _pseudonymised(value: str | None, info: ValidationInfo) -> str | None:
    """The value, or its pseudonym when ``parse_event`` was given a ``Pseudonymise``."""
    if value is None or info.context is None:
        return value
    pseudonymise: Pseudonymise = info.context
    return pseudonymise(info.field_name or "", value)


@functools.lru_cache(maxsize=65536)
def _is_ip(value: str) -> bool:
    # Cached: a user's events repeat a few addresses, and parsing one costs more than the
    # rest of an event's validation.
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def parse_event(raw: bytes | None, pseudonymise: Pseudonymise | None = None) -> Event:
    """Validate one Kafka message value; raise ``Rejected`` naming the offending field.
    With ``pseudonymise`` (``stream.core.privacy``), the fields of ``PSEUDONYMISED`` come
    out as pseudonyms of their validated values."""
    if raw is None:
        raise Rejected("empty", "value: message has no value (tombstone)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Rejected(
            "oversize", f"value: message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}"
        )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected("not_utf8", f"value: not valid UTF-8 at byte {exc.start}") from None
    try:
        return Event.model_validate_json(raw, context=pseudonymise)
    except ValidationError as exc:
        raise _rejection(exc) from None


def _rejection(exc: ValidationError) -> Rejected:
    errors = exc.errors(include_url=False)
    first = errors[0]
    kind = first["type"]
    if kind == "json_invalid":
        return Rejected("invalid_json", f"value: invalid JSON: {first['msg']}")
    if kind in ("model_type", "model_attributes_type"):
        return Rejected("not_object", "value: must be a JSON object")
    parts = [_describe(err) for err in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    field = str(first["loc"][0]) if first["loc"] else "value"
    if kind == "missing":
        reason = "missing_field"
    elif field == "type":
        reason = "unknown_type"
    else:
        reason = "invalid_field"
    return Rejected(reason, "; ".join(parts) + more)


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "value"
    if err["type"] == "missing":
        return f"field '{loc}': required field is missing"
    if loc == "type" and err["type"] == "literal_error":
        return f"field 'type': {err['input']!r} is not one of {', '.join(EVENT_TYPES)}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"field '{loc}': {msg}"


def event_to_json(event: Event) -> bytes:
    """Serialise back to the wire format (ts as epoch ms), omitting absent fields."""
    return orjson.dumps(event.model_dump(exclude_none=True))
