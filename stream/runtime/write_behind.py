"""Alerts first, then state: each micro-batch finishes once its alerts are delivered.

A batch's alerts must be delivered before the state that records them (cooldowns, the
events themselves) is written and its offsets can be committed: a crash in between then
repeats an alert (same id), never loses one. Waiting for that delivery inside the agent
stalled it for a broker round trip per batch with an alert, up to half a second on a busy
machine. Here the agent hands the batch over and goes on: the batch's ``done`` step (write
its states, acknowledge its events) runs when its alerts are delivered, always in the order
the batches were handed over, so two writes of one key never swap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from stream.runtime.output import DeliveryFailed

Alert = tuple[str, bytes, bytes]  # topic, key, value


class AlertSink(Protocol):
    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int = -1,
        then: Callable[[Any], None] | None = None,
    ) -> None: ...

    def poll(self) -> None: ...

    async def flush(self) -> None: ...


@dataclass
class _Pending:
    expected: int
    done: Callable[[], None]
    # Delivery reports arrive on whichever thread serves them (a flush runs in a thread
    # of its own); appending to a list is atomic, a counter update would not be.
    reports: list[Any] = field(default_factory=list)

    def delivered(self, err: Any) -> None:
        self.reports.append(err)

    @property
    def outstanding(self) -> int:
        return self.expected - len(self.reports)

    def errors(self) -> list[str]:
        return [str(err) for err in self.reports if err is not None]


class WriteBehind:
    def __init__(self, alerts: AlertSink) -> None:
        self._alerts = alerts
        self._queue: deque[_Pending] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, alerts: list[Alert], done: Callable[[], None]) -> None:
        """Send ``alerts``; run ``done`` once they and every earlier batch are through."""
        pending = _Pending(len(alerts), done)
        for topic, key, value in alerts:
            self._alerts.send(topic, key, value, then=pending.delivered)
        self._queue.append(pending)
        self.complete_ready()

    def complete_ready(self) -> int:
        """Run the ``done`` steps whose turn has come; return how many ran."""
        queue = self._queue
        if queue and queue[0].outstanding:
            self._alerts.poll()  # serves delivery callbacks
        ran = 0
        while queue and not queue[0].outstanding:
            pending = queue.popleft()
            errors = pending.errors()
            if errors:
                raise DeliveryFailed(f"alert delivery failed: {errors[0]}")
            pending.done()
            ran += 1
        return ran

    async def drain(self) -> None:
        """Wait until every alert sent is delivered, then run every ``done`` step."""
        await self._alerts.flush()
        self.complete_ready()
