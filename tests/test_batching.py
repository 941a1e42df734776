"""Decoded states kept between micro-batches: reused while this worker owns them, never
across a rebalance, never after a rejected event."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from stream.batching import CoalescedTable


@dataclass
class Counter:
    value: int = 0

    def encode(self) -> bytes:
        return str(self.value).encode()


@dataclass
class Table:
    data: dict[bytes, bytes] = field(default_factory=dict)
    changelog_topic: Any = field(
        default_factory=lambda: SimpleNamespace(get_topic_name=lambda: "changelog")
    )
    reads: int = 0

    def get(self, key: bytes) -> bytes | None:
        self.reads += 1
        return self.data.get(key)


class Event:
    message = SimpleNamespace(partition=0)


class Out:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, key: bytes, value: bytes, partition: int) -> None:
        self.sent.append((topic, key, value))


def decode(raw: bytes | None) -> Counter:
    return Counter(int(raw) if raw else 0)


def bump(table: CoalescedTable[Counter], key: bytes, ev: Event) -> None:
    table.get(ev, key).value += 1
    table.mark(ev, key)


def test_states_are_reused_across_batches_and_stay_written() -> None:
    store, out, ev = Table(), Out(), Event()
    table = CoalescedTable(store, decode, keep=10)
    for _ in range(3):  # three batches of the same key
        bump(table, b"u", ev)
        table.write_back(out)  # type: ignore[arg-type]
    assert store.reads == 1 and (table.hits, table.misses) == (2, 1)
    assert store.data[b"u"] == b"3" and out.sent[-1] == ("changelog", b"u", b"3")


def test_without_keep_every_batch_reads_the_store() -> None:
    store, out, ev = Table(), Out(), Event()
    table = CoalescedTable(store, decode)
    for _ in range(3):
        bump(table, b"u", ev)
        table.write_back(out)  # type: ignore[arg-type]
    assert store.reads == 3 and store.data[b"u"] == b"3"


def test_a_rebalance_forgets_kept_states() -> None:
    store, out, ev = Table(), Out(), Event()
    table = CoalescedTable(store, decode, keep=10)
    bump(table, b"u", ev)
    table.write_back(out)  # type: ignore[arg-type]
    table.forget_all()
    store.data[b"u"] = b"41"  # written meanwhile by the worker that owned it
    bump(table, b"u", ev)
    table.write_back(out)  # type: ignore[arg-type]
    assert store.data[b"u"] == b"42"


def test_a_batch_straddling_a_rebalance_keeps_nothing() -> None:
    store, out, ev = Table(), Out(), Event()
    table = CoalescedTable(store, decode, keep=10)
    bump(table, b"u", ev)
    table.forget_all()  # the rebalance happens while the batch runs
    table.write_back(out)  # type: ignore[arg-type]
    store.data[b"u"] = b"10"
    bump(table, b"u", ev)
    table.write_back(out)  # type: ignore[arg-type]
    assert store.data[b"u"] == b"11"


def test_a_rejected_key_is_read_again() -> None:
    store, out, ev = Table(), Out(), Event()
    table = CoalescedTable(store, decode, keep=10)
    table.get(ev, b"u").value = 99  # changed half-way, then rejected: never written
    table.forget(b"u")
    table.write_back(out)  # type: ignore[arg-type]
    assert table.get(ev, b"u").value == 0 and store.reads == 2


def test_the_kept_states_are_bounded_least_recent_first() -> None:
    store, out, ev = Table(), Out(), Event()
    table = CoalescedTable(store, decode, keep=2)
    for key in (b"a", b"b", b"c"):
        bump(table, key, ev)
        table.write_back(out)  # type: ignore[arg-type]
    reads = store.reads
    for key in (b"b", b"c", b"a"):
        table.get(ev, key)
    assert store.reads == reads + 1  # only "a" had been dropped
