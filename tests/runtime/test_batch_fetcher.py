"""The batch fetcher: how it shares out records and drops those a seek made stale (no
broker), and its assignments, seeks, pauses and positions against a real broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Producer
from faust.types import TP

from stream.runtime.driver.batch_fetcher import BatchFetcher
from stream.runtime.topics import ensure_topics


class Record:
    """What the fetcher needs of a confluent-kafka message."""

    def __init__(self, tp: TP, offset: int) -> None:
        self.tp, self._offset = tp, offset

    def offset(self) -> int:
        return self._offset


A, B, C = TP("t", 0), TP("t", 1), TP("t", 2)


def _idle_fetcher(loop: asyncio.AbstractEventLoop, batch_max: int = 10) -> BatchFetcher:
    """A fetcher whose thread never runs: batches are put in its inbox by hand."""
    return BatchFetcher({}, loop, batch_max=batch_max, buffer_limit=100)


def _put(fetcher: BatchFetcher, records: dict[TP, range], epochs: dict[TP, int]) -> None:
    batch = {tp: [Record(tp, o) for o in offsets] for tp, offsets in records.items()}
    fetcher._fetched += sum(len(b) for b in batch.values())
    fetcher._inbox.put((batch, epochs))


def _offsets(got: dict[TP, list[Any]]) -> dict[TP, list[int]]:
    return {tp: [r.offset() for r in records] for tp, records in got.items()}


def test_only_active_partitions_are_handed_out_in_order_and_shared_evenly() -> None:
    async def run() -> None:
        fetcher = _idle_fetcher(asyncio.get_running_loop(), batch_max=10)
        _put(fetcher, {A: range(0, 20), B: range(100, 103), C: range(7, 9)}, {})
        first = _offsets(await fetcher.getmany({A, B}, 0.01))
        assert first == {A: list(range(0, 7)), B: [100, 101, 102]}
        second = _offsets(await fetcher.getmany({A, B}, 0.01))
        assert second == {A: list(range(7, 17))}
        assert _offsets(await fetcher.getmany({C}, 0.01)) == {C: [7, 8]}
        assert _offsets(await fetcher.getmany({A}, 0.01)) == {A: [17, 18, 19]}
        assert await fetcher.getmany({A, B, C}, 0.01) == {}
        assert fetcher._fetched == fetcher._taken  # everything counted out of the buffer

    asyncio.run(run())


def test_records_fetched_before_a_seek_are_never_handed_out() -> None:
    async def run() -> None:
        fetcher = _idle_fetcher(asyncio.get_running_loop())
        _put(fetcher, {A: range(0, 3), B: range(0, 3)}, {})
        fetcher.seek(A, 1)  # the thread is not running: the command fails, the drop stands
        _put(fetcher, {A: range(3, 5)}, {})  # fetched before the thread saw the seek
        _put(fetcher, {A: range(1, 3)}, {A: 1})  # fetched after it
        got = _offsets(await fetcher.getmany({A, B}, 0.01))
        assert got == {A: [1, 2], B: [0, 1, 2]}
        assert fetcher._fetched == fetcher._taken

    asyncio.run(run())


def test_a_wait_for_records_ends_at_the_timeout() -> None:
    async def run() -> None:
        fetcher = _idle_fetcher(asyncio.get_running_loop())
        assert await asyncio.wait_for(fetcher.getmany({A}, 0.05), 2) == {}

    asyncio.run(run())


def test_a_bad_reset_policy_is_named() -> None:
    with pytest.raises(ValueError, match="reset"):
        BatchFetcher({}, asyncio.new_event_loop(), batch_max=1, buffer_limit=1, reset="none")


@pytest.mark.kafka
def test_assign_seek_pause_and_position_against_a_broker(kafka_broker: str) -> None:
    topic = f"fetcher-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_broker, [topic], 2)
    producer = Producer({"bootstrap.servers": kafka_broker})
    for partition in (0, 1):
        for i in range(50):
            producer.produce(topic, value=b"%d" % i, partition=partition)
    producer.flush(30)
    p0, p1 = TP(topic, 0), TP(topic, 1)

    async def take(fetcher: BatchFetcher, active: set[TP], n: int) -> dict[TP, list[int]]:
        got: dict[TP, list[int]] = {}
        for _ in range(100):
            for tp, records in (await fetcher.getmany(active, 0.5)).items():
                got.setdefault(tp, []).extend(r.offset() for r in records)
            if sum(map(len, got.values())) >= n:
                break
        return got

    async def run() -> None:
        config = {"bootstrap.servers": kafka_broker, "group.id": f"g-{topic}"}
        fetcher = BatchFetcher(config, asyncio.get_running_loop(), batch_max=7, buffer_limit=20)
        fetcher.start()
        try:
            await fetcher.assign({p0, p1})
            await fetcher.seek_wait({p0: 40})
            assert await fetcher.position(p0) == 40
            got = await take(fetcher, {p0}, 10)  # p1 stays paused
            assert got == {p0: list(range(40, 50))}
            assert fetcher.highwater(p0) == 50
            await fetcher.seek_wait({p0: 5})
            got = await take(fetcher, {p0, p1}, 95)
            assert got[p0] == list(range(5, 50)) and got[p1] == list(range(0, 50))
            assert await fetcher.position(p1) == 50
            await fetcher.assign({p1})  # p0 revoked
            await fetcher.seek_wait({p1: 48})
            assert await take(fetcher, {p0, p1}, 2) == {p1: [48, 49]}
        finally:
            fetcher.stop()

    asyncio.run(run())


@pytest.mark.kafka
def test_a_lone_record_is_handed_out_without_waiting_for_a_full_poll(kafka_broker: str) -> None:
    topic = f"fetcher-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_broker, [topic], 1)
    tp = TP(topic, 0)
    producer = Producer({"bootstrap.servers": kafka_broker, "linger.ms": 0})

    async def run() -> None:
        config = {"bootstrap.servers": kafka_broker, "group.id": f"g-{topic}"}
        # A poll of up to 100 records may wait 3 s: a lone record must not wait that long.
        fetcher = BatchFetcher(
            config, asyncio.get_running_loop(), batch_max=100, buffer_limit=200, poll_s=3.0
        )
        fetcher.start()
        try:
            await fetcher.assign({tp})
            await fetcher.seek_wait({tp: 0})
            await asyncio.sleep(1.0)  # the fetcher is now inside a poll
            producer.produce(topic, value=b"one")
            producer.flush(10)
            sent = time.monotonic()
            got: list[Any] = []
            while not got and time.monotonic() - sent < 10:
                got = (await fetcher.getmany({tp}, 5.0)).get(tp, [])
            waited = time.monotonic() - sent
            assert [r.value() for r in got] == [b"one"]
            assert waited < 2.0, f"the record waited {waited:.2f} s"
        finally:
            fetcher.stop()

    asyncio.run(run())
