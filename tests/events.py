"""Builders of contract events for tests."""

from __future__ import annotations

import itertools
from typing import Any

T0 = 1_795_000_000_000  # 2026-11-18, epoch ms
_ids = itertools.count()


def ev(user: str = "u1", type_: str = "page_view", ts: int = T0, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": fields.pop("event_id", f"e{next(_ids)}"),
        "ts": ts,
        "user_id": user,
        "type": type_,
    }
    event.update(fields)
    return event


def card_testing(user: str, start: int = T0, n: int = 4) -> list[dict[str, Any]]:
    """``n`` small failed payments on ``n`` instruments, a minute apart."""
    return [
        ev(
            user,
            "payment",
            start + i * 60_000,
            status="failed",
            amount=1.0,
            instrument_id=f"card-{user}-{i}",
            currency="EUR",
        )
        for i in range(n)
    ]
