"""The one pipeline without a broker: partitioned micro-batches (as the worker takes them)
against the backtest's single in-order pass, redelivery and bad input."""

from __future__ import annotations

import gc
import zlib
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from stream.core.alerts import Detection, to_alert
from stream.core.state import SellerState, UserState
from stream.detect.churn import ChurnConfig
from stream.detect.pipeline import MemoryStates, Record, UserPipeline
from stream.detect.processor import DetectorConfig
from stream.detect.seller_pipeline import SellerPipeline, encode_seller_record, encode_watermark
from stream.offline.backtest import run_backtest
from stream.simulate import SimConfig, generate_files
from tests.events import T0, card_testing, ev

PARTITIONS = 3


def aid(det: Detection) -> str:
    return str(to_alert(det, "rules")["alert_id"])


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pipeline")
    events = root / "e.jsonl"
    config = SimConfig(
        users=300, days=6, seed=5, start=datetime(2026, 10, 1, tzinfo=UTC), fraud_rate=0.04,
        brushing_seller_rate=0.1,
    )  # fmt: skip
    generate_files(events, root / "l.jsonl", config)
    return events


def partitioned_run(lines: list[bytes], batch: int) -> set[str]:
    """The worker's path without Kafka: events split by user over partitions, taken in
    micro-batches that interleave the partitions, seller records routed by seller with the
    watermarks after them."""
    cfg, churn = DetectorConfig(), ChurnConfig()
    user_side = UserPipeline(cfg, churn)
    seller_side = SellerPipeline(cfg, PARTITIONS, wait_ms=10**9)
    users: MemoryStates[UserState] = MemoryStates(UserState)
    sellers: MemoryStates[SellerState] = MemoryStates(SellerState)
    queues: list[list[Record]] = [[] for _ in range(PARTITIONS)]
    for offset, line in enumerate(lines):
        user = orjson.loads(line)["user_id"].encode()
        p = zlib.crc32(user) % PARTITIONS
        queues[p].append(Record(user, line, p, offset))
    alerts: set[str] = set()
    taken = [0] * PARTITIONS
    while any(taken[p] < len(q) for p, q in enumerate(queues)):
        chunk: list[Record] = []
        for p, q in enumerate(queues):  # uneven shares per partition, as fetches are
            share = batch * (p + 1)
            chunk += q[taken[p] : taken[p] + share]
            taken[p] += share
        fx = user_side.run(chunk, users, None)
        alerts |= {aid(d) for _, d in fx.alerts if d.kind != "churn"}
        inputs = [
            Record(s.encode(), encode_seller_record(row), zlib.crc32(s.encode()) % PARTITIONS, -1)
            for s, row in fx.seller_records
        ]
        inputs += [
            Record(None, encode_watermark(src, ts), q, -1)
            for src, ts in fx.watermarks.items()
            for q in range(PARTITIONS)
        ]
        sfx = seller_side.run(inputs, sellers, None, now_ms=0)
        alerts |= {aid(d) for _, d in sfx.alerts}
    sfx = seller_side.run([], sellers, None, now_ms=0, flush=True)
    # Stored orders are tuples of atoms, which the garbage collector stops tracking: as
    # lists, each seller's orders were walked by every full collection (40 ms of pauses).
    rows = [
        r for table in sellers.by_partition.values() for st in table.values() for r in st.orders
    ]
    gc.collect()
    assert rows and not any(gc.is_tracked(r) for r in rows)
    return alerts | {aid(d) for _, d in sfx.alerts}


def test_partitioned_micro_batches_raise_the_backtests_fraud_and_brushing_alerts(
    traffic: Path, tmp_path: Path
) -> None:
    run_backtest(traffic, tmp_path / "a.jsonl")
    offline = {
        a["alert_id"]
        for a in map(orjson.loads, (tmp_path / "a.jsonl").read_bytes().splitlines())
        if a["kind"] != "churn"
    }
    assert offline
    lines = [ln for ln in traffic.read_bytes().splitlines() if ln.strip()]
    lines.sort(key=lambda ln: orjson.loads(ln)["ts"])
    for batch in (1, 17, 250):
        assert partitioned_run(lines, batch) == offline


