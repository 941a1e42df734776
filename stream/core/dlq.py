"""Dead-letter records of docs/contract.md, section 2."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from stream.core.schema import Rejected
from stream.core.timeutil import now_rfc3339


def dead_letter(
    rejection: Rejected,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    raw: bytes | None,
) -> bytes:
    record: dict[str, Any] = {
        "error": rejection.message,
        "reason": rejection.reason,
        "source_topic": topic,
        "partition": partition,
        "offset": offset,
        "key": _text(key),
        "received_at": now_rfc3339(),
    }
    if raw is None:
        record["raw"] = None
    else:
        try:
            record["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            record["raw"] = base64.b64encode(raw).decode("ascii")
            record["raw_encoding"] = "base64"
    return orjson.dumps(record)


def _text(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(key).decode("ascii")
