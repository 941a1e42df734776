"""How far the consumer's fetch position is behind a partition's end, without failing while
the assignment changes.

aiokafka knows a partition's high watermark only from a fetch response, so right after an
assignment it is None; and a partition revoked between listing the assignment and asking
about it raises (``IllegalStateError`` from ``position``, an ``assert`` in ``highwater``).
The lag gauge's timer met both during rebalances, and an exception in a Faust timer ends the
worker: two workers crashed when a third left their group (tests/runtime/test_chaos_kafka.py).
"""

from __future__ import annotations

from typing import Any

from aiokafka.errors import IllegalStateError


async def partition_lag(consumer: Any, tp: Any) -> int | None:
    """Messages between ``tp``'s fetch position and its end; None while that is unknown."""
    try:
        position = await consumer.position(tp)
        highwater = consumer.highwater(tp)
    except (IllegalStateError, AssertionError):  # revoked meanwhile: no longer ours to report
        return None
    if position is None or highwater is None:  # nothing fetched yet since the assignment
        return None
    return max(0, int(highwater) - int(position))
