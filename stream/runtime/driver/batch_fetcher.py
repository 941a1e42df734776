"""Records fetched by librdkafka in batches, on a thread of their own, for one Faust consumer.

aiokafka fetches and parses records in Python on the consumer thread's event loop, and
every ``getmany`` of Faust is a round trip to that loop: the pass-through agent drained a
fraction of what a bare confluent-kafka loop drains on the same core. Here a plain thread
owns a confluent-kafka consumer in manual-assignment mode (no group of its own) and calls
its batch ``consume``; the event loop takes whole batches from it without a round trip.

The thread alone touches the librdkafka consumer. Assignments, seeks, pauses and
position queries are commands it runs between two ``consume`` calls, so a seek and the
fetches around it are ordered. Records already handed to the event loop's side but not
yet taken when a seek or an assignment change comes are dropped by an epoch per partition:
each seek bumps it, and every batch carries the epochs the thread had when it fetched.
librdkafka itself purges what it prefetched before a seek, pause or unassignment.

Memory stays bounded: the thread stops fetching while ``buffer_limit`` records wait to be
taken; librdkafka's own prefetch is bounded by its ``queued.max.messages.kbytes``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition
from faust.types import TP

log = logging.getLogger(__name__)

T = TypeVar("T")
Batch = tuple[dict[TP, list[Any]], dict[TP, int]]  # records per partition, epochs then


class BatchFetcher:
    """Fetches the partitions it is given, at the positions it is told, in batches."""

    def __init__(
        self,
        config: Mapping[str, Any],
        loop: asyncio.AbstractEventLoop,
        *,
        batch_max: int,
        buffer_limit: int,
        reset: str = "earliest",
        poll_s: float = 0.05,
    ) -> None:
        if reset not in ("earliest", "latest"):
            raise ValueError(f"reset: 'earliest' or 'latest', not {reset!r}")
        self._config = {
            **config,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
        }
        self._loop = loop
        self._batch_max = batch_max
        self._buffer_limit = buffer_limit
        self._start_offset = OFFSET_BEGINNING if reset == "earliest" else OFFSET_END
        self._poll_s = poll_s
        self._commands: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._commands = queue.SimpleQueue()
        self._wake = threading.Event()  # commands waiting, or room in the buffer again
        self._stopping = False
        self._thread: threading.Thread | None = None
        # The thread's side: only the thread writes these.
        self._consumer: Consumer | None = None
        self._assigned: set[TP] = set()
        self._active: set[TP] = set()
        self._fetch_epoch: dict[TP, int] = {}
        self._next_offset: dict[TP, int] = {}
        self._highwater: dict[TP, int] = {}
        self._fetched = 0
        # The event loop's side: only the loop writes these.
        self._inbox: queue.SimpleQueue[Batch] = queue.SimpleQueue()
        self._ready: dict[TP, deque[Any]] = {}
        self._epoch: dict[TP, int] = {}
        self._taken = 0
        self._fetching: frozenset[TP] | None = None
        self._waiting = False
        self._arrived = asyncio.Event()

    # -- lifecycle (event loop) -------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="batch-fetcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # -- what the consumer asks (event loop) -----------------------------------------

    async def assign(self, tps: Iterable[TP]) -> None:
        """Fetch exactly ``tps`` from now on, all paused until ``getmany`` asks for them;
        new ones start at the reset position until they are sought."""
        target = set(tps)
        epochs = self._forget(set(self._ready) | target)
        self._fetching = None
        await self._run_in_thread(lambda: self._t_assign(target, epochs))

    async def getmany(
        self,
        active: Iterable[TP] | None,
        timeout_s: float,
        fetching: Iterable[TP] | None = None,
    ) -> dict[TP, list[Any]]:
        """Up to ``batch_max`` records of the ``active`` partitions, waiting up to
        ``timeout_s`` for the first. The ``fetching`` ones (by default the active ones) go
        on being fetched into the buffer; the others are paused.

        Pausing and resuming in librdkafka is not free: it drops what was prefetched for
        the partition and fetches it again. Faust takes a partition out of the active set
        for a moment whenever its stream's buffer is full; such a partition should stay in
        ``fetching``, or a backlog is fetched many times over."""
        wanted = frozenset(active) if active is not None else frozenset(self._ready)
        fetch = wanted if fetching is None else frozenset(fetching)
        if fetch != self._fetching:
            self._fetching = fetch
            self._send(lambda: self._t_activate(fetch))
        self._take_inbox()
        if not self._has_ready(wanted):
            self._arrived.clear()
            self._waiting = True
            try:
                self._take_inbox()  # what came before the flag was seen
                if not self._has_ready(wanted):
                    try:
                        await asyncio.wait_for(self._arrived.wait(), timeout_s)
                    except TimeoutError:
                        return {}
                    self._take_inbox()
            finally:
                self._waiting = False
        return self._take(wanted)

    def seek(self, tp: TP, offset: int) -> concurrent.futures.Future[None]:
        """Fetch ``tp`` from ``offset`` on; records of ``tp`` not taken yet are dropped."""
        epoch = self._forget({tp})[tp]
        return self._send(lambda: self._t_seek(tp, offset, epoch))

    async def seek_wait(self, offsets: Mapping[TP, int]) -> None:
        futures = [self.seek(tp, offset) for tp, offset in offsets.items()]
        for future in futures:
            await asyncio.wrap_future(future)

    async def position(self, tp: TP) -> int | None:
        """The offset of the next record of ``tp`` that ``getmany`` would hand out."""
        fetched_next = await self._run_in_thread(lambda: self._t_position(tp))
        self._take_inbox()
        ready = self._ready.get(tp)
        if ready:
            return int(ready[0].offset())
        return fetched_next

    def highwater(self, tp: TP) -> int | None:
        """The end of ``tp`` as the latest fetch response gave it; None before any."""
        return self._highwater.get(tp)

    # -- the event loop's buffer -------------------------------------------------------

    def _forget(self, tps: set[TP]) -> dict[TP, int]:
        """Drop the records of ``tps`` not taken yet; their new epochs."""
        self._take_inbox()
        epochs = {}
        for tp in tps:
            dropped = self._ready.pop(tp, None)
            if dropped:
                self._taken += len(dropped)
            epochs[tp] = self._epoch[tp] = self._epoch.get(tp, 0) + 1
        self._wake.set()
        return epochs

    def _take_inbox(self) -> None:
        inbox, ready, current = self._inbox, self._ready, self._epoch
        while True:
            try:
                records, epochs = inbox.get_nowait()
            except queue.Empty:
                return
            for tp, batch in records.items():
                if epochs.get(tp, 0) != current.get(tp, 0):
                    self._taken += len(batch)  # fetched before a seek: never handed out
                    continue
                pending = ready.get(tp)
                if pending is None:
                    ready[tp] = deque(batch)
                else:
                    pending.extend(batch)

    def _has_ready(self, wanted: frozenset[TP]) -> bool:
        return any(self._ready.get(tp) for tp in wanted)

    def _take(self, wanted: frozenset[TP]) -> dict[TP, list[Any]]:
        """Up to ``batch_max`` records, shared out evenly among the wanted partitions."""
        ready = self._ready
        tps = [tp for tp in wanted if ready.get(tp)]
        out: dict[TP, list[Any]] = {}
        room = self._batch_max
        while tps and room > 0:
            share = max(1, room // len(tps))
            for tp in tps:
                pending = ready[tp]
                n = min(share, len(pending), room)
                if len(pending) == n:
                    part = list(pending)
                    pending.clear()
                else:
                    part = [pending.popleft() for _ in range(n)]
                out.setdefault(tp, []).extend(part)
                room -= n
                if room <= 0:
                    break
            tps = [tp for tp in tps if ready[tp]]
        taken = sum(len(v) for v in out.values())
        self._taken += taken
        if taken and self._fetched - self._taken < self._buffer_limit:
            self._wake.set()
        return out

    # -- commands -----------------------------------------------------------------------

    def _send(self, command: Callable[[], T]) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if self._thread is None or not self._thread.is_alive():
            future.set_exception(RuntimeError("the batch fetcher is not running"))
            return future
        self._commands.put((command, future))
        self._wake.set()
        return future

    async def _run_in_thread(self, command: Callable[[], T]) -> T:
        result: T = await asyncio.wrap_future(self._send(command))
        return result

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        self._consumer = Consumer(self._config)
        try:
            while not self._stopping:
                self._run_commands()
                if not self._active or self._fetched - self._taken >= self._buffer_limit:
                    self._wake.wait(self._poll_s)
                    self._wake.clear()
                    continue
                self._fetch()
        except Exception:
            log.exception("the batch fetcher failed")
            raise
        finally:
            self._fail_commands()
            self._consumer.close()

    def _run_commands(self) -> None:
        while True:
            try:
                command, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(command())
            except Exception as exc:
                future.set_exception(exc)

    def _fail_commands(self) -> None:
        while True:
            try:
                _, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if future.set_running_or_notify_cancel():
                future.set_exception(RuntimeError("the batch fetcher stopped"))

    def _fetch(self) -> None:
        assert self._consumer is not None
        # ``consume(n, timeout)`` waits until it has n messages or the timeout passes: under
        # light traffic every record waited out the timeout (50 ms). So wait for one, then
        # take what else has already arrived without waiting.
        first = self._consumer.poll(self._poll_s)
        if first is None:
            return
        messages = [first]
        if self._batch_max > 1:
            messages += self._consumer.consume(self._batch_max - 1, 0)
        records: dict[TP, list[Any]] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("fetch error: %s", error)
                continue
            tp = TP(message.topic(), message.partition())  # type: ignore[arg-type]
            batch = records.get(tp)
            if batch is None:
                records[tp] = [message]
            else:
                batch.append(message)
        if not records:
            return
        for tp, batch in records.items():
            self._next_offset[tp] = batch[-1].offset() + 1
            _, high = self._consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), cached=True
            )
            if high >= 0:
                self._highwater[tp] = high
        self._fetched += sum(len(b) for b in records.values())
        self._inbox.put((records, dict(self._fetch_epoch)))
        if self._waiting:
            self._loop.call_soon_threadsafe(self._arrived.set)

    def _t_assign(self, target: set[TP], epochs: dict[TP, int]) -> None:
        assert self._consumer is not None
        gone = self._assigned - target
        new = target - self._assigned
        if gone:
            self._consumer.incremental_unassign([_ck(tp) for tp in gone])
        if new:
            start = self._start_offset
            self._consumer.incremental_assign([_ck(tp, start) for tp in new])
            self._consumer.pause([_ck(tp) for tp in new])
        for tp in gone | new:
            self._next_offset.pop(tp, None)
            self._highwater.pop(tp, None)
        self._assigned = set(target)
        self._active &= self._assigned
        self._fetch_epoch = {tp: epochs[tp] for tp in target}

    def _t_activate(self, wanted: frozenset[TP]) -> None:
        assert self._consumer is not None
        active = wanted & self._assigned
        paused, resumed = self._active - active, active - self._active
        if paused:
            self._consumer.pause([_ck(tp) for tp in paused])
        if resumed:
            self._consumer.resume([_ck(tp) for tp in resumed])
        self._active = set(active)

    def _t_seek(self, tp: TP, offset: int, epoch: int) -> None:
        assert self._consumer is not None
        self._fetch_epoch[tp] = epoch
        if tp not in self._assigned:  # revoked meanwhile: nothing to fetch
            return
        self._consumer.seek(_ck(tp, max(0, offset)))
        self._next_offset[tp] = max(0, offset)

    def _t_position(self, tp: TP) -> int | None:
        assert self._consumer is not None
        known = self._next_offset.get(tp)
        if known is not None:
            return known
        if tp not in self._assigned:
            return None
        (where,) = self._consumer.position([_ck(tp)])
        return int(where.offset) if where.offset >= 0 else None


def _ck(tp: TP, offset: int | None = None) -> TopicPartition:
    if offset is None:
        return TopicPartition(tp.topic, tp.partition)
    return TopicPartition(tp.topic, tp.partition, offset)
