"""The window encoder as first written, one window at a time: a plain reference that the
batched ``model.features.encode_packed`` must equal exactly (the one encoder the stream and
training use)."""

from __future__ import annotations

import numpy as np

from model.features import (
    _COL_HOUR,
    _COL_STATUS,
    _N_STATIC,
    _STATUS,
    MAX_T,
    MISSING,
    NEW,
    SEEN,
    BoolArray,
    EventTable,
    FeatureSpec,
    Float32Array,
    Int64Array,
)


def _novelty(ids: Int64Array) -> tuple[Int64Array, Int64Array]:
    """Novelty codes for every id column (n, k), and which cells are first occurrences."""
    n = ids.shape[0]
    present = ids != 0
    same = ids[:, None, :] == ids[None, :, :]  # same[i, j, c]: rows i and j share a value
    earlier = np.tri(n, n, -1, dtype=np.bool_)  # earlier[i, j]: j < i
    seen = (same & earlier[:, :, None]).any(axis=1)
    codes = np.where(present, np.where(seen, SEEN, NEW), MISSING).astype(np.int64)
    first = (present & ~seen).astype(np.int64)
    return codes, first


def reference_window(
    table: EventTable, start: int, end: int, spec: FeatureSpec, T: int
) -> tuple[Int64Array, Float32Array, BoolArray]:
    """Events ``table[start:end]`` (at most T, decision event last), right-aligned."""
    assert 1 <= T <= MAX_T
    start = max(start, end - T, 0)
    if end > start:
        oldest = int(table.ts[end - 1]) - spec.max_age_ms
        start += int(np.searchsorted(table.ts[start:end], oldest, side="left"))
    n = end - start
    assert n > 0
    cat = np.zeros((T, spec.n_cat), dtype=np.int64)
    num = np.zeros((T, spec.n_num), dtype=np.float32)
    mask = np.zeros(T, dtype=np.bool_)
    rows = slice(T - n, T)
    mask[rows] = True

    ts = table.ts[start:end]
    gap_s = np.zeros(n, dtype=np.float64)
    gap_s[1:] = np.maximum(np.diff(ts), 0) / 1000.0
    log_gap = np.log1p(gap_s)
    gap_code = 2 + np.minimum(spec.gap_buckets - 1, (log_gap * spec.log_scale).astype(np.int64))
    gap_code[0] = MISSING  # the previous event is outside the window

    cat[rows, :_COL_HOUR] = table.static[start:end, :_COL_HOUR]
    cat[rows, _COL_HOUR] = gap_code
    cat[rows, _COL_HOUR + 1 : _N_STATIC + 1] = table.static[start:end, _COL_HOUR:]
    codes, first = _novelty(table.ids[start:end])
    cat[rows, _N_STATIC + 1 :] = codes
    distinct = np.log1p(np.cumsum(first[:, :4], axis=0)).astype(np.float32)
    failed = np.cumsum(table.static[start:end, _COL_STATUS] == _STATUS["failed"])
    age_s = np.maximum(ts[-1] - ts, 0) / 1000.0
    nums = table.nums[start:end]
    num[rows, 0] = nums[:, 0]
    num[rows, 1] = nums[:, 1]
    num[rows, 2] = log_gap.astype(np.float32) / 10.0
    num[rows, 3] = nums[:, 2]
    num[rows, 4:8] = distinct
    num[rows, 8] = np.log1p(failed).astype(np.float32)
    num[rows, 9] = (np.log1p(age_s) / 10.0).astype(np.float32)
    return cat, num, mask
