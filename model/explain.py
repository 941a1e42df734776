"""Occlusion inputs for explaining one scored window.

Row 0 of the batch is the window itself; then one row per earlier event with that event
hidden from attention; then one row per feature group with the group set to what an
unremarkable event would show (nothing new, nothing failed, no amount, no gap). The drop
in score from row 0 to each row is that event's or group's contribution.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from model.features import MISSING, NEW, SEEN, FeatureSpec

Arrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.bool_]]

# Feature group -> (categorical columns and how each is neutralised, numeric columns and
# the value they take). "seen" turns a first occurrence into a known value.
GROUPS: dict[str, tuple[dict[str, str], dict[str, float]]] = {
    "new_device_ip_country": (
        {"new_device_id": "seen", "new_ip": "seen", "new_country": "seen"},
        {
            "distinct_devices": float(np.log1p(1)),
            "distinct_ips": float(np.log1p(1)),
            "distinct_countries": float(np.log1p(1)),
        },
    ),
    "new_instrument": (
        {"new_instrument_id": "seen"},
        {"distinct_instruments": float(np.log1p(1))},
    ),
    "failed_attempts": ({"status": "ok"}, {"failed_so_far": 0.0}),
    "amounts": ({"price": "missing", "amount": "missing"}, {"log_price": 0.0, "log_amount": 0.0}),
    "timing": ({"gap": "missing"}, {"log_gap": 0.0}),
}
_STATUS_OK, _STATUS_FAILED = 2, 3


def occlusion_variants(
    cat: npt.NDArray[np.int64],
    num: npt.NDArray[np.float32],
    mask: npt.NDArray[np.bool_],
    spec: FeatureSpec,
) -> tuple[Arrays, list[int], list[str]]:
    """A batch for one window (T, ...): itself, each earlier event hidden, each group
    neutralised. Returns the batch, the hidden positions and the group names, in order."""
    positions = [int(p) for p in np.flatnonzero(mask)[:-1]]  # never the decision event
    names = list(GROUPS)
    n = 1 + len(positions) + len(names)
    cats = np.repeat(cat[None], n, axis=0)
    nums = np.repeat(num[None], n, axis=0)
    masks = np.repeat(mask[None], n, axis=0)
    for row, p in enumerate(positions, start=1):
        masks[row, p] = False
    cat_index = {c: i for i, c in enumerate(spec.cat_features)}
    num_index = {c: i for i, c in enumerate(spec.num_features)}
    for row, name in enumerate(names, start=1 + len(positions)):
        cat_rules, num_rules = GROUPS[name]
        for col, how in cat_rules.items():
            values = cats[row, :, cat_index[col]]
            if how == "seen":
                values[values == NEW] = SEEN
            elif how == "ok":
                values[values == _STATUS_FAILED] = _STATUS_OK
            else:
                values[mask] = MISSING
        for col, value in num_rules.items():
            nums[row, mask, num_index[col]] = value
    return (cats, nums, masks), positions, names