def run_user_side(events: list[dict[str, object]]) -> tuple[list[str], int, list[str]]:
    pipeline = UserPipeline(DetectorConfig(), ChurnConfig())
    states: MemoryStates[UserState] = MemoryStates(UserState)
    records = [
        Record(str(e["user_id"]).encode(), orjson.dumps(e), 0, i) for i, e in enumerate(events)
    ]
    fx = pipeline.run(records, states, None)
    return [aid(d) for _, d in fx.alerts], fx.duplicates, [r.reason for _, r in fx.dead_letters]


def test_redelivery_changes_nothing() -> None:
    burst = card_testing("u9")
    alerts, none, _ = run_user_side(burst)
    again, redelivered, _ = run_user_side(burst + burst)
    assert alerts and not none and again == alerts and redelivered == len(burst)


def test_bad_input_is_one_dead_letter_naming_the_field_and_processing_goes_on() -> None:
    pipeline = UserPipeline(DetectorConfig(), ChurnConfig())
    states: MemoryStates[UserState] = MemoryStates(UserState)
    good = ev("u1", "page_view")
    records = [
        Record(b"u1", b"\xff\xfe not json", 0, 0),
        Record(b"u1", orjson.dumps({**good, "amount": -1}), 0, 1),
        Record(b"someone-else", orjson.dumps(ev("u1")), 0, 2),
        Record(b"u1", orjson.dumps(good), 0, 3),
    ]
    fx = pipeline.run(records, states, None)
    assert [r.offset for r, _ in fx.dead_letters] == [0, 1, 2]
    errors = [rej.message for _, rej in fx.dead_letters]
    assert "amount" in errors[1] and "key" in errors[2]
    assert fx.added == 1


def test_file_sources_skip_the_key_check() -> None:
    pipeline = UserPipeline(DetectorConfig(), ChurnConfig(), check_keys=False)
    states: MemoryStates[UserState] = MemoryStates(UserState)
    fx = pipeline.run([Record(None, orjson.dumps(ev("u1")), 0, 0)], states, None)
    assert fx.added == 1 and not fx.dead_letters


def test_malformed_seller_records_are_dead_letters_and_the_rest_are_decided() -> None:
    """Before, these reached the reorder buffer and raised out of ``run`` when it released
    them (a None ts in the heap, a row too short for the rules, a key not UTF-8), taking the
    well-formed records released with them along."""
    seller_side = SellerPipeline(DetectorConfig(), 1, wait_ms=0)
    sellers: MemoryStates[SellerState] = MemoryStates(SellerState)
    good = [T0, "e1", "u1", "purchase", 10.0, None, 0, 0, 1, None, None, None, None]
    records = [
        Record(b"s1", b"[null,null,null]", 0, 0),
        Record(b"s1", b'[0,"","","purchase"]', 0, 1),
        Record(b"\x80", encode_seller_record(good), 0, 2),
        Record(b"s1", b"", 0, 3),
        Record(None, b'{"watermark":"x","partition":0}', 0, 4),
        Record(None, encode_watermark(7, T0), 0, 5),  # no such input partition
        Record(b"s1", encode_seller_record(good), 0, 6),
        Record(None, encode_watermark(0, T0 + 1), 0, 7),
    ]
    fx = seller_side.run(records, sellers, None, now_ms=0, flush=True)
    assert [r.offset for r, _ in fx.dead_letters] == [0, 1, 2, 3, 4, 5]
    assert all(rej.message.startswith(("value: ", "key: ")) for _, rej in fx.dead_letters)
    assert fx.added == 1 and sorted(r.offset for r in fx.handled) == list(range(8))
