"""Micro-batches of Faust events whose table writes are coalesced per key.

Within a batch, each key's state is read once, threaded through its events in order, and
written once at the end: one changelog message per key and batch instead of one per event.
Decoded states stay cached across batches (least recently used first out), as the
backtest keeps them in memory: this worker is the only writer of its partitions, so the
cache is exact until a rebalance, which clears it (``forget``).

Two Faust internals are used on purpose, because Faust's per-message table path (its
producer buffer, about a third of a millisecond per write here) capped the worker near
2,000 events/s:

- Faust routes a table access to the partition of the "current event"; inside a batch that
  would be the last event, so states are read from the partition's store directly.
- The writes go to the RocksDB store directly, one write batch per partition, and their
  changelog records through librdkafka, to the same topic, partition, key and value bytes
  that Faust itself would write, so Faust's recovery and standby replicas read them
  unchanged. The records are flushed before Faust commits offsets (see ``stream.runtime.app``),
  and the delivered changelog offsets are then persisted in the store exactly as Faust's
  own delivery callback does, so a restart replays only the changelog tail.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from faust.types import TP
from rocksdict import WriteBatch

from stream.runtime.output import KafkaOutput


class Codec(Protocol):
    def encode(self) -> bytes: ...


S = TypeVar("S", bound=Codec)


Write = tuple[int, bytes, bytes]  # partition, key, encoded state


class TableUsage(NamedTuple):
    keys: int
    value_bytes: int
    # RocksDB's write buffers (memtables): every write since their last flush, overwritten
    # versions included; they fill up to Faust's write buffer size per partition database.
    memtable_bytes: int


class CoalescedTable(Generic[S]):
    """Decoded states read through from a Faust table; a batch's changes are encoded when it
    ends (``collect``) and written when its alerts are out (``apply``)."""

    def __init__(
        self, table: Any, decode: Callable[[bytes | None], S], cache_size: int = 4096
    ) -> None:
        self._table = table
        self._decode = decode
        self._cache_size = cache_size
        self._cache: dict[bytes, S] = {}  # least recently used first
        self._dirty: dict[bytes, int] = {}  # key -> the partition that owns it
        # Keys collected but not yet applied -> [partition, how many pending writes].
        self._unwritten: dict[bytes, list[int]] = {}

    def get(self, partition: int, key: bytes) -> S:
        cache = self._cache
        state = cache.pop(key, None)
        if state is None:
            state = self._decode(self._read(partition, key))
        cache[key] = state
        return state

    def _read(self, partition: int, key: bytes) -> bytes | None:
        """The stored value of ``key`` in ``partition``'s store, as Faust's own ``_get`` reads
        it for an event of that partition (and its record of which partition holds a key)."""
        store = self._table.data
        value: bytes | None = store._db_for_partition(partition).get(key)
        if value is not None:
            store._key_index[key] = partition
        return value

    def peek(self, key: bytes) -> S | None:
        """The current state of ``key`` if one of this worker's active partitions holds it,
        for read-only views. The store also holds copies of partitions this worker does not
        process (standbys, partitions handed over), which lag behind their owners: read
        through Faust's table, they made a non-owner answer with an older state
        (tests/runtime/test_chaos_kafka.py)."""
        active = self._active_partitions()
        unwritten = self._unwritten.get(key)
        partition = self._dirty.get(key, unwritten[0] if unwritten else None)
        if partition is not None:  # changed and not yet in the store: the cache holds it
            return self._cache.get(key) if partition in active else None
        for partition in active:
            raw = self._read(partition, key)
            if raw is not None:
                state = self._cache.get(key)  # the same state, decoded already
                return self._decode(raw) if state is None else state
        return None

    def _active_partitions(self) -> set[int]:
        """The partitions this worker processes, as Faust's ``_dbs_for_actives`` finds them."""
        topic = self._table.changelog_topic.get_topic_name()
        actives = self._table.app.assignor.assigned_actives()
        return {tp.partition for tp in actives if tp.topic == topic}

    def forget(self) -> None:
        """Drop cached states: after a rebalance the store may hold newer ones (recovered
        from the changelog) or belong to another worker. States changed but not yet
        written stay: their batches write them before acknowledging their events."""
        keep = self._dirty.keys() | self._unwritten.keys()
        self._cache = {k: v for k, v in self._cache.items() if k in keep}

    def keys_in(self, partition: int) -> list[bytes]:
        """Keys this worker holds in ``partition``: stored ones and not yet written ones."""
        store = self._table.data
        db = store._db_for_partition(partition)
        stored = [k for k in db.keys() if k != store.offset_key]  # noqa: SIM118 - a RocksDB handle
        known = set(stored)
        fresh = [k for k, p in self._dirty.items() if p == partition and k not in known]
        known.update(fresh)
        fresh += [k for k, (p, _) in self._unwritten.items() if p == partition and k not in known]
        return stored + fresh

    def usage(self) -> TableUsage:
        """What every partition database of the table this worker holds (standby copies
        too) stores, its keys and value bytes counted by a scan: RocksDB's estimates count
        each overwrite until a memtable flush, so they cannot show whether state stopped
        growing. O(state): for on-demand views only."""
        store = self._table.data
        keys = size = memtables = 0
        for db in list(getattr(store, "_dbs", {}).values()):
            try:
                memtables += int(db.property_int_value("rocksdb.size-all-mem-tables") or 0)
                for key, value in db.items():
                    if key != store.offset_key:
                        keys += 1
                        size += len(value)
            except Exception:  # a partition database closing during a rebalance
                continue
        return TableUsage(keys, size, memtables)

    def changed(self, partition: int, key: bytes) -> None:
        """The state of ``key``, held in ``partition``, changed in this batch."""
        self._dirty[key] = partition

    def collect(self) -> list[Write]:
        """Encode the states this batch changed, as they are now."""
        writes = [(p, key, self._cache[key].encode()) for key, p in self._dirty.items()]
        unwritten = self._unwritten
        for p, key, _ in writes:
            pending = unwritten.get(key)
            if pending is None:
                unwritten[key] = [p, 1]
            else:
                pending[1] += 1
        self._dirty.clear()
        return writes

    def apply(self, writes: list[Write], out: KafkaOutput) -> None:
        """Write collected states locally, queue their changelog records, trim the cache."""
        store = self._table.data
        topic = self._table.changelog_topic.get_topic_name()
        batches: dict[int, WriteBatch] = {}
        unwritten = self._unwritten
        for partition, key, value in writes:
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = WriteBatch(raw_mode=True)
            batch.put(key, value)
            # Faust's own bookkeeping of which partition holds a key (``Store._set``).
            store._key_index[key] = partition
            out.send(topic, key, value, partition=partition)
            pending = unwritten[key]
            pending[1] -= 1
            if not pending[1]:
                del unwritten[key]
        for partition, batch in batches.items():
            store._db_for_partition(partition).write(batch)
        self._trim()

    def _trim(self) -> None:
        """Evict the least recently used states beyond the cache size; a state whose change
        is not written yet stays, or a read would find the older one in the store."""
        cache = self._cache
        excess = len(cache) - self._cache_size
        if excess <= 0:
            return
        busy = self._dirty.keys() | self._unwritten.keys()
        for key in [k for k in itertools.islice(cache, excess + len(busy)) if k not in busy][
            :excess
        ]:
            del cache[key]

    def persist_offsets(self, out: KafkaOutput) -> None:
        """After a flush: record how far the changelog is known to be delivered."""
        topic = self._table.changelog_topic.get_topic_name()
        for partition, offset in out.take_offsets(topic).items():
            self._table.data.set_persisted_offset(TP(topic, partition), offset)
