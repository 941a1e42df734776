"""WriteBehind: a batch's done step waits for its alerts and for every earlier batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from stream.runtime.output import DeliveryFailed
from stream.runtime.write_behind import WriteBehind


class Sink:
    """Records sent alerts; the test decides when each is reported delivered."""

    def __init__(self) -> None:
        self.waiting: list[tuple[bytes, Callable[[Any], None]]] = []

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int = -1,
        then: Callable[[Any], None] | None = None,
    ) -> None:
        assert then is not None
        self.waiting.append((value, then))

    def deliver(self, value: bytes, err: Any = None) -> None:
        for i, (v, then) in enumerate(self.waiting):
            if v == value:
                del self.waiting[i]
                then(err)
                return
        raise AssertionError(f"{value!r} was not sent")

    def poll(self) -> None:
        pass

    async def flush(self, limit_s: float = 30.0) -> None:
        while self.waiting:
            self.deliver(self.waiting[0][0])


def test_a_batch_without_alerts_is_done_at_once() -> None:
    done: list[str] = []
    behind = WriteBehind(Sink())
    behind.submit([], lambda: done.append("a"))
    assert done == ["a"] and len(behind) == 0


def test_done_steps_wait_for_their_alerts_and_keep_batch_order() -> None:
    sink, done = Sink(), []
    behind = WriteBehind(sink)
    behind.submit([("t", b"k", b"a1"), ("t", b"k", b"a2")], lambda: done.append("first"))
    behind.submit([], lambda: done.append("second"))  # nothing of its own to wait for
    behind.submit([("t", b"k", b"c1")], lambda: done.append("third"))
    sink.deliver(b"c1")  # a later batch's alert arriving first changes nothing
    sink.deliver(b"a1")
    assert behind.complete_ready() == 0 and done == []
    sink.deliver(b"a2")
    assert behind.complete_ready() == 3
    assert done == ["first", "second", "third"]


def test_a_failed_alert_stops_everything_after_it() -> None:
    sink, done = Sink(), []
    behind = WriteBehind(sink)
    behind.submit([("t", b"k", b"bad")], lambda: done.append("first"))
    behind.submit([], lambda: done.append("second"))
    sink.deliver(b"bad", err="broker down")
    with pytest.raises(DeliveryFailed, match="broker down"):
        behind.complete_ready()
    assert done == []


def test_drain_delivers_and_runs_every_step() -> None:
    sink, done = Sink(), []
    behind = WriteBehind(sink)
    for name in ("a", "b"):
        behind.submit([("t", b"k", name.encode())], lambda n=name: done.append(n))
    asyncio.run(behind.drain())
    assert done == ["a", "b"] and len(behind) == 0
