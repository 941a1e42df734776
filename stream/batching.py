"""Micro-batches of Faust events whose table writes are coalesced per key.

Within a batch, each key's state is read once, threaded through its events in order, and
written once at the end: one changelog message per key and batch instead of one per event.

Two Faust internals are used on purpose, because Faust's per-message table path (its
producer buffer, about a third of a millisecond per write here) capped the worker near
2,000 events/s:

- Faust routes a table access to the partition of the "current event"; inside a batch that
  would be the last event, so each access is made with its own event set as current.
- The write goes to the RocksDB store directly and its changelog record through librdkafka,
  to the same topic, partition, key and value bytes that Faust itself would write, so Faust's
  recovery and standby replicas read it unchanged. The records are flushed before Faust
  commits offsets (see ``stream.app``), and the delivered changelog offsets are then
  persisted in the store exactly as Faust's own delivery callback does, so a restart
  replays only the changelog tail.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

from faust.streams import _current_event
from faust.types import TP

from stream.output import KafkaOutput


@contextmanager
def as_current(event: Any) -> Iterator[None]:
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class Codec(Protocol):
    def encode(self) -> bytes: ...


S = TypeVar("S", bound=Codec)


class CoalescedTable(Generic[S]):
    """Decoded states read through from a Faust table, written back once per batch."""

    def __init__(self, table: Any, decode: Callable[[bytes | None], S]) -> None:
        self._table = table
        self._decode = decode
        self._cache: dict[bytes, S] = {}
        self._dirty: dict[bytes, Any] = {}  # key -> the event whose partition owns it

    def get(self, event: Any, key: bytes) -> S:
        state = self._cache.get(key)
        if state is None:
            with as_current(event):
                state = self._decode(self._table.get(key))
            self._cache[key] = state
        return state

    def keys_in(self, partition: int) -> list[bytes]:
        """Keys this worker holds in ``partition``: stored ones and this batch's new ones."""
        store = self._table.data
        db = store._db_for_partition(partition)
        stored = [k for k in db.keys() if k != store.offset_key]  # noqa: SIM118 - a RocksDB handle
        known = set(stored)
        fresh = [
            k
            for k, ev in self._dirty.items()
            if ev.message.partition == partition and k not in known
        ]
        return stored + fresh

    def mark(self, event: Any, key: bytes) -> None:
        """The state of ``key`` changed while handling ``event``."""
        self._dirty[key] = event

    def write_back(self, out: KafkaOutput) -> int:
        """Write changed states locally, queue their changelog records, forget the batch."""
        written = len(self._dirty)
        topic = self._table.changelog_topic.get_topic_name()
        for key, event in self._dirty.items():
            value = self._cache[key].encode()
            with as_current(event):
                self._table.data[key] = value
            out.send(topic, key, value, partition=event.message.partition)
        self._dirty.clear()
        self._cache.clear()
        return written

    def persist_offsets(self, out: KafkaOutput) -> None:
        """After a flush: record how far the changelog is known to be delivered."""
        topic = self._table.changelog_topic.get_topic_name()
        for partition, offset in out.take_offsets(topic).items():
            self._table.data.set_persisted_offset(TP(topic, partition), offset)
