from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from modelsynth import make_fixture
from window_reference import reference_window

from model.features import (
    EVENT_TYPES,
    MAX_T,
    MISSING,
    NEW,
    NOVELTY_FIELDS,
    SEEN,
    TYPE_INDEX,
    BoolArray,
    EventTable,
    FeatureSpec,
    encode_batch,
    encode_sequence,
    encode_tables,
    encode_window,
    tokenize_events,
)  # fmt: skip
from stream.core.timeutil import DAY_MS

ROOT = Path(__file__).resolve().parents[2]
SPEC = FeatureSpec()


@pytest.fixture(scope="module")
def users() -> dict[str, list[dict[str, Any]]]:
    by_user: dict[str, list[dict[str, Any]]] = {}
    for ev in make_fixture(users=40, days=20, seed=3).events:
        by_user.setdefault(ev["user_id"], []).append(ev)
    return by_user


def _ev(i: int, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{i}",
        "ts": 1_767_225_600_000 + i * 60_000,
        "user_id": "u",
        "type": "page_view",
        **fields,
    }


def test_spec_json_round_trip() -> None:
    spec = FeatureSpec(category_buckets=32)
    again = FeatureSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again == spec
    assert len(spec.cardinalities) == spec.n_cat
    with pytest.raises(ValueError, match="unknown feature spec fields"):
        FeatureSpec.from_json({"bogus": 1})


def test_shapes_alignment_and_padding(users: dict[str, list[dict[str, Any]]]) -> None:
    events = next(iter(users.values()))[:5]
    cat, num, mask = encode_sequence(events, SPEC, 8)
    assert cat.shape == (8, SPEC.n_cat) and cat.dtype == np.int64
    assert num.shape == (8, SPEC.n_num) and num.dtype == np.float32
    assert mask.tolist() == [False] * 3 + [True] * 5
    assert not cat[:3].any() and not num[:3].any()
    assert cat[-1, 0] == TYPE_INDEX[events[-1]["type"]]  # the decision event is last


def test_codes_within_cardinalities(users: dict[str, list[dict[str, Any]]]) -> None:
    for events in users.values():
        cat, _, mask = encode_sequence(events, SPEC, MAX_T)
        assert (cat < np.array(SPEC.cardinalities)).all()
        assert (cat[mask] > 0).all()  # real events never use the padding code


def test_training_windows_equal_stream_encoding(users: dict[str, list[dict[str, Any]]]) -> None:
    """Training slices one tokenized history; the stream encodes its last T events; both
    equal the one-window reference."""
    rng = np.random.default_rng(0)
    checked = 0
    for events in users.values():
        table = tokenize_events(events, SPEC)
        for end in rng.integers(1, len(events) + 1, size=5):
            for T in (4, 32):
                a = encode_window(table, end - T, int(end), SPEC, T)
                b = encode_sequence(events[: int(end)], SPEC, T)
                c = reference_window(table, end - T, int(end), SPEC, T)
                for x, y, z in zip(a, b, c, strict=True):
                    np.testing.assert_array_equal(x, y)
                    np.testing.assert_array_equal(x, z)
                checked += 1
    assert checked > 100


def test_novelty_is_relative_to_the_window() -> None:
    events = [_ev(0, device_id="A"), _ev(1, device_id="B"), _ev(2, device_id="A"), _ev(3)]
    col = SPEC.cat_features.index("new_device_id")
    cat, _, _ = encode_sequence(events, SPEC, 4)
    assert cat[:, col].tolist() == [NEW, NEW, SEEN, MISSING]
    # With T=2 the window starts at the second "A": it is new within the window.
    cat2, _, _ = encode_sequence(events[:3], SPEC, 2)
    assert cat2[:, col].tolist() == [NEW, NEW]
    assert len(NOVELTY_FIELDS) == sum(n.startswith("new_") for n in SPEC.cat_features)


def test_gap_and_running_distinct_counts() -> None:
    events = [_ev(0, ip="1.1.1.1"), _ev(1, ip="2.2.2.2"), _ev(10, ip="1.1.1.1")]
    cat, num, _ = encode_sequence(events, SPEC, 3)
    gap = SPEC.cat_features.index("gap")
    assert cat[0, gap] == MISSING  # the previous event lies outside the window
    assert cat[2, gap] > cat[1, gap]  # nine minutes is a longer gap than one
    ips = num[:, SPEC.num_features.index("distinct_ips")]
    np.testing.assert_allclose(ips, np.log1p([1, 2, 2]).astype(np.float32))


