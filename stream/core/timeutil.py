"""Event-time helpers: everything inside the project is integer epoch milliseconds, UTC."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Final

# Durations in the project's unit of time, milliseconds: the one home of these facts for
# the detectors, the simulator and the model.
SECOND_MS: Final = 1000
MINUTE_MS: Final = 60 * SECOND_MS
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS
# The same in seconds, for reports and settings that speak seconds.
HOUR_S: Final = HOUR_MS / SECOND_MS
DAY_S: Final = DAY_MS / SECOND_MS

# RFC 3339 date-time: a date, 'T' (or space), a time, optional fraction, and a mandatory offset.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
# The form this project writes (``format_ts``) and most producers send: UTC, milliseconds.
_CANONICAL = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z$")
# Epoch milliseconds accepted as event time: 1970-01-01 up to year 9999.
MAX_EPOCH_MS = 253_402_300_799_999


def parse_ts(value: object) -> int:
    """Return epoch milliseconds for an RFC 3339 string with offset or an integer epoch ms.

    Raises ValueError with a message fit for a dead letter.
    """
    if isinstance(value, bool):
        raise ValueError("must be an RFC 3339 string with offset or integer epoch milliseconds")
    if isinstance(value, int):
        if not 0 <= value <= MAX_EPOCH_MS:
            raise ValueError(f"epoch milliseconds {value} out of range")
        return value
    if isinstance(value, str):
        fast = _CANONICAL.match(value)
        if fast is not None:
            hour, minute, second = int(fast[2]), int(fast[3]), int(fast[4])
            day = _day_ms(fast[1])
            # A day before 1970 falls through to the range check below.
            if day is not None and day >= 0 and hour < 24 and minute < 60 and second < 60:
                return day + ((hour * 60 + minute) * 60 + second) * 1000 + int(fast[5])
        if not _RFC3339.match(value):
            raise ValueError(f"{value[:64]!r} is not an RFC 3339 date-time with offset")
        text = value.replace(" ", "T").replace("t", "T").replace("z", "Z")
        frac = re.search(r"\.(\d+)", text)
        if frac and len(frac.group(1)) > 6:  # fromisoformat takes at most microseconds
            text = text.replace(frac.group(0), "." + frac.group(1)[:6])
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{value[:64]!r} is not a valid date-time: {exc}") from None
        ms = int(parsed.timestamp() * 1000) if parsed.microsecond == 0 else _exact_ms(parsed)
        # The range integers have: outside it (before 1970, or past 9999 in UTC) the event
        # time could not be written back as RFC 3339 in an alert.
        if not 0 <= ms <= MAX_EPOCH_MS:
            raise ValueError(f"{value[:64]!r} is outside 1970-01-01 to 9999-12-31 UTC")
        return ms
    raise ValueError("must be an RFC 3339 string with offset or integer epoch milliseconds")


@functools.lru_cache(maxsize=4096)
def _day_ms(date: str) -> int | None:
    """Epoch ms of midnight UTC on ``date`` (YYYY-MM-DD), None if there is no such day.
    Cached: a stream's events fall on few days, and this is most of a timestamp's cost."""
    try:
        day = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(day.timestamp()) * 1000


def _exact_ms(parsed: datetime) -> int:
    # Avoid float rounding: whole seconds from timestamp(), milliseconds from the fraction.
    whole = int(parsed.replace(microsecond=0).timestamp())
    return whole * 1000 + parsed.microsecond // 1000


def format_ts(ms: int) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. ``2026-11-29T10:15:03.123Z``."""
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)


def now_rfc3339() -> str:
    return format_ts(now_ms())
