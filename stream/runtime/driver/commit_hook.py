"""A named step before every offset commit.

Faust flushes its producer right before it commits offsets; the worker's own outputs
(alerts, dead letters, seller records, changelog records through librdkafka) must be
delivered by then too, or a commit could pass events whose effects are still in flight.
Faust has no hook for this, so the producer's ``flush`` is wrapped, here and only here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


def before_commit(app: Any, step: Callable[[], Awaitable[None]]) -> None:
    """Run ``step`` whenever Faust flushes its producer ahead of a commit."""
    faust_flush = app.producer.flush

    async def flush() -> None:
        await step()
        await faust_flush()

    app.producer.flush = flush