def test_missing_optional_fields_and_bad_t() -> None:
    cat, num, mask = encode_sequence([{"ts": 0, "type": "nonsense"}], SPEC, 1)
    assert cat[0, 0] == MISSING and mask.all() and np.isfinite(num).all()
    with pytest.raises(ValueError, match="T must be"):
        encode_sequence([_ev(0)], SPEC, MAX_T + 1)
    with pytest.raises(ValueError, match="empty"):
        encode_sequence([], SPEC, 4)


def test_batch_stacks_sequences(users: dict[str, list[dict[str, Any]]]) -> None:
    seqs = list(users.values())[:3]
    cat, _num, mask = encode_batch(seqs, SPEC, 16)
    assert cat.shape == (3, 16, SPEC.n_cat) and mask.shape == (3, 16)
    np.testing.assert_array_equal(cat[1], encode_sequence(seqs[1], SPEC, 16)[0])


_SNIPPET = """
import json, sys
from model.features import FeatureSpec, encode_sequence
events = json.loads(sys.stdin.read())
cat, num, mask = encode_sequence(events, FeatureSpec(), 16)
print(json.dumps([cat.tolist(), num.tolist()]))
print("torch" in sys.modules, "onnxruntime" in sys.modules)
"""


def _encode_in_subprocess(events: list[dict[str, Any]], seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _SNIPPET],
        input=json.dumps(events),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.splitlines()


def test_hashing_is_stable_across_processes_and_torch_free(
    users: dict[str, list[dict[str, Any]]],
) -> None:
    events = next(iter(users.values()))[:20]
    a, b = _encode_in_subprocess(events, "1"), _encode_in_subprocess(events, "2")
    assert a[0] == b[0]
    assert a[1] == "False False"  # the worker's per-event path imports neither
    cat, _, _ = encode_sequence(events, SPEC, 16)
    assert json.loads(a[0])[0] == cat.tolist()


def test_scorer_module_does_not_import_torch() -> None:
    code = "import sys, model.scorer, model.bundle, model.trt; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "False"


def test_stream_state_rows_encode_like_raw_events(
    users: dict[str, list[dict[str, Any]]],
) -> None:
    """The worker encodes rows from its per-user state; they must give the same arrays."""
    import orjson

    from stream.core.schema import parse_event
    from stream.core.state import event_row, row_to_dict

    for events in list(users.values())[:10]:
        rows = [row_to_dict(event_row(parse_event(orjson.dumps(ev)))) for ev in events]
        for T in (8, 64):
            for x, y in zip(
                encode_sequence(events, SPEC, T), encode_sequence(rows, SPEC, T), strict=True
            ):
                np.testing.assert_array_equal(x, y)


def test_events_older_than_max_age_are_left_out() -> None:
    day = 86_400_000
    old, recent = _ev(0, device_id="A"), _ev(1, device_id="A")
    recent["ts"] = old["ts"] + 31 * day
    cat, _, mask = encode_sequence([old, recent], SPEC, 4)
    assert mask.tolist() == [False, False, False, True]
    assert cat[-1, SPEC.cat_features.index("new_device_id")] == NEW


DAY = DAY_MS
# Values drawn from small pools repeat within a user's window; the rest are novelties.
_POOLS: dict[str, tuple[str, ...]] = {
    "device_id": ("dev-a", "dev-b"),
    "ip": ("10.0.0.1", "10.0.0.2", "192.0.2.7"),
    "country": ("DE", "FR"),
    "instrument_id": ("card-1", "card-2"),
}


def _offsets(rng: np.random.Generator, n: int, span_ms: int) -> list[int]:
    """``n`` sorted times within ``span_ms``, on whole minutes so that some coincide."""
    minutes = rng.integers(0, span_ms // 60_000 + 1, size=n)
    return sorted(int(m) * 60_000 for m in minutes)


def _random_events(rng: np.random.Generator, offsets: list[int], user: str) -> list[dict[str, Any]]:
    """Varied events at ``offsets`` (sorted ms after a base time); optional fields come
    and go, ids repeat or are new, some payments fail."""
    events = []
    for i, offset in enumerate(offsets):
        event: dict[str, Any] = {
            "event_id": f"{user}-{i}",
            "ts": 1_767_225_600_000 + offset,
            "user_id": user,
            "type": str(rng.choice(EVENT_TYPES)),
        }
        for field, pool in _POOLS.items():
            draw = rng.random()
            if draw < 0.6:
                event[field] = str(rng.choice(pool))
            elif draw < 0.8:
                event[field] = f"{field}-{user}-{i}"  # never seen before
        if rng.random() < 0.5:
            event["status"] = "failed" if rng.random() < 0.4 else "ok"
        if rng.random() < 0.5:
            event["amount"] = round(float(rng.lognormal(3.0, 1.5)), 2)
        if rng.random() < 0.4:
            event["price"] = round(float(rng.lognormal(2.5, 1.0)), 2)
            event["quantity"] = int(rng.integers(1, 6))
        if rng.random() < 0.5:
            event["seller_id"] = f"s{rng.integers(3)}"
            event["item_id"] = f"i{rng.integers(6)}"
            event["category"] = f"c{rng.integers(4)}"
        if rng.random() < 0.3:
            event["payment_method"] = str(rng.choice(["card", "wallet"]))
        if rng.random() < 0.2:
            event["rating"] = int(rng.integers(1, 6))
        events.append(event)
    return events


def _assert_tables_encode_like_windows(tables: list[EventTable], T: int) -> BoolArray:
    """``encode_tables`` equals the one-window reference encoder stacked; the mask."""
    got = encode_tables(tables, SPEC, T)
    windows = [reference_window(table, 0, len(table), SPEC, T) for table in tables]
    for k in range(3):  # cat, num, mask
        want = np.stack([window[k] for window in windows])
        assert got[k].shape == want.shape and got[k].dtype == want.dtype
        assert np.array_equal(got[k], want)
    return got[2]


@pytest.mark.parametrize("T", [8, 32])
def test_encode_tables_equals_stacked_windows(T: int) -> None:
    rng = np.random.default_rng(T)
    lengths = [1, 3, T - 1, T, T + 1, 3 * T + 5]
    users = [
        _random_events(rng, _offsets(rng, n, span), f"u{i}-{span}")
        for span in (2 * 3_600_000, 10 * DAY)  # many same-minute events, then spread out
        for i, n in enumerate(lengths)
    ]
    assert any(e.get("status") == "failed" for events in users for e in events)
    tables = [tokenize_events(events, SPEC) for events in users]
    mask = _assert_tables_encode_like_windows(tables, T)
    assert mask.sum(axis=1).tolist() == [min(len(t), T) for t in tables]


@pytest.mark.parametrize("T", [8, 32])
def test_encode_tables_drops_events_older_than_max_age(T: int) -> None:
    rng = np.random.default_rng(100 + T)
    age = SPEC.max_age_ms
    offsets = [
        [round(k * 60 * DAY / (T + 3)) for k in range(T + 4)],  # evenly over 60 days
        _offsets(rng, T + 10, 90 * DAY),
        [0, 1, 10 * DAY, 20 * DAY, age + 1],  # 1 ms too old, then exactly max_age old
        [0, DAY, 2 * DAY, 40 * DAY],  # only the decision event is recent
    ]
    tables = [
        tokenize_events(_random_events(rng, offs, f"old{i}"), SPEC)
        for i, offs in enumerate(offsets)
    ]
    # A recent user in the same batch keeps every event.
    tables.append(tokenize_events(_random_events(rng, _offsets(rng, T, DAY), "recent"), SPEC))
    mask = _assert_tables_encode_like_windows(tables, T)
    kept = [int((t.ts[-T:] >= t.ts[-1] - age).sum()) for t in tables]
    assert mask.sum(axis=1).tolist() == kept
    assert all(k < min(len(t), T) for k, t in zip(kept[:4], tables, strict=False))
    assert kept[2:] == [4, 1, T]


def test_encode_tables_rejects_an_empty_table() -> None:
    empty = tokenize_events([], SPEC)
    full = tokenize_events([_ev(0), _ev(1)], SPEC)
    with pytest.raises(ValueError, match="empty"):
        encode_tables([empty], SPEC, 8)
    with pytest.raises(ValueError, match="empty"):
        encode_tables([full, empty], SPEC, 8)
